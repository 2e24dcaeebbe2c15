"""The stage's command line (``python -m pipelines.stages.validate``), run by ``dvc repro``.

``run`` writes ``validation.json`` and the Data Docs folder ``validation_docs/``, then exits 0
when the batch passes and 1 when it fails (so ``dvc repro`` stops there). ``profile`` writes a
first suite from reference data, for review. Bad input (params, a missing or invalid suite, a
data path that does not exist) exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipelines.config import ConfigError, load_params
from pipelines.data import DataError, read_table
from pipelines.files import md5_of, write_text
from pipelines.stages.validate import gx, report
from pipelines.stages.validate.result import format_summary
from pipelines.stages.validate.suite import SuiteError, load_suite, profile_suite, write_suite


def _run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    suite = load_suite(params.paths.suite)
    if args.held_out:
        suite = without_row_count(suite)
    data = Path(args.data) if args.data else params.paths.prepared_current
    if not data.exists():
        raise DataError(f"{data}: data file not found")
    result = gx.validate_file(data, suite, params)
    out_json, out_docs = params.paths.validation_json, params.paths.validation_docs
    if args.out:  # the same names in another folder
        out_json, out_docs = Path(args.out) / out_json.name, Path(args.out) / out_docs.name
    write_text(out_json, json.dumps(result.to_dict(), indent=2) + "\n")
    page = report.write_report(result, out_docs, f"Validation of {data.name}")
    print(format_summary(result))
    print(f"validate: report {page}")
    return 0 if result.success else 1


ROW_COUNT = "expect_table_row_count_to_be_between"


def without_row_count(suite: dict[str, Any]) -> dict[str, Any]:
    """The suite without its row-count expectation: held-out rows are a slice of a batch that
    passed it; whether they are enough to decide on is the gate's question (a verdict of "not
    enough evidence" with the rows a decision would need), not a defect of the data."""
    kept = [e for e in suite["expectations"] if e.get("type") != ROW_COUNT]
    return {**suite, "expectations": kept}


def _profile(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    data = Path(args.data) if args.data else params.paths.prepared_reference
    dest = params.paths.suite
    if dest.exists() and not args.force:
        print(
            f"validate profile: error: {dest} already exists (it may hold reviewed edits); "
            "pass --force to overwrite it",
            file=sys.stderr,
        )
        return 2
    df = read_table(data, params.dataset)
    shown = data.resolve()
    if shown.is_relative_to(params.root):  # the committed suite should not name this machine
        shown = shown.relative_to(params.root)
    suite = profile_suite(df, params, source=f"{shown} (md5 {md5_of(data)})")
    write_suite(suite, dest)
    print(
        f"validate profile: {len(suite['expectations'])} expectations from {len(df):,} rows of "
        f"{data} -> {dest}\nvalidate profile: review the suite, then commit it"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="validate", description="Check a batch against the committed expectation suite."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="validate a batch against the committed suite")
    run.add_argument("--params", default=None, help="params file (default params.yaml)")
    run.add_argument("--data", default=None, help="batch file (default: prepared current data)")
    run.add_argument("--out", default=None, help="report folder (default <reports>/validate)")
    run.add_argument(
        "--held-out",
        action="store_true",
        help="held-out rows of accepted batches: their row count is left to the gate",
    )
    prof = sub.add_parser("profile", help="generate the suite from reference data, for review")
    prof.add_argument("--params", default=None, help="params file (default params.yaml)")
    prof.add_argument("--data", default=None, help="reference file (default: prepared reference)")
    prof.add_argument("--force", action="store_true", help="overwrite an existing suite")
    args = ap.parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _profile(args)
    except (ConfigError, DataError, SuiteError) as err:
        msg = "; ".join(str(err).splitlines())
        print(f"validate {args.command}: error: {msg}", file=sys.stderr)
        return 2
