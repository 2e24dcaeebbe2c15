"""Stage `fairness`: group metrics and gaps for each sensitive attribute (and their intersection).

The core, :func:`assess_fairness`, is a function of labels, predictions, the sensitive columns and
:class:`FairnessConfig` that returns a :class:`FairnessResult`. Per-group rates come from
fairlearn's ``MetricFrame``. Gaps are judged only over groups with at least
``min_group_size`` rows: smaller groups are listed as too small, with their size, because a rate
measured on a handful of rows says more about noise than about the model. The same rule holds
for the rows each rate rests on: a group's TPR enters the equalized-odds gap only with at least
``min_group_size`` actual positives, its FPR only with as many actual negatives. Missing
sensitive values are a group of their own (``"missing"``), never dropped silently.

:func:`main` reads the evaluate stage's per-row predictions and writes the result, flat metrics
for ``dvc metrics`` and a bar plot.
"""

from pipelines.stages.fairness.core import (
    MEASURES,
    MISSING,
    AttributeFairness,
    FairnessError,
    FairnessResult,
    GroupRates,
    SmallGroup,
    WorstMeasure,
    assess_fairness,
    group_labels,
)
from pipelines.stages.fairness.report import format_table, plot_fairness
from pipelines.stages.fairness.stage import main, read_predictions

__all__ = [
    "MEASURES",
    "MISSING",
    "AttributeFairness",
    "FairnessError",
    "FairnessResult",
    "GroupRates",
    "SmallGroup",
    "WorstMeasure",
    "assess_fairness",
    "format_table",
    "group_labels",
    "main",
    "plot_fairness",
    "read_predictions",
]
