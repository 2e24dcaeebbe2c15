"""Anytime-valid intervals for the canary: confidence sequences, safe to look at on every pass.

The canary is judged again on every monitor pass until it decides. A fixed-confidence interval
re-checked at every look promotes or rolls back wrongly far more often than its nominal rate:
each look is another chance for the noise to cross the margin. A *confidence sequence* is a
sequence of intervals that covers the true value at all looks at once with the nominal
probability, however often and whenever one looks, so a clear result may stop early.

The construction is an asymptotic confidence sequence (time-uniform central limit theory): an
estimator that is asymptotically linear, ``theta_t - theta ~ (1/t) sum_i IF_i`` over the ``t``
rows seen, behaves like a random walk with normal steps uniformly in time, and the two-sided
normal-mixture boundary bounds that walk at all times. With ``s_t^2`` the estimated variance
of one row's influence value (so the estimate's variance is ``v_t = s_t^2 / t``) the interval is

    theta_t +- s_t * sqrt( 2 (t rho^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 + 1) / alpha ) )

and ``P(theta in every interval) >= 1 - alpha`` as the rows grow. ``rho`` sets the time where
the boundary is tightest: ``rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / t_star`` makes it
tightest at ``t_star`` rows. Here ``t_star`` is where the first decision can come (``min_rows``
per arm): at 95% the radius is then 3.03 standard errors (1.96 for a single look) and widens
slowly after it (3.24 at ten times, 3.56 at a hundred times ``t_star``).

The influence values are the evaluate stage's linearisation (:mod:`pipelines.stages.evaluate
.linear`): for ROC AUC the structural components (placement values) of its two-sample
U-statistic, whose mean square is the DeLong variance. Shadow arms are the same rows scored by
two models: the difference's influence values are the two models' subtracted row by row
(paired). Canary arms answer different requests, each routed at random to one arm: with the
arms as one stream of ``t = n_champion + n_canary`` rows, the difference is asymptotically
linear in that stream with variance ``v_champion + v_canary`` (unpaired). The fairness
measures (largest minus smallest group rate, their ratio, the equalized-odds gap) are
linearised the same way at the groups that are largest and smallest at the point estimate:
:func:`pipelines.release.canary.groups.measure_influence`. Where two groups share the largest
or smallest rate the measure has a kink and the linearised variance is larger than the
bootstrap's (conservative; tests/unit/test_canary_sequential.py shows both cases).
"""

from __future__ import annotations

import math

import numpy as np

from pipelines.config import EvaluateConfig
from pipelines.records import Interval
from pipelines.stages.evaluate.linear import influence
from pipelines.stages.evaluate.result import TooLittleData


def planned_rows(min_rows: int, *, paired: bool) -> int:
    """Where the sequence is tightest: the rows of the first possible decision (``min_rows``
    per arm; paired arms share their rows)."""
    return min_rows if paired else 2 * min_rows


def mixture_rho2(planned_rows: float, alpha: float) -> float:
    """The normal mixture's ``rho^2`` that makes the boundary tightest at ``planned_rows``."""
    if planned_rows <= 0 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need planned_rows > 0 and 0 < alpha < 1, got {planned_rows}, {alpha}")
    two_log = -2.0 * math.log(alpha)
    return (two_log + math.log(two_log + 1.0)) / planned_rows


def radius(variance: float, rows: float, confidence: float, planned_rows: float) -> float:
    """Half-width of the confidence sequence at ``rows`` rows for an estimate of variance
    ``variance`` (``s_t^2 / t``): ``sqrt(variance) * sqrt(2 (x+1)/x * log(sqrt(x+1)/alpha))``
    with ``x = t rho^2``, which is the formula above with ``s_t^2 = t * variance``."""
    if rows <= 0 or not math.isfinite(variance) or variance < 0:
        return math.nan
    alpha = 1.0 - confidence
    x = rows * mixture_rho2(planned_rows, alpha)
    return math.sqrt(variance) * math.sqrt(
        2.0 * (x + 1.0) / x * math.log(math.sqrt(x + 1.0) / alpha)
    )


def sequence_interval(
    point: float, variance: float, rows: float, confidence: float, planned_rows: float
) -> Interval:
    """``point`` with the confidence sequence's interval at this look."""
    if not math.isfinite(point):
        return Interval(point, math.nan, math.nan)
    r = radius(variance, rows, confidence, planned_rows)
    return Interval(point, point - r, point + r)


def influence_variance(values: np.ndarray) -> float:
    """The variance of an asymptotically linear estimate from its rows' influence values."""
    n = len(values)
    return float(np.sum(values**2)) / n**2 if n else math.nan


def metric_influence(
    y: np.ndarray, p: np.ndarray, metric: str, cfg: EvaluateConfig
) -> tuple[float, np.ndarray]:
    """``metric`` on labels ``y`` and scores ``p`` and its influence value per row."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    positives = int(y.sum())
    if len(y) < 2 or positives in (0, len(y)):
        raise TooLittleData(
            f"y_true holds a single class ({positives} positives in {len(y)} rows); "
            "ROC AUC and the class-wise metrics need both"
        )
    points, values = influence(y, p, cfg)
    return float(points[metric]), values[metric]


def compare_arms_sequential(
    y_champion: np.ndarray,
    p_champion: np.ndarray,
    y_canary: np.ndarray,
    p_canary: np.ndarray,
    metric: str,
    cfg: EvaluateConfig,
    *,
    paired: bool,
    planned_rows: float,
) -> tuple[Interval, Interval, Interval]:
    """Each arm's ``metric`` and (canary - champion), each with its confidence sequence's
    interval at this look (``cfg.confidence``). ``paired``: the arms are the same rows with the
    same labels; ``planned_rows``: the rows of the stream (paired: rows; unpaired: both arms'
    rows together) where the boundary is tightest."""
    pt_ch, if_ch = metric_influence(y_champion, p_champion, metric, cfg)
    pt_ca, if_ca = metric_influence(y_canary, p_canary, metric, cfg)
    v_ch, v_ca = influence_variance(if_ch), influence_variance(if_ca)
    conf = cfg.confidence
    champion = sequence_interval(pt_ch, v_ch, len(if_ch), conf, planned_rows / (1 + (not paired)))
    canary = sequence_interval(pt_ca, v_ca, len(if_ca), conf, planned_rows / (1 + (not paired)))
    diff = difference_interval(
        (pt_ch, if_ch), (pt_ca, if_ca), conf, paired=paired, planned_rows=planned_rows
    )
    return champion, canary, diff


def difference_interval(
    old: tuple[float, np.ndarray],
    new: tuple[float, np.ndarray],
    confidence: float,
    *,
    paired: bool,
    planned_rows: float,
) -> Interval:
    """``new - old`` (each a point and its rows' influence values) with the confidence
    sequence's interval: paired (the same rows) or unpaired (independent arms, one stream)."""
    (pt_old, if_old), (pt_new, if_new) = old, new
    if paired:
        if len(if_old) != len(if_new):
            raise ValueError("paired arms must hold the same rows")
        variance, rows = influence_variance(if_new - if_old), len(if_new)
    else:
        variance = influence_variance(if_old) + influence_variance(if_new)
        rows = len(if_old) + len(if_new)
    return sequence_interval(pt_new - pt_old, variance, rows, confidence, planned_rows)
