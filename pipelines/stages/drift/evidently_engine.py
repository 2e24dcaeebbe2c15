"""The ``evidently`` drift engine and the stage's HTML report, both made by Evidently 0.7.

The engine runs one ``Report`` with a ``ValueDrift`` metric (and its drift test) per column, the
column types given explicitly through ``DataDefinition`` so Evidently infers nothing. The HTML
report is Evidently's own drift preset on a seeded sample: it shows the distributions behind the
numbers, while the decision stays :func:`~pipelines.stages.drift.detect.detect_drift`'s.
Category values are escaped before Evidently sees them (:func:`inert`): the monitor's report
shows live traffic, and a value must never become markup in it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import DatasetConfig, DriftConfig
from pipelines.files import write_atomic
from pipelines.stages.drift.columns import ColumnData, ColumnTest, column_tests, usable

REPORT_SEED = 0
_MARKUP = re.compile(r"[<>\"']|&#?\w+;")  # what could open markup, or read as an entity


def scores_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[ColumnData]
) -> list[tuple[float, bool]]:
    """The engine: (score, drifted) per column, in order, from one Evidently Report."""
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift

    tests = [c.test for c in columns]
    if not tests:
        return []
    definition = _definition(tests)
    report = Report(
        [ValueDrift(column=t.column, method=t.method, threshold=t.threshold) for t in tests],
        include_tests=True,
    )
    with np.errstate(divide="ignore"):  # chi-square of a category unseen in the reference
        snapshot = report.run(
            reference_data=Dataset.from_pandas(
                _for_evidently(reference, tests), data_definition=definition
            ),
            current_data=Dataset.from_pandas(
                _for_evidently(current, tests), data_definition=definition
            ),
        )
    out = snapshot.dict()
    score = {m["config"]["column"]: float(m["value"]) for m in out["metrics"]}
    column_of = {m["id"]: m["config"]["column"] for m in out["metrics"]}
    failed = {
        column_of[t["metric_config"]["metric_id"]]: t["status"] == "FAIL" for t in out["tests"]
    }
    return [(score[t.column], failed[t.column]) for t in tests]


def write_html_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    dataset: DatasetConfig,
    cfg: DriftConfig,
    path: Path,
    title: str = "Drift",
    sides: tuple[str, str] = ("reference", "current"),
) -> Path:
    """Evidently's own drift report (HTML) on a seeded sample of at most
    ``cfg.report_sample_rows`` rows per side, written atomically, headed with ``title``, what
    each side is (``sides``) and the rows behind it.

    It shows the distributions behind the numbers. The decision is ``detect_drift``'s, on all
    rows: on a sample the report's scores are close to ``drift.json``'s, not equal.
    """
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    ref = _sample(reference, cfg.report_sample_rows)
    cur = _sample(current, cfg.report_sample_rows)
    feature_tests, target_test = column_tests(dataset, cfg)
    # Evidently cannot score a column that is empty on one side: leave those out of the report
    tests = [
        t
        for t in [*feature_tests, target_test]
        if usable(ref[t.column]).size and usable(cur[t.column]).size
    ]
    metrics: list[Any] = [
        DataDriftPreset(
            columns=[t.column for t in tests if t != target_test],
            num_method=cfg.numeric_method,
            cat_method=cfg.categorical_method,
            num_threshold=cfg.numeric_threshold,
            cat_threshold=cfg.categorical_threshold,
            drift_share=cfg.dataset_share,
        )
    ]
    if target_test in tests:
        metrics.append(
            ValueDrift(
                column=target_test.column,
                method=target_test.method,
                threshold=target_test.threshold,
            )
        )
    definition = _definition(tests)
    features = [t for t in tests if t != target_test]  # the target's labels are the config's
    with np.errstate(divide="ignore"):  # chi-square of a category unseen in the reference
        snapshot = Report(metrics).run(
            reference_data=Dataset.from_pandas(
                inert(_for_evidently(ref, tests), features), data_definition=definition
            ),
            current_data=Dataset.from_pandas(
                inert(_for_evidently(cur, tests), features), data_definition=definition
            ),
        )
    head = report_heading(title, sides, (len(reference), len(current)), (len(ref), len(cur)))

    def save(tmp: Path) -> None:
        snapshot.save_html(str(tmp))
        tmp.write_text(with_heading(tmp.read_text(encoding="utf-8"), head), encoding="utf-8")

    return write_atomic(Path(path), save)


def report_heading(
    title: str, sides: tuple[str, str], rows: tuple[int, int], sampled: tuple[int, int]
) -> str:
    """What the page shows, in words, escaped: which data on each side and how many rows."""
    e = html.escape
    ref, cur = sides
    note = (
        f"Reference: {e(ref)} ({rows[0]:,} rows). Current: {e(cur)} ({rows[1]:,} rows). "
        f"The figures below are Evidently's on a seeded sample of {sampled[0]:,} and "
        f"{sampled[1]:,} rows; the decision (drift.json) is on all rows."
    )
    return (
        '<div style="font-family:system-ui,sans-serif;padding:1rem;border-bottom:1px solid #ccc">'
        f"<h1>{e(title)}</h1><p>{note}</p></div>"
    )


def with_heading(page: str, heading: str) -> str:
    at = page.find("<body")
    end = page.find(">", at) if at >= 0 else -1
    return page[: end + 1] + heading + page[end + 1 :] if end >= 0 else heading + page


def _definition(tests: Sequence[ColumnTest]) -> Any:
    """Column types stated in full, so Evidently infers nothing."""
    from evidently import DataDefinition

    return DataDefinition(
        numerical_columns=[t.column for t in tests if t.kind == "numeric"],
        categorical_columns=[t.column for t in tests if t.kind == "categorical"],
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )


def _for_evidently(df: pd.DataFrame, tests: Sequence[ColumnTest]) -> pd.DataFrame:
    """The tested columns, infinities as NaN: Evidently drops them from the statistics anyway,
    but its plots and summaries would otherwise compute with them."""
    numeric = [t.column for t in tests if t.kind == "numeric"]
    df = df[[t.column for t in tests]]
    if numeric:
        df = df.assign(**{c: df[c].replace([np.inf, -np.inf], np.nan) for c in numeric})
    return df


def inert(df: pd.DataFrame, tests: Sequence[ColumnTest]) -> pd.DataFrame:
    """Category values that could be markup HTML-escaped before they reach a report: values
    come from live traffic, and the report page embeds them in its markup and scripts.

    A value is escaped whole when it holds ``<``, ``>``, a quote or something that reads as an
    entity (``&lt;``); every other value, ``Trinadad&Tobago`` included, is left as it is. So
    the mapping is one-to-one (an escaped value always holds an entity, a kept one never), and
    the distributions, and the drift the report shows, are unchanged for ordinary values."""
    cats = [t.column for t in tests if t.kind == "categorical" and t.column in df.columns]
    if not cats:
        return df
    return df.assign(**{c: _escape_values(df[c]) for c in cats})


def _escape_values(col: pd.Series) -> pd.Series:
    values = col.dropna().unique()
    mapping = {v: html.escape(v) for v in values if isinstance(v, str) and _MARKUP.search(v)}
    if not mapping:
        return col
    return col.astype(object).map(lambda v: mapping.get(v, v) if isinstance(v, str) else v)


def _sample(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df if len(df) <= n else df.sample(n=n, random_state=REPORT_SEED)
