"""The stage's edge: read evaluate's predictions, write the result, its metrics and plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from pipelines.config import ConfigError, load_params
from pipelines.data import read_parquet
from pipelines.files import write_json
from pipelines.groups import GroupingError
from pipelines.stages.fairness.core import FairnessError, assess_fairness
from pipelines.stages.fairness.report import format_table, plot_fairness


def read_predictions(path: Path, sensitive: tuple[str, ...]) -> pd.DataFrame:
    """The evaluate stage's predictions.parquet, checked for the columns this stage needs."""
    path = Path(path)
    if not path.is_file():
        raise FairnessError(f"{path}: predictions file not found (run the evaluate stage first)")
    try:
        df = read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise FairnessError(f"{path}: unreadable: {type(err).__name__}: {err}") from None
    missing = [c for c in ("y_true", "y_pred", *sensitive) if c not in df.columns]
    if missing:
        raise FairnessError(f"{path}: missing column(s) {missing}")
    return df


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="fairness",
        description="Stage fairness: group metrics and gaps per sensitive attribute.",
    )
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    ap.add_argument("--predictions", default=None, help="evaluate's predictions.parquet")
    ap.add_argument("--out", default=None, help="output folder (default <reports>/fairness)")
    args = ap.parse_args(argv)
    try:
        params = load_params(args.params)
        sensitive = params.dataset.sensitive
        pred_path = Path(args.predictions) if args.predictions else params.paths.predictions
        out = params.paths.fairness_out(Path(args.out) if args.out else None)
        df = read_predictions(pred_path, sensitive)
        result = assess_fairness(
            df["y_true"].to_numpy(), df["y_pred"].to_numpy(), df[list(sensitive)], params.fairness
        )
    except (ConfigError, FairnessError, GroupingError) as err:
        print(f"fairness: error: {err}", file=sys.stderr)
        return 2
    write_json(out.result, result.to_dict())
    write_json(out.metrics, result.headline_metrics())
    plot_fairness(result, out.plot)
    print(f"fairness: {result.n:,} rows from {pred_path}, min group size {result.min_group_size}")
    print(format_table(result))
    for note in result.notes:
        print(f"fairness: note: {note}")
    print(f"fairness: wrote {out.folder}")
    return 0
