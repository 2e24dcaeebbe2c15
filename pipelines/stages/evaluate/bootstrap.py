"""The evaluate core: every metric with a percentile-bootstrap interval, and paired differences.

The bootstrap is vectorised. A resample is a vector of row multiplicities (how often each row was
drawn), so every metric is a weighted sum over rows: the confusion counts, log loss, Brier score
and the calibration bins are one matrix product per block of resamples, and ROC AUC is the
weighted Mann-Whitney statistic (a cumulative sum over rows sorted by score, ties counting half).
The point estimate goes through the same code with all weights 1.

Copies of a row count once: given ``rows`` (an id per row, equal for copies of one row, see
:func:`~pipelines.stages.evaluate.model.distinct_row_ids`), a resample draws distinct rows and
each drawn row weighs its multiplicity, so a batch of one row copied 879 times has one row of
evidence, not 879.

Above ``linear_above_rows`` distinct rows the intervals come from linearisation
(:mod:`.linear`: DeLong for ROC AUC, paired for differences) instead: at a million rows a
thousand resamples cost minutes, and there the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.config import EvaluateConfig
from pipelines.records import Interval
from pipelines.stages.evaluate.linear import influence, linear_interval
from pipelines.stages.evaluate.result import (
    METRICS,
    CalibrationBin,
    Confusion,
    Evaluation,
    EvaluationError,
    RocCurve,
    TooLittleData,
    check_metric,
)

ROC_MAX_POINTS = 200
_BLOCK = 64  # resamples per block at most
# Bytes the resample weights of one block may take: a block holds about 4 arrays of b x n
# 8-byte values (draws, offsets, counts, weights), so b shrinks as n grows and a million
# rows cost ~256 MB, not 64 x 1M x 32 B = 2 GB.
_BLOCK_BYTES = 256 * 2**20


def evaluate_scores(
    y_true: np.ndarray, proba: np.ndarray, cfg: EvaluateConfig, rows: Any = None
) -> Evaluation:
    """All metrics with percentile-bootstrap CIs, ROC points, confusion counts, calibration.
    ``rows``: an id per row, equal for copies of one row (None: every row distinct)."""
    y, p = _check_inputs(y_true, proba)
    ids, distinct = _distinct(rows, len(y))
    metrics = {}
    if _linear(cfg, distinct):  # large n: one sort instead of a thousand resamples
        points, values = influence(y, p, cfg)
        for m in METRICS:
            metrics[m] = linear_interval(points[m], values[m], cfg.confidence, ids)
    else:
        s = _prepare(y, p, cfg)
        point = _metric_values(s, np.ones((1, len(y))))
        draws: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
        for w in _resample_weights(len(y), cfg.bootstrap_samples, cfg.seed, ids):
            for m, v in _metric_values(s, w).items():
                draws[m].append(v)
        for m in METRICS:
            lo, hi = _interval(np.concatenate(draws[m]), cfg.confidence)
            metrics[m] = Interval(float(point[m][0]), lo, hi)

    pred = p >= cfg.decision_threshold
    yb = y.astype(bool)
    confusion = Confusion(
        tn=int((~yb & ~pred).sum()),
        fp=int((~yb & pred).sum()),
        fn=int((yb & ~pred).sum()),
        tp=int((yb & pred).sum()),
    )
    k = cfg.calibration_bins
    edges = np.linspace(0.0, 1.0, k + 1)
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=k)
    sum_p = np.bincount(ids, weights=p, minlength=k)
    sum_y = np.bincount(ids, weights=y, minlength=k)
    calibration = tuple(
        CalibrationBin(
            lower=float(edges[i]),
            upper=float(edges[i + 1]),
            mean_predicted=float(sum_p[i] / count[i]),
            observed_rate=float(sum_y[i] / count[i]),
            count=int(count[i]),
        )
        for i in range(k)
        if count[i] > 0
    )
    return Evaluation(
        n=len(y),
        positives=int(y.sum()),
        positive_rate=float(y.mean()),
        predicted_positive_rate=float(pred.mean()),
        decision_threshold=cfg.decision_threshold,
        confidence=cfg.confidence,
        bootstrap_samples=cfg.bootstrap_samples,
        seed=cfg.seed,
        metrics=metrics,
        roc=_roc(y, p),
        confusion=confusion,
        calibration=calibration,
        distinct_rows=distinct,
    )


def unmeasured(y_true: Any, proba: Any, cfg: EvaluateConfig, why: str) -> Evaluation:
    """The evaluation of rows too few to measure (:class:`TooLittleData`): counts as they are,
    every metric undefined (NaN), and ``note`` saying why."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    pred = p >= cfg.decision_threshold
    yb = y.astype(bool)
    nan = Interval(math.nan, math.nan, math.nan)
    return Evaluation(
        n=len(y),
        positives=int(y.sum()),
        positive_rate=float(y.mean()) if len(y) else math.nan,
        predicted_positive_rate=float(pred.mean()) if len(y) else math.nan,
        decision_threshold=cfg.decision_threshold,
        confidence=cfg.confidence,
        bootstrap_samples=cfg.bootstrap_samples,
        seed=cfg.seed,
        metrics={m: nan for m in METRICS},
        roc=RocCurve((), (), ()),
        confusion=Confusion(
            tn=int((~yb & ~pred).sum()),
            fp=int((~yb & pred).sum()),
            fn=int((yb & ~pred).sum()),
            tp=int((yb & pred).sum()),
        ),
        calibration=(),
        distinct_rows=None,
        note=why,
    )


