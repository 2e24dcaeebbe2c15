"""What the evaluate stage measures about one model, as value objects with their JSON form.

Each metric is a :class:`~pipelines.records.Interval`: the point estimate and its
percentile-bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from pipelines.config import MetricName
from pipelines.records import Interval

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


def _num(x: float) -> float | None:
    """JSON-safe float: NaN and infinities become null."""
    return float(x) if math.isfinite(x) else None


HEADLINE = ("roc_auc", "f1", "ece")  # what `dvc metrics show` shows of an evaluation


@dataclass(frozen=True)
class RocCurve:
    """ROC points (at most ROC_MAX_POINTS); the first threshold is +inf (nothing positive)."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float | None]]:
        return {
            "fpr": [float(v) for v in self.fpr],
            "tpr": [float(v) for v in self.tpr],
            "thresholds": [_num(v) for v in self.thresholds],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RocCurve:
        return cls(
            tuple(float(v) for v in d["fpr"]),
            tuple(float(v) for v in d["tpr"]),
            tuple(math.inf if v is None else float(v) for v in d["thresholds"]),
        )


@dataclass(frozen=True)
class Confusion:
    """Counts at the decision threshold (actual x predicted)."""

    tn: int
    fp: int
    fn: int
    tp: int

    def to_dict(self) -> dict[str, int]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Confusion:
        return cls(int(d["tn"]), int(d["fp"]), int(d["fn"]), int(d["tp"]))


@dataclass(frozen=True)
class CalibrationBin:
    """One non-empty equal-width bin of predicted probability."""

    lower: float
    upper: float
    mean_predicted: float
    observed_rate: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "mean_predicted": self.mean_predicted,
            "observed_rate": self.observed_rate,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationBin:
        return cls(
            float(d["lower"]),
            float(d["upper"]),
            float(d["mean_predicted"]),
            float(d["observed_rate"]),
            int(d["count"]),
        )


@dataclass(frozen=True)
class Evaluation:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "positives": self.positives,
            "positive_rate": self.positive_rate,
            "predicted_positive_rate": self.predicted_positive_rate,
            "decision_threshold": self.decision_threshold,
            "confidence": self.confidence,
            "bootstrap_samples": self.bootstrap_samples,
            "seed": self.seed,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "roc": self.roc.to_dict(),
            "confusion": self.confusion.to_dict(),
            "calibration": [b.to_dict() for b in self.calibration],
            "distinct_rows": self.distinct_rows,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evaluation:
        return cls(
            n=int(d["n"]),
            positives=int(d["positives"]),
            positive_rate=float(d["positive_rate"]),
            predicted_positive_rate=float(d["predicted_positive_rate"]),
            decision_threshold=float(d["decision_threshold"]),
            confidence=float(d["confidence"]),
            bootstrap_samples=int(d["bootstrap_samples"]),
            seed=int(d["seed"]),
            metrics={k: Interval.from_dict(v) for k, v in d["metrics"].items()},
            roc=RocCurve.from_dict(d["roc"]),
            confusion=Confusion.from_dict(d["confusion"]),
            calibration=tuple(CalibrationBin.from_dict(b) for b in d["calibration"]),
            distinct_rows=None if d.get("distinct_rows") is None else int(d["distinct_rows"]),
            note=str(d.get("note") or ""),
        )
