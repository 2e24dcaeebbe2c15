"""Entry point of the serving image: serve the model baked into ``--model-dir``.

python -m pipelines.serve --model-dir /opt/model --host 0.0.0.0 --port 8080
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pipelines.serve", description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True, help="MLflow model folder with serving.json")
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args(argv)

    from pipelines.serve.app import ServingApp, run
    from pipelines.serve.model import DirectorySource, ModelHolder

    source = DirectorySource(Path(args.model_dir))
    app = ServingApp(ModelHolder(source, smoke=source.smoke), source.spec)
    run(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
