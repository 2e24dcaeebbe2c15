"""Intervals by linearisation, for large held-out sets where a bootstrap costs minutes.

Every metric here is a smooth function of per-row sums, and ROC AUC is a two-sample
U-statistic, so each has an influence value per row: the metric moves by about
``IF_i / n`` when row ``i`` is added. Its variance is ``sum(IF_i^2) / n^2`` (for ROC AUC this
is DeLong's variance; for a paired difference, the influence values of the two models are
subtracted row by row, which is the paired DeLong test), and the interval is
``point +- z * sd``. Copies of a row count once: the influence values of a row's copies are
summed before squaring (a cluster-robust variance). At large n the bootstrap and this agree
(tests/unit/test_evaluate.py checks it); it costs one sort instead of a thousand resamples.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from pipelines.config import EvaluateConfig
from pipelines.records import Interval


def influence(
    y: np.ndarray, p: np.ndarray, cfg: EvaluateConfig
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Each metric's value and its influence value per row (mean 0), for labels ``y`` and
    scores ``p``; the values equal the bootstrap path's point estimates."""
    n = len(y)
    pred = (p >= cfg.decision_threshold).astype(np.float64)
    tp = y * pred
    pos, pp = y.sum(), pred.sum()
    out: dict[str, np.ndarray] = {}
    correct = (pred == y).astype(np.float64)
    out["accuracy"] = correct - correct.mean()
    prec = tp.sum() / pp if pp > 0 else 0.0
    out["precision"] = (tp - prec * pred) * n / pp if pp > 0 else np.zeros(n)
    rec = tp.sum() / pos if pos > 0 else 0.0
    out["recall"] = (tp - rec * y) * n / pos if pos > 0 else np.zeros(n)
    f1 = 2 * tp.sum() / (pp + pos) if pp + pos > 0 else 0.0
    out["f1"] = (2 * tp - f1 * (pred + y)) * n / (pp + pos) if pp + pos > 0 else np.zeros(n)
    eps = np.finfo(np.float64).eps
    pc = np.clip(p, eps, 1 - eps)
    loss = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    out["log_loss"] = loss - loss.mean()
    sq = (p - y) ** 2
    out["brier"] = sq - sq.mean()
    k = cfg.calibration_bins
    bins = np.searchsorted(np.linspace(0.0, 1.0, k + 1)[1:-1], p)
    gap = np.bincount(bins, weights=y - p, minlength=k)
    signed = np.sign(gap)[bins] * (y - p)
    out["ece"] = signed - signed.mean()
    auc, out["roc_auc"] = _auc_influence(y, p)
    points = {
        "roc_auc": auc,
        "accuracy": float(correct.mean()),
        "f1": float(f1),
        "precision": float(prec),
        "recall": float(rec),
        "log_loss": float(loss.mean()),
        "brier": float(sq.mean()),
        "ece": float(np.abs(gap).sum() / n),
    }
    return points, out


def _auc_influence(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
    """DeLong's placement values as influence values: a positive's share of negatives scored
    below it, a negative's share of positives scored above it (ties count half). One sort of
    the scores and cumulative counts over it (a search per row into the other class's sorted
    scores costs several times as much at a million rows: every lookup misses the cache)."""
    n = len(y)
    is_pos = y == 1
    m = int(is_pos.sum())
    k = n - m
    out = np.zeros(n)
    if m == 0 or k == 0:
        return math.nan, out
    order = np.argsort(p)  # tied scores form one group below: their order does not matter
    ps, pos = p[order], is_pos[order]
    new_group = np.r_[True, ps[1:] != ps[:-1]]  # each group of tied scores
    start = np.flatnonzero(new_group)
    g = np.cumsum(new_group) - 1
    neg_before = np.r_[0, np.cumsum(~pos)][start]  # negatives scored below each group
    pos_before = np.r_[0, np.cumsum(pos)][start]
    neg_in = np.diff(np.r_[neg_before, k])
    pos_in = np.diff(np.r_[pos_before, m])
    placement = np.where(
        pos,
        (neg_before[g] + 0.5 * neg_in[g]) / k,  # a positive: negatives below it
        (m - pos_before[g] - pos_in[g] + 0.5 * pos_in[g]) / m,  # a negative: positives above
    )
    auc = float(placement[pos].mean())
    placement -= auc
    placement *= np.where(pos, n / m, n / k)
    out[order] = placement
    return auc, out


def linear_interval(
    point: float, values: np.ndarray, confidence: float, ids: np.ndarray | None = None
) -> Interval:
    """``point`` with the normal interval from influence ``values`` (summed per distinct row
    when ``ids`` are given)."""
    n = len(values)
    if n < 2 or not math.isfinite(point):
        return Interval(point, math.nan, math.nan)
    per_row = values if ids is None else np.bincount(ids, weights=values)
    sd = math.sqrt(float(np.sum(per_row**2))) / n
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return Interval(point, point - z * sd, point + z * sd)
