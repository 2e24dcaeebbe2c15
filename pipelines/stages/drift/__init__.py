"""Stage `drift`: has the current data moved away from the reference data?

The core, :func:`detect_drift`, scores every feature column (and, separately, the target) with
the method and threshold from the ``drift`` params, and returns a :class:`DriftResult`: per
column score and verdict, the share of drifted feature columns, the dataset verdict
(``share >= dataset_share``) and the reasons as short sentences.

Scores come from an *engine*, a function that scores a list of columns:

* ``"evidently"`` runs one Evidently 0.7 ``Report`` with a ``ValueDrift`` metric per column
  (:mod:`.evidently_engine`, which also writes the HTML report);
* ``"fast"`` computes the same statistics with numpy/scipy, one small function per column
  (:mod:`.fast`), to the same numbers without Evidently's per-column plots and summaries.

Modules: :mod:`.columns` (what is tested, on which values), :mod:`.result` (the decision as
value objects, its files and summary), :mod:`.fast` and :mod:`.evidently_engine` (the engines),
:mod:`.detect` (the core), :mod:`.stage` (the edge: files in and out, :func:`main`, which
``python -m pipelines.stages.drift`` runs).
"""

from pipelines.stages.drift.columns import ColumnTest, Kind, column_tests, is_drifted
from pipelines.stages.drift.detect import ENGINES, Engine, detect_drift
from pipelines.stages.drift.evidently_engine import write_html_report
from pipelines.stages.drift.fast import score_column
from pipelines.stages.drift.result import ColumnDrift, DriftResult, summary_lines
from pipelines.stages.drift.stage import (
    main,
    read_frame,
    write_result,
)

__all__ = [
    "ENGINES",
    "ColumnDrift",
    "ColumnTest",
    "DriftResult",
    "Engine",
    "Kind",
    "column_tests",
    "detect_drift",
    "is_drifted",
    "main",
    "read_frame",
    "score_column",
    "summary_lines",
    "write_html_report",
    "write_result",
]
