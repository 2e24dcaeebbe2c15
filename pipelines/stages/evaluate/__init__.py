"""Stage `evaluate`: score held-out data and measure the model, each metric with a bootstrap CI.

The core, :func:`evaluate_scores`, is a function of labels, scores and :class:`EvaluateConfig`
that returns an :class:`Evaluation` (each metric a :class:`~pipelines.records.Interval`);
:func:`paired_bootstrap_difference` compares two models on the same resamples (for the
champion-vs-challenger gate).

Modules: :mod:`.result` (the value objects), :mod:`.bootstrap` (the vectorised metrics and
bootstrap), :mod:`.plots` (figures and dvc plot data), :mod:`.model` (loading and scoring a
model) and :mod:`.stage` (the edge: files in and out, :func:`main`, which
``python -m pipelines.stages.evaluate`` runs).
"""

from pipelines.stages.evaluate.bootstrap import (
    ROC_MAX_POINTS,
    evaluate_scores,
    paired_bootstrap_difference,
    paired_bootstrap_differences,
    unmeasured,
)
from pipelines.stages.evaluate.model import (
    distinct_row_ids,
    load_model,
    positive_scores,
    predictions_frame,
)
from pipelines.stages.evaluate.plots import (
    CONFUSION_PLOT_ROWS,
    confusion_rows,
    plot_calibration,
    plot_confusion,
    plot_roc,
)
from pipelines.stages.evaluate.result import (
    METRICS,
    CalibrationBin,
    Confusion,
    Evaluation,
    EvaluationError,
    RocCurve,
    TooLittleData,
    higher_is_better,
)
from pipelines.stages.evaluate.stage import format_table, main, write_outputs

__all__ = [
    "CONFUSION_PLOT_ROWS",
    "METRICS",
    "ROC_MAX_POINTS",
    "CalibrationBin",
    "Confusion",
    "Evaluation",
    "EvaluationError",
    "RocCurve",
    "TooLittleData",
    "confusion_rows",
    "distinct_row_ids",
    "evaluate_scores",
    "format_table",
    "higher_is_better",
    "load_model",
    "main",
    "paired_bootstrap_difference",
    "paired_bootstrap_differences",
    "plot_calibration",
    "plot_confusion",
    "plot_roc",
    "positive_scores",
    "predictions_frame",
    "unmeasured",
    "write_outputs",
]
