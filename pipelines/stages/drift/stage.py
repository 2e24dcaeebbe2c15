"""The stage's edge: read the two batches, decide, write the result files and the HTML report,
print a short summary. Drift is a finding, not an error: the exit code is 0 either way, 2 on
unusable input."""

from __future__ import annotations

import argparse
import sys
from html import escape
from pathlib import Path

import pandas as pd

from pipelines.config import ConfigError, DatasetConfig, load_params
from pipelines.data import DataError, clean, read_parquet, read_table
from pipelines.files import write_json, write_text
from pipelines.paths import DriftOut
from pipelines.stages.drift.detect import detect_drift, not_judged
from pipelines.stages.drift.evidently_engine import write_html_report
from pipelines.stages.drift.result import DriftResult, summary_lines


def read_frame(path: Path, dataset: DatasetConfig, allow_empty: bool = False) -> pd.DataFrame:
    """A cleaned batch from Parquet or CSV (text read once per distinct value); a Parquet file
    with no rows is an error unless ``allow_empty``."""
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
        if allow_empty:
            return df
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
        current = read_frame(cur_path, params.dataset, allow_empty=True)
        if current.empty:  # nothing held out: not judged, and the night goes on to say so
            why = f"{cur_path} has no rows"
            result = not_judged(params.dataset, params.drift, len(reference), why)
        else:
            result = detect_drift(reference, current, params.dataset, params.drift)
    except (ConfigError, DataError) as err:
        print(f"drift: error: {err}", file=sys.stderr)
        return 2
    full, flat = write_result(result, out)
    if result.n_current:
        html = write_html_report(
            reference,
            current,
            params.dataset,
            params.drift,
            out.report,
            title="Drift: the current data against the reference (stage `drift`)",
            sides=("the prepared reference", "the prepared current data"),
        )
    else:  # the page says why there is no report (DVC keeps it as the stage's output)
        page = "<!doctype html><title>drift</title><p>" + escape(result.reasons[0]) + "</p>\n"
        html = write_text(out.report, page)
    print("\n".join(summary_lines(result)))
    print(f"drift: wrote {full.name}, {flat.name}, {html.name} to {out.folder}")
    return 0
