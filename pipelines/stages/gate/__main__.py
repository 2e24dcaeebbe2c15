"""``python -m pipelines.stages.gate``: the stage as ``dvc repro`` runs it."""

from pipelines.stages.gate.stage import main

if __name__ == "__main__":
    raise SystemExit(main())
