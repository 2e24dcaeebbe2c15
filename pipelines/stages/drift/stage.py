"""The stage's edge: read the two batches, decide, write the result files and the HTML report,
print a short summary. Drift is a finding, not an error: the exit code is 0 either way, 2 on
unusable input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from pipelines.config import ConfigError, DatasetConfig, load_params
from pipelines.data import DataError, clean, read_parquet, read_table
from pipelines.files import write_json
from pipelines.paths import DriftOut
from pipelines.stages.drift.detect import detect_drift
from pipelines.stages.drift.evidently_engine import write_html_report
from pipelines.stages.drift.result import DriftResult, summary_lines


def read_frame(path: Path, dataset: DatasetConfig) -> pd.DataFrame:
    """A cleaned batch from Parquet or CSV (text read once per distinct value)."""
    path = Path(path)
    if path.suffix != ".parquet":
        return read_table(path, dataset)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        df = read_parquet(path, text="category")
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise DataError(f"{path}: unreadable: {type(err).__name__}: {err}") from None
    if df.empty:
        raise DataError(f"{path}: file has no rows")
    return clean(df, dataset, source=str(path))


def write_result(result: DriftResult, out: DriftOut) -> tuple[Path, Path]:
    """The full result and the flat metrics (for DVC) in the stage's output folder."""
    return (
        write_json(out.result, result.to_dict()),
        write_json(out.metrics, result.metrics()),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="drift",
        description="Stage `drift`: has the current data moved away from the reference data?",
    )
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    ap.add_argument("--reference", type=Path, default=None, help="reference data (.parquet/.csv)")
    ap.add_argument("--current", type=Path, default=None, help="current data (.parquet/.csv)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default reports/drift)")
    args = ap.parse_args(argv)
    try:
        params = load_params(args.params)
        ref_path = args.reference or params.paths.prepared_reference
        cur_path = args.current or params.paths.prepared_current
        out = params.paths.drift_out(args.out)
        reference = read_frame(ref_path, params.dataset)
        current = read_frame(cur_path, params.dataset)
        result = detect_drift(reference, current, params.dataset, params.drift)
    except (ConfigError, DataError) as err:
        print(f"drift: error: {err}", file=sys.stderr)
        return 2
    full, flat = write_result(result, out)
    html = write_html_report(reference, current, params.dataset, params.drift, out.report)
    print("\n".join(summary_lines(result)))
    print(f"drift: wrote {full.name}, {flat.name}, {html.name} to {out.folder}")
    return 0
