"""What the evaluate stage measures about one model, as value objects with their JSON form.

Each metric is a :class:`~pipelines.records.Interval`: the point estimate and its
percentile-bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from pipelines.config import MetricName
from pipelines.records import InfFloat, Interval, JsonRecord

METRICS: tuple[str, ...] = get_args(MetricName)
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece"})


class EvaluationError(ValueError):
    """Labels or scores that cannot be evaluated; the message says what is wrong."""


class TooLittleData(EvaluationError):
    """Valid labels and scores too few to measure (under 2 distinct rows, or a single class):
    not an error of the data but too little evidence; the stage records the evaluation as
    unmeasured (:func:`~pipelines.stages.evaluate.bootstrap.unmeasured`) and the gate says
    "not enough evidence"."""


def higher_is_better(metric: str) -> bool:
    """False for losses (log_loss, brier, ece): there a negative difference is an improvement."""
    check_metric(metric)
    return metric not in LOWER_IS_BETTER


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")


HEADLINE = ("roc_auc", "f1", "ece")  # what `dvc metrics show` shows of an evaluation


@dataclass(frozen=True)
class RocCurve(JsonRecord):
    """ROC points (at most ROC_MAX_POINTS); the first threshold is +inf (nothing positive)."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[InfFloat, ...]  # JSON has no infinity: written as null


@dataclass(frozen=True)
class Confusion(JsonRecord):
    """Counts at the decision threshold (actual x predicted)."""

    tn: int
    fp: int
    fn: int
    tp: int


@dataclass(frozen=True)
class CalibrationBin(JsonRecord):
    """One non-empty equal-width bin of predicted probability."""

    lower: float
    upper: float
    mean_predicted: float
    observed_rate: float
    count: int


@dataclass(frozen=True)
class Evaluation(JsonRecord):
    """Everything measured about one model on one labelled data set."""

    n: int
    positives: int
    positive_rate: float
    predicted_positive_rate: float
    decision_threshold: float
    confidence: float
    bootstrap_samples: int
    seed: int
    metrics: Mapping[str, Interval]
    roc: RocCurve
    confusion: Confusion
    calibration: tuple[CalibrationBin, ...]
    distinct_rows: int | None = None  # rows the bootstrap resampled (copies of a row count once)
    note: str = ""  # why the metrics are undefined, when they are

    def metric(self, name: str) -> Interval:
        check_metric(name)
        return self.metrics[name]

    def headline_metrics(self) -> dict[str, float]:
        """The points of :data:`HEADLINE` for ``dvc metrics show``, which prints every metrics
        file in one table: a few keys keep it readable in 100 columns. Every metric with its
        interval is in ``evaluation.json`` (``dvc metrics diff --targets`` reads it too)."""
        return {
            k: float(self.metrics[k].point)
            for k in HEADLINE
            if k in self.metrics and math.isfinite(self.metrics[k].point)
        }

    def flat_metrics(self) -> dict[str, float]:
        """``{metric: point, metric_lower: ..., metric_upper: ...}`` for ``dvc metrics``."""
        out: dict[str, float] = {}
        for name, m in self.metrics.items():
            for key, v in ((name, m.point), (f"{name}_lower", m.lower), (f"{name}_upper", m.upper)):
                if math.isfinite(v):
                    out[key] = float(v)
        return out
