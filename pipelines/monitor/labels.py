"""`retrain labels FILE`: true outcomes that arrived late, joined to logged answers by request id.

The file (CSV or Parquet) has ``request_id``, optionally ``row`` (the record's index in a batch
request; default 0), and the outcome in ``label`` or in the dataset's target column, spelled as
in the training data (a trailing ``dataset.label_strip_suffix`` is removed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.config import Params


class LabelsError(ValueError):
    """An outcomes file that cannot be used; the message names the file, column and rows."""


@dataclass(frozen=True)
class LabelsResult:
    rows: int
    matched: int  # outcomes whose answer is in the prediction log
    unmatched_examples: tuple[str, ...]


def read_outcomes(path: Path, params: Params) -> pd.DataFrame:
    """``request_id, row, label`` from the file, checked; a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        raw = pd.read_csv(path, dtype={"request_id": str})
    else:
        raise LabelsError(f"{path}: expected a .csv or .parquet file")
    ds = params.dataset
    if "request_id" not in raw.columns:
        raise LabelsError(f"{path}: no 'request_id' column (columns: {list(raw.columns)})")
    col = "label" if "label" in raw.columns else ds.target if ds.target in raw.columns else None
    if col is None:
        raise LabelsError(f"{path}: no 'label' or {ds.target!r} column with the outcomes")
    labels = raw[col].astype(str).str.strip()
    if ds.label_strip_suffix:
        labels = labels.str.removesuffix(ds.label_strip_suffix)
    allowed = {ds.positive_label, ds.negative_label or f"not {ds.positive_label}"}
    bad = ~labels.isin(allowed)
    if bad.any():
        where = [int(i) + 2 for i in raw.index[bad][:5]]  # file lines, after the header
        raise LabelsError(
            f"{path}: column {col!r} has {int(bad.sum())} value(s) outside {sorted(allowed)}, "
            f"e.g. {labels[bad].iloc[0]!r} (lines {where})"
        )
    ids = raw["request_id"].astype(str)
    if (ids.str.len() == 0).any() or raw["request_id"].isna().any():
        raise LabelsError(f"{path}: empty request_id values")
    row = raw["row"] if "row" in raw.columns else pd.Series(0, index=raw.index)
    if row.isna().any() or (pd.to_numeric(row, errors="coerce") < 0).any():
        raise LabelsError(f"{path}: column 'row' must hold non-negative integers")
    return pd.DataFrame({"request_id": ids, "row": row.astype(int), "label": labels})


def feed_outcomes(path: Path, params: Params) -> LabelsResult:
    from pipelines.predlog import readers as predlog

    outcomes = read_outcomes(path, params)
    logged = predlog.read_predictions(params)[["request_id", "row"]].drop_duplicates()
    hit = outcomes.merge(logged, on=["request_id", "row"], how="left", indicator=True)
    missing = hit[hit["_merge"] == "left_only"]
    predlog.record_outcomes(params, outcomes)
    return LabelsResult(
        rows=len(outcomes),
        matched=len(outcomes) - len(missing),
        unmatched_examples=tuple(missing["request_id"].head(3)),
    )