def paired_bootstrap_difference(
    y_true: np.ndarray,
    proba_new: np.ndarray,
    proba_old: np.ndarray,
    metric: str,
    cfg: EvaluateConfig,
) -> Interval:
    """``metric(new) - metric(old)`` with a CI from resampling rows once for both models.

    Pairing removes the between-resample variance the two models share, so the interval is much
    narrower than comparing two separate CIs. The sign is raw: for losses a negative difference
    means the new model is better (see :func:`higher_is_better`).
    """
    return paired_bootstrap_differences(y_true, proba_new, proba_old, (metric,), cfg)[metric]


def paired_bootstrap_differences(
    y_true: np.ndarray,
    proba_new: np.ndarray,
    proba_old: np.ndarray,
    metrics: tuple[str, ...],
    cfg: EvaluateConfig,
    rows: Any = None,
) -> dict[str, Interval]:
    """:func:`paired_bootstrap_difference` for several metrics from one set of resamples (the
    same draws as one metric at a time, drawn once); ``rows`` as in :func:`evaluate_scores`."""
    for metric in metrics:
        check_metric(metric)
    y, p_new = _check_inputs(y_true, proba_new)
    _, p_old = _check_inputs(y_true, proba_old)
    ids, distinct = _distinct(rows, len(y))
    names = tuple(dict.fromkeys(metrics))
    if _linear(cfg, distinct):  # paired: the rows' influence values subtracted (paired DeLong)
        (pt_new, v_new), (pt_old, v_old) = influence(y, p_new, cfg), influence(y, p_old, cfg)
        return {
            m: linear_interval(pt_new[m] - pt_old[m], v_new[m] - v_old[m], cfg.confidence, ids)
            for m in names
        }
    new, old = _prepare(y, p_new, cfg), _prepare(y, p_old, cfg)
    ones = np.ones((1, len(y)))
    point_new, point_old = _metric_values(new, ones, names), _metric_values(old, ones, names)
    diffs: dict[str, list[np.ndarray]] = {m: [] for m in names}
    for w in _resample_weights(len(y), cfg.bootstrap_samples, cfg.seed, ids):
        v_new, v_old = _metric_values(new, w, names), _metric_values(old, w, names)
        for m in names:
            diffs[m].append(v_new[m] - v_old[m])
    out = {}
    for m in names:
        lo, hi = _interval(np.concatenate(diffs[m]), cfg.confidence)
        out[m] = Interval(float(point_new[m][0] - point_old[m][0]), lo, hi)
    return out


