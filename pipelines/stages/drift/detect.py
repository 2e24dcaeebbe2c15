"""The drift core, :func:`detect_drift`: score every column with an engine, then decide.

Both engines see the same cleaned values (:func:`~pipelines.stages.drift.columns.usable`). A
column with no values left on one side cannot be scored; it counts as drifted when the other side
has values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from pipelines.config import DatasetConfig, DriftConfig
from pipelines.data import DataError
from pipelines.stages.drift.columns import ColumnData, column_tests, usable
from pipelines.stages.drift.evidently_engine import scores_evidently
from pipelines.stages.drift.fast import scores_fast
from pipelines.stages.drift.result import ColumnDrift, DriftResult, reasons

# An engine scores columns and returns (score, drifted) per column, in order. It gets the two
# frames too, for engines (Evidently) that do their own cleaning.
Engine = Callable[[pd.DataFrame, pd.DataFrame, Sequence[ColumnData]], list[tuple[float, bool]]]

ENGINES: dict[str, Engine] = {"evidently": scores_evidently, "fast": scores_fast}


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    dataset: DatasetConfig,
    cfg: DriftConfig,
    *,
    engine: str | None = None,
) -> DriftResult:
    """Compare current data with reference data, column by column, and decide.

    Features use ``cfg.numeric_method`` / ``cfg.categorical_method`` by their declared type; the
    target is judged separately with ``cfg.target_method`` and does not count towards the
    share. The dataset drifts when the share of drifted features is at least
    ``cfg.dataset_share``. The engine defaults to ``cfg.engine``.
    """
    engine = engine or cfg.engine
    if engine not in ENGINES:
        raise ValueError(f"unknown drift engine {engine!r} (choose from {sorted(ENGINES)})")
    _check_frames(reference, current, dataset)
    feature_tests, target_test = column_tests(dataset, cfg)
    tests = [*feature_tests, target_test]

    missing: dict[str, tuple[float, float]] = {}
    scorable: list[ColumnData] = []
    for t in tests:
        ref, cur = usable(reference[t.column]), usable(current[t.column])
        missing[t.column] = (1.0 - len(ref) / len(reference), 1.0 - len(cur) / len(current))
        if len(ref) and len(cur):
            scorable.append(ColumnData(t, ref, cur))
    scored = ENGINES[engine](reference, current, scorable)
    scores = dict(zip([c.test.column for c in scorable], scored, strict=True))

    results: list[ColumnDrift] = []
    for t in tests:
        mr, mc = missing[t.column]
        if t.column in scores:
            score, drifted = scores[t.column]
            value: float | None = float(score)
        else:  # a side with no values at all: drift unless both are empty
            value, drifted = None, (mr < 1.0) != (mc < 1.0)
        results.append(
            ColumnDrift(
                column=t.column,
                kind=t.kind,
                method=t.method,
                threshold=float(t.threshold),
                score=value,
                drifted=bool(drifted),
                missing_reference=float(mr),
                missing_current=float(mc),
            )
        )
    *columns, target = results
    n_drifted = sum(c.drifted for c in columns)
    share = n_drifted / len(columns)
    drifted = share >= cfg.dataset_share
    return DriftResult(
        drifted=drifted,
        share=share,
        n_drifted=n_drifted,
        n_columns=len(columns),
        dataset_share=cfg.dataset_share,
        columns=tuple(columns),
        target=target,
        reasons=tuple(reasons(columns, target, n_drifted, share, drifted, cfg.dataset_share)),
        n_reference=len(reference),
        n_current=len(current),
        engine=engine,
    )


def not_judged(dataset: DatasetConfig, cfg: DriftConfig, n_reference: int, why: str) -> DriftResult:
    """The result when the current side has no rows (a night whose held-out rows are all gone):
    every column unscored and not drifted, the reason given; the gate then records that it
    has not enough evidence, and the night goes on to say so."""
    feature_tests, target_test = column_tests(dataset, cfg)
    *columns, target = (
        ColumnDrift(t.column, t.kind, t.method, float(t.threshold), None, False, 0.0, 1.0)
        for t in (*feature_tests, target_test)
    )
    return DriftResult(
        drifted=False,
        share=0.0,
        n_drifted=0,
        n_columns=len(columns),
        dataset_share=cfg.dataset_share,
        columns=tuple(columns),
        target=target,
        reasons=(f"drift not judged: {why}",),
        n_reference=n_reference,
        n_current=0,
        engine="none",
    )


def _check_frames(reference: pd.DataFrame, current: pd.DataFrame, dataset: DatasetConfig) -> None:
    required = [*dataset.features.all, dataset.target]
    for side, df in (("reference", reference), ("current", current)):
        if len(df) == 0:
            raise DataError(f"{side} data has no rows")
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise DataError(f"{side} data: missing column(s) {missing}")
        for c in dataset.features.numeric:
            s = df[c]
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                raise DataError(f"{side} data: numeric column {c!r} has dtype {s.dtype}")
