"""Stage table on the full Adult data: each stage's time and peak memory, a no-op ``dvc repro``
and a night with nothing new.

    .venv/bin/python -m benchmarks.stages [--keep]

The project's own params.yaml (full hyperparameters and bootstrap counts) in a throwaway
workspace; every stage is its real module, run as ``dvc repro`` runs it (see
``benchmarks.common``). Not a test: the numbers depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import (
    ROOT,
    STAGE_HEADERS,
    PipelineRun,
    machine_note,
    make_workspace,
    run_pipeline,
    stage_rows,
    table,
    workspace_params,
)


def run(work: Path, params_file: Path = ROOT / "params.yaml") -> tuple[PipelineRun, str]:
    """The pipeline on the dataset of ``params_file`` in a workspace under ``work``."""
    from pipelines.config import load_params

    raw = yaml.safe_load(params_file.read_text())
    params = load_params(params_file)
    if params.mirror is None or not (params.mirror / params.dataset.reference.name).is_file():
        raise SystemExit(f"stages bench: dataset mirror not found: {params.mirror}")
    ws = make_workspace(work / "project", workspace_params(raw, params.mirror))
    return run_pipeline(ws), params.dataset.name


def format_report(result: PipelineRun, dataset: str, rows: str, seconds: float) -> str:
    lines = [
        f"## Stages on the full {dataset} data ({rows})",
        "",
        "Each stage is its real module in a fresh process, run with its dvc.yaml command in a "
        "throwaway workspace. 'core s' is the time inside the stage's core functions (named in "
        "the last column); 'process' columns are the whole process: interpreter start-up, "
        "imports, reading and writing files, MLflow. Peak RSS is that process's (os.wait4).",
        "",
        table(STAGE_HEADERS, stage_rows(result), right=(1, 2, 3, 4)),
        "",
        f"Machine: {machine_note()}. Whole table: {seconds:.0f} s.",
    ]
    lines += [f"Note: {n}" for n in result.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.stages", description=__doc__.split("\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the throwaway workspace")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="retrain-benchmark-stages-"))
    t0 = time.perf_counter()
    try:
        print("stages bench: full pipeline on the project's params.yaml", flush=True)
        result, dataset = run(work)
        rows = _rows(work / "project")
        print(format_report(result, dataset, rows, time.perf_counter() - t0), flush=True)
    finally:
        if args.keep:
            print(f"stages bench: workspace kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _rows(ws: Path) -> str:
    import pyarrow.parquet as pq

    n = {
        name: pq.read_metadata(ws / "data" / "window" / f"{name}.parquet").num_rows
        for name in ("train", "eval")
    }
    return f"train {n['train']:,} / eval {n['eval']:,}"


if __name__ == "__main__":
    raise SystemExit(main())