def metric_draws(
    y_true: Any, proba: Any, metric: str, cfg: EvaluateConfig, seed: int
) -> tuple[float, np.ndarray]:
    """``metric``'s point value and its value on each of ``cfg.bootstrap_samples`` resamples
    (for intervals of differences between models scored on different rows)."""
    y, p = _check_inputs(y_true, proba)
    s = _prepare(y, p, cfg)
    point = _metric_values(s, np.ones((1, len(y))), (metric,))[metric][0]
    draws = [
        _metric_values(s, w, (metric,))[metric]
        for w in _resample_weights(len(y), cfg.bootstrap_samples, seed)
    ]
    return float(point), np.concatenate(draws)


def resample_weights(
    n: int, samples: int, seed: int, ids: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """The bootstrap's resampling weights (blocks of rows x draws), as every interval here uses;
    ``ids`` (0..k-1 per row): copies of a row are drawn as one."""
    return _resample_weights(n, samples, seed, ids)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    return _interval(values, confidence)


def _linear(cfg: EvaluateConfig, distinct_rows: int) -> bool:
    return cfg.linear_above_rows is not None and distinct_rows > cfg.linear_above_rows


def _distinct(rows: Any, n: int) -> tuple[np.ndarray | None, int]:
    """Row ids as 0..k-1 and k, the number of distinct rows; None when every row is distinct
    (the plain bootstrap, whose draws stay what they were)."""
    if rows is None:
        return None, n
    given = np.asarray(rows)
    if given.shape != (n,):
        raise EvaluationError(f"rows has shape {given.shape}, expected ({n},)")
    _, ids = np.unique(given, return_inverse=True)
    k = int(ids.max()) + 1 if n else 0
    if k < 2:
        raise TooLittleData(f"need at least 2 distinct rows to evaluate, got {k} ({n} rows)")
    return (None if k == n else ids.astype(np.int64)), k


def _block_size(n: int) -> int:
    return max(1, min(_BLOCK, _BLOCK_BYTES // (32 * max(n, 1))))


def _check_inputs(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1:
        raise EvaluationError(f"y_true and proba must be 1-D (got shapes {y.shape}, {p.shape})")
    if len(y) != len(p):
        raise EvaluationError(f"y_true has {len(y)} rows but proba has {len(p)}")
    if len(y) < 2:
        raise TooLittleData(f"need at least 2 rows to evaluate, got {len(y)}")
    if not np.isin(y, (0, 1)).all():
        raise EvaluationError("y_true must hold only 0 and 1")
    if not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0:
        raise EvaluationError("proba must be finite probabilities in [0, 1]")
    y = y.astype(np.float64)
    positives = int(y.sum())
    if positives in (0, len(y)):
        raise TooLittleData(
            f"y_true holds a single class ({positives} positives in {len(y)} rows); "
            "ROC AUC and the class-wise metrics need both"
        )
    return y, p


@dataclass(frozen=True)
class _Scores:
    """Per-row columns of one model's scores, sorted by score; every metric sums over them."""

    n: int
    bins: int
    order: np.ndarray  # sorting permutation of the original rows
    columns: np.ndarray  # n x (5 + 3*bins), rows in score order
    neg: np.ndarray  # 1.0 where the sorted row is a negative
    pos_rows: np.ndarray  # sorted positions of the positives
    pos_tie_start: np.ndarray  # start / end of each positive's group of tied scores
    pos_tie_end: np.ndarray


def _prepare(y: np.ndarray, p: np.ndarray, cfg: EvaluateConfig) -> _Scores:
    n = len(y)
    order = np.argsort(p, kind="stable")
    ys, ps = y[order], p[order]
    pred = (ps >= cfg.decision_threshold).astype(np.float64)
    eps = np.finfo(np.float64).eps  # as sklearn's log_loss clips
    loss = -(
        ys * np.log(np.clip(ps, eps, 1 - eps)) + (1 - ys) * np.log(np.clip(1 - ps, eps, 1 - eps))
    )
    k = cfg.calibration_bins
    edges = np.linspace(0.0, 1.0, k + 1)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), np.searchsorted(edges[1:-1], ps)] = 1.0  # as calibration_curve
    columns = np.column_stack(
        [
            ys,
            pred,
            ys * pred,
            loss,
            (ps - ys) ** 2,
            onehot,
            onehot * ps[:, None],
            onehot * ys[:, None],
        ]
    )
    new_tie = np.r_[True, ps[1:] != ps[:-1]]
    tie_id = np.cumsum(new_tie) - 1
    starts = np.flatnonzero(new_tie)
    ends = np.r_[starts[1:], n]
    pos_rows = np.flatnonzero(ys == 1)
    return _Scores(
        n=n,
        bins=k,
        order=order,
        columns=columns,
        neg=1.0 - ys,
        pos_rows=pos_rows,
        pos_tie_start=starts[tie_id[pos_rows]],
        pos_tie_end=ends[tie_id[pos_rows]],
    )


def _metric_values(
    s: _Scores, weights: np.ndarray, names: tuple[str, ...] = METRICS
) -> dict[str, np.ndarray]:
    """Every metric in ``names`` for each row of ``weights`` (resamples x original rows)."""
    w = weights[:, s.order]
    sums = w @ s.columns
    n, k = weights.sum(axis=1), s.bins  # n rows, unless copies are drawn as one
    pos, pred_pos, tp = sums[:, 0], sums[:, 1], sums[:, 2]
    fp, fn = pred_pos - tp, pos - tp
    tn = n - pos - fp
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if "roc_auc" in names:
            cum = np.zeros((len(w), s.n + 1))
            np.cumsum(w * s.neg, axis=1, out=cum[:, 1:])
            below = cum[:, s.pos_tie_start]
            tied = cum[:, s.pos_tie_end] - below
            wins = (w[:, s.pos_rows] * (below + 0.5 * tied)).sum(axis=1)
            neg_total = n - pos
            out["roc_auc"] = np.where((pos > 0) & (neg_total > 0), wins / (pos * neg_total), np.nan)
        out["accuracy"] = (tp + tn) / n
        out["f1"] = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        out["precision"] = np.where(pred_pos > 0, tp / pred_pos, 0.0)
        out["recall"] = np.where(pos > 0, tp / pos, 0.0)
    out["log_loss"] = sums[:, 3] / n
    out["brier"] = sums[:, 4] / n
    sum_p, sum_y = sums[:, 5 + k : 5 + 2 * k], sums[:, 5 + 2 * k :]
    out["ece"] = np.abs(sum_y - sum_p).sum(axis=1) / n
    return {name: out[name] for name in names}


def _resample_weights(
    n: int, samples: int, seed: int, ids: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """Blocks of bootstrap resamples as row multiplicities (same draws for the same seed).
    With ``ids`` (0..k-1 per row), k distinct rows are drawn and every copy of a drawn row
    weighs as often as it was drawn."""
    rng = np.random.default_rng(seed)
    k = n if ids is None else int(ids.max()) + 1
    done = 0
    while done < samples:
        b = min(_block_size(n), samples - done)
        idx = rng.integers(0, k, size=(b, k))
        idx += np.arange(b)[:, None] * k
        counts = np.bincount(idx.ravel(), minlength=b * k).reshape(b, k).astype(np.float64)
        yield counts if ids is None else counts[:, ids]
        done += b


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def _roc(y: np.ndarray, p: np.ndarray) -> RocCurve:
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, p)
    if len(fpr) > ROC_MAX_POINTS:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, ROC_MAX_POINTS)).astype(int))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    return RocCurve(tuple(map(float, fpr)), tuple(map(float, tpr)), tuple(map(float, thr)))
