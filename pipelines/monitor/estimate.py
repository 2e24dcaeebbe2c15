"""Confidence-based performance estimation: a classification metric estimated on rows whose
outcomes have not arrived yet, from the model's calibrated probabilities.

With calibrated probabilities ``p`` (the version's calibrator applied to its scores) each row is
positive with probability ``p``; the expected confusion matrix at the decision threshold and the
expected ROC curve follow, and so does any metric of them. That holds under covariate shift
(the inputs' mix changes, the outcome given the inputs does not); when the outcomes later
disagree with the estimate beyond its interval, the relation itself changed: concept change.

The point is the metric of the expected confusion matrix (ROC AUC: of the expected ROC curve).
Two intervals, each the central ``confidence`` share of ``draws`` replicates, replicate ``k``
taking its probabilities from the ``k``-th bootstrap refit of the calibrator when given (so both
carry the calibrator's own uncertainty):

- ``lower``/``upper``, the estimate's: the expected metric over the rows resampled, which is
  what a drop is judged on (as the measured metric's bootstrap interval is);
- ``realised_lower``/``realised_upper``, where the *realised* metric of these very rows falls if
  the calibration holds: outcomes drawn from ``p``, their chance included. A realised value
  outside it is the sign of a concept change.
Pure numpy: scores, probabilities and config in, an :class:`Estimate` out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import Field, computed_field
from scipy.stats import rankdata

from pipelines.records import JsonRecord, NanFloat

METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")
_CHUNK = 4_000_000  # draws x rows per block of simulated outcomes (memory bound)


@dataclass(frozen=True)
class Estimate(JsonRecord):
    """A metric estimated without outcomes: its point and interval on ``rows`` rows."""

    metric: str
    point: NanFloat
    lower: NanFloat
    upper: NanFloat
    rows: int
    confidence: float
    realised_lower: NanFloat = math.nan  # where the realised metric of these rows should fall
    realised_upper: NanFloat = math.nan

    def interval(self) -> dict[str, float]:
        return {"point": self.point, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True)
class Agreement(JsonRecord):
    """The realised metric (outcomes arrived) against the estimate on the same rows. Its JSON
    form (``concept_change`` in ``verdict.json``) is flat: the estimate's rows, point and the
    interval the realised metric should fall in, then the realised metric, gap and verdict."""

    estimate: Annotated[Estimate, Field(exclude=True)]
    realised: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows(self) -> int:
        return self.estimate.rows

    @computed_field  # type: ignore[prop-decorator]
    @property
    def estimated(self) -> float:
        return self.estimate.point

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lower(self) -> float:
        return self.estimate.realised_lower

    @computed_field  # type: ignore[prop-decorator]
    @property
    def upper(self) -> float:
        return self.estimate.realised_upper

    @computed_field  # type: ignore[prop-decorator]
    @property
    def gap(self) -> float:
        """Realised minus estimated point."""
        return self.realised - self.estimate.point

    @computed_field  # type: ignore[prop-decorator]
    @property
    def outside(self) -> bool:
        """Outside the estimate's interval: the likely sign of a concept change."""
        e = self.estimate
        return not (e.realised_lower <= self.realised <= e.realised_upper)


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"no estimate of {metric!r}; metrics estimated: {list(METRICS)}")


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _confusion_metrics(
    metric: str, tp: np.ndarray, pos: np.ndarray, pred: float, n: int
) -> np.ndarray:
    """``metric`` from true positives, positives and predicted positives (arrays or scalars)."""
    fp, fn = pred - tp, pos - tp
    if metric == "accuracy":
        return _ratio(n - fp - fn, float(n))
    if metric == "precision":
        return _ratio(tp, pred)
    if metric == "recall":
        return _ratio(tp, pos)
    return _ratio(2 * tp, 2 * tp + fp + fn)  # f1


def expected_metric(
    metric: str, scores: np.ndarray, probabilities: np.ndarray, threshold: float
) -> float:
    """The metric of the expected confusion matrix (ROC AUC: of the expected ROC curve)."""
    check_metric(metric)
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(s) == 0:
        return math.nan
    if metric == "roc_auc":
        return _expected_auc(s, p)
    yhat = (s >= threshold).astype(np.float64)
    return float(_confusion_metrics(metric, p @ yhat, p.sum(), float(yhat.sum()), len(s)))


def _expected_auc(s: np.ndarray, p: np.ndarray) -> float:
    """Expected pairs ranked right over expected positive-negative pairs (a row with itself
    is no pair); ties count one half."""
    order = np.argsort(s, kind="mergesort")
    s, p = s[order], p[order]
    q = 1.0 - p
    _, start, counts = np.unique(s, return_index=True, return_counts=True)
    q_group = np.add.reduceat(q, start)
    below = np.repeat(np.cumsum(q_group) - q_group, counts)  # negatives strictly below
    tied = np.repeat(q_group, counts) - q  # other rows of the same score
    num = float(p @ (below + 0.5 * tied))
    den = float(p.sum() * q.sum() - p @ q)
    return num / den if den > 0 else math.nan


def realised_metric(metric: str, y: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """The metric of known outcomes ``y`` (0/1), computed as the estimate's draws are."""
    return float(_draw_metrics(metric, np.asarray(y, dtype=bool)[None, :], scores, threshold)[0])


def _draw_metrics(metric: str, ys: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """The metric for each row of ``ys`` (draws x rows of outcomes) with fixed scores."""
    s = np.asarray(scores, dtype=np.float64)
    yf = ys.astype(np.float64)
    pos = yf.sum(axis=1)
    n = ys.shape[1]
    if metric == "roc_auc":
        ranks = rankdata(s)  # ties: average ranks, so a tie counts one half
        neg = n - pos
        return _ratio(yf @ ranks - pos * (pos + 1) / 2, pos * neg)
    yhat = (s >= threshold).astype(np.float64)
    return _confusion_metrics(metric, yf @ yhat, pos, float(yhat.sum()), n)


def estimate_metric(
    metric: str,
    scores: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    *,
    replicates: np.ndarray | None = None,
    confidence: float = 0.95,
    draws: int = 200,
    seed: int = 0,
) -> Estimate:
    """The metric on these rows estimated from their calibrated probabilities, its interval,
    and the interval their realised metric falls in when the calibration holds.
    ``replicates``: the probabilities under each bootstrap refit of the calibrator (refits x
    rows)."""
    check_metric(metric)
    s = np.asarray(scores, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    reps = p[None, :] if replicates is None else np.clip(np.asarray(replicates), 0.0, 1.0)
    if len(s) != len(p) or reps.ndim != 2 or reps.shape[1] != len(s):
        raise ValueError(f"{len(s)} scores but {len(p)} probabilities ({reps.shape} replicates)")
    point = expected_metric(metric, s, p, threshold)
    nan = Estimate(metric, math.nan, math.nan, math.nan, len(s), confidence)
    if len(s) == 0 or not math.isfinite(point):
        return nan
    rng = np.random.default_rng(seed)
    picks = np.arange(draws) % len(reps)
    expected = np.empty(draws)
    for d, r in enumerate(picks):  # the rows resampled, under one calibrator refit
        i = rng.integers(0, len(s), len(s))
        expected[d] = expected_metric(metric, s[i], reps[r][i], threshold)
    values: list[np.ndarray] = []
    block = max(1, _CHUNK // max(len(s), 1))
    for start in range(0, draws, block):
        ks = picks[start : start + block]
        ys = rng.random((len(ks), len(s))) < reps[ks]
        values.append(_draw_metrics(metric, ys, s, threshold))
    realised = np.concatenate(values)
    expected, realised = expected[np.isfinite(expected)], realised[np.isfinite(realised)]
    if min(len(expected), len(realised)) < max(2, draws // 2):
        return nan
    q = [(1.0 - confidence) / 2, (1.0 + confidence) / 2]
    lower, upper = np.quantile(expected, q)
    r_lower, r_upper = np.quantile(realised, q)
    # the point is the expectation: keep it inside the intervals that summarise it
    return Estimate(
        metric, point, float(min(lower, point)), float(max(upper, point)), len(s), confidence,
        float(min(r_lower, point)), float(max(r_upper, point)),
    )  # fmt: skip


def compare(estimate: Estimate, realised: float) -> Agreement:
    return Agreement(estimate, float(realised))
