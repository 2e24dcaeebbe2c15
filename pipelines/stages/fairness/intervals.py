"""Fairness measures with bootstrap intervals, and paired intervals of their change between two
models on the same rows: what the gate judges fairness bounds and regressions on.

The rows are resampled the way the evaluate stage resamples them
(:func:`pipelines.stages.evaluate.bootstrap.resample_weights`: copies of a row count once), so a
measure's interval and the metrics' intervals rest on the same evidence. Each measure is judged
over the groups large enough for it (``min_sizes``: demographic parity and disparate impact on
the group's rows, equalized odds on its actual positives (TPR) and negatives (FPR)); the groups
are fixed on the data, not per resample, and those below the minimum are named with their size.
A measure's groups below the minimum are also pooled as one group, and the measure's point
with that group beside the judged ones is kept (:class:`SmallGroups`): too few rows for an
interval, but enough for the gate to see whether they could hide a violation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.config import FairnessConfig
from pipelines.groups import INTERSECTION, cross_groups, sensitive_groups
from pipelines.records import Interval
from pipelines.stages.evaluate.bootstrap import percentile_interval, resample_weights
from pipelines.stages.evaluate.linear import linear_interval
from pipelines.stages.fairness.core import MEASURES, group_labels

_NAN = Interval(float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class SmallGroups:
    """One measure's groups of one attribute below its minimum size: not judged on an interval.
    ``point`` (and ``other``, the other model's) is the measure with those groups pooled as one
    group beside the judged ones; ``rows_needed``: rows until each reaches the minimum at its
    share of the rows (None when a group has none of what it needs). ``comparable``: false when
    the measure (or a half of equalized odds) has fewer than two groups to compare that are large
    enough, even with the small ones pooled: then it cannot be judged for the attribute at all."""

    groups: tuple[str, ...]  # "'Female' (24 actual positives)"
    minimum: int
    point: float
    other: float | None = None
    rows_needed: int | None = None
    comparable: bool = True
    share: float = 1.0  # of the rows, the small groups' together


@dataclass(frozen=True)
class FairnessIntervals:
    """attribute -> measure -> CI; with a second model, the paired CI of (model - other)."""

    measures: Mapping[str, Mapping[str, Interval]]
    changes: Mapping[str, Mapping[str, Interval]] = field(default_factory=dict)
    not_judged: tuple[str, ...] = ()
    other: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # the other's points
    small: Mapping[str, Mapping[str, SmallGroups]] = field(default_factory=dict)  # attr -> measure


def attribute_labels(
    sensitive: pd.DataFrame, cfg: FairnessConfig, intersection: bool
) -> dict[str, np.ndarray]:
    """Group labels per attribute, numeric ones binned as the fairness stage bins them (and the
    attributes crossed, ``"a x b"``, if asked)."""
    labels = {
        str(c): group_labels(sensitive_groups(sensitive[c], cfg)).astype(str)
        for c in sensitive.columns
    }
    if intersection and len(labels) >= 2:
        labels[INTERSECTION.join(labels)] = cross_groups(labels, cfg)
    return labels


def _columns(onehot: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """n x 4k: per group, its rows, actual positives, selected and true positives, so that one
    matrix product with a block of resample weights gives every group's sums."""
    cols = np.stack([np.ones_like(y), y, pred, y * pred], axis=1)  # n x 4
    out: np.ndarray = (cols[:, :, None] * onehot[:, None, :]).reshape(len(y), -1)
    return out


def _group_sums(inverse: np.ndarray, k: int, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The data's own group sums (1 x 4 x k), as :func:`_sums` gives them with weights 1."""
    cols = (np.ones_like(y), y, pred, y * pred)
    return np.stack([np.bincount(inverse, weights=c, minlength=k) for c in cols])[None]


def _sums(w: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Per resample and group: rows, actual positives, selected, true positives (b x 4 x k)."""
    out: np.ndarray = (w @ columns).reshape(len(w), 4, -1)
    return out


def _measures(s: np.ndarray, keep: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each measure per resample from the group sums, over the groups each may judge."""
    n, pos, sel, tp = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    neg, fp = n - pos, sel - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, sel / n, np.nan)[:, keep["rows"]]
        tpr = np.where(pos > 0, tp / pos, np.nan)[:, keep["positives"]]
        fpr = np.where(neg > 0, fp / neg, np.nan)[:, keep["negatives"]]
        out = {
            "demographic_parity_difference": _gap(rate),
            "disparate_impact_ratio": np.nanmin(rate, axis=1) / np.nanmax(rate, axis=1)
            if rate.shape[1] >= 2
            else np.full(len(s), np.nan),
            "equalized_odds_difference": np.fmax(_gap(tpr), _gap(fpr)),
        }
    return out


def _influence(
    y: np.ndarray,
    pred: np.ndarray,
    inverse: np.ndarray,
    s: np.ndarray,
    keep: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each measure's influence value per row (see :mod:`pipelines.stages.evaluate.linear`): a
    gap is linearised at the groups that make it (the highest and lowest rate on the data)."""
    n_rows = len(y)
    n, pos, sel, tp = s[0, 0], s[0, 1], s[0, 2], s[0, 3]
    neg = n - pos

    def rate_if(g: int, mask: np.ndarray, count: float, rate: float) -> np.ndarray:
        return np.where((inverse == g) & mask, pred - rate, 0.0) * n_rows / count

    def gap(
        groups: np.ndarray, rates: np.ndarray, mask: np.ndarray, counts: np.ndarray
    ) -> tuple[float, np.ndarray, tuple[float, float, np.ndarray, np.ndarray] | None]:
        if len(groups) < 2:
            return math.nan, np.zeros(n_rows), None
        r = rates[groups]
        hi, lo = groups[int(np.argmax(r))], groups[int(np.argmin(r))]
        f_hi = rate_if(hi, mask, counts[hi], rates[hi])
        f_lo = rate_if(lo, mask, counts[lo], rates[lo])
        return float(rates[hi] - rates[lo]), f_hi - f_lo, (rates[hi], rates[lo], f_hi, f_lo)

    with np.errstate(divide="ignore", invalid="ignore"):
        rate, tpr, fpr = sel / n, tp / pos, (sel - tp) / neg
    every = np.ones(n_rows, dtype=bool)
    _, dpd_if, parts = gap(keep["rows"], rate, every, n)
    if parts is None:
        di_if = np.zeros(n_rows)
    else:
        r_hi, r_lo, f_hi, f_lo = parts
        di_if = (f_lo - (r_lo / r_hi) * f_hi) / r_hi if r_hi > 0 else np.zeros(n_rows)
    tpr_gap, tpr_if, _ = gap(keep["positives"], tpr, y == 1, pos)
    fpr_gap, fpr_if, _ = gap(keep["negatives"], fpr, y == 0, neg)
    eod_if = tpr_if if np.nan_to_num(tpr_gap, nan=-1) >= np.nan_to_num(fpr_gap, nan=-1) else fpr_if
    return {
        "demographic_parity_difference": dpd_if,
        "disparate_impact_ratio": di_if,
        "equalized_odds_difference": eod_if,
    }


def _gap(values: np.ndarray) -> np.ndarray:
    if values.shape[1] < 2:
        return np.full(len(values), np.nan)
    out: np.ndarray = np.nanmax(values, axis=1) - np.nanmin(values, axis=1)
    return out


_UNITS = {"rows": "rows", "positives": "actual positives", "negatives": "actual negatives"}
_USES = {  # which counts each measure's groups need
    "demographic_parity_difference": ("rows",),
    "disparate_impact_ratio": ("rows",),
    "equalized_odds_difference": ("positives", "negatives"),
}


def _need(min_sizes: Mapping[str, int]) -> dict[str, int]:
    return {
        "rows": min(
            min_sizes["demographic_parity_difference"], min_sizes["disparate_impact_ratio"]
        ),
        "positives": min_sizes["equalized_odds_difference"],
        "negatives": min_sizes["equalized_odds_difference"],
    }


def _counts(s: np.ndarray) -> dict[str, np.ndarray]:
    n, pos = s[0, 0], s[0, 1]
    return {"rows": n, "positives": pos, "negatives": n - pos}


def _small_groups(
    groups: np.ndarray,
    base: np.ndarray,
    base_other: np.ndarray | None,
    keep: Mapping[str, np.ndarray],
    min_sizes: Mapping[str, int],
    distinct: int,
) -> dict[str, SmallGroups]:
    """Per measure with groups below its minimum: the point with those groups pooled as one
    group beside the judged ones (for both models), so that a violation they could hide shows.
    Pooled, because a single group of a few rows has rates in steps too coarse to read."""
    counts, need = _counts(base), _need(min_sizes)
    k = len(groups)
    small = {what: np.setdiff1d(np.arange(k), keep[what]) for what in counts}
    pooled_keep = {
        # the pooled group of each kind is column k, k + 1, k + 2 of the widened sums
        what: np.r_[keep[what], k + i] if len(small[what]) else keep[what]
        for i, what in enumerate(counts)
    }

    def widened(s: np.ndarray) -> np.ndarray:
        extra = [s[:, :, small[what]].sum(axis=2, keepdims=True) for what in counts]
        return np.concatenate([s, *extra], axis=2)

    point = _measures(widened(base), pooled_keep)
    point_other = None if base_other is None else _measures(widened(base_other), pooled_keep)
    out = {}
    for m, uses in _USES.items():
        idx = [(what, i) for what in uses for i in small[what]]
        if not idx:
            continue
        named = tuple(
            f"{str(groups[i])!r} ({int(counts[what][i])} {_UNITS[what]})" for what, i in idx
        )
        known = [
            math.ceil(distinct * need[what] / counts[what][i])
            for what, i in idx
            if counts[what][i] > 0
        ]
        pooled_large = {w: counts[w][small[w]].sum() >= need[w] for w in uses}
        members = np.unique(np.concatenate([small[w] for w in uses]))
        rows = counts["rows"]
        out[m] = SmallGroups(
            groups=named,
            minimum=need[uses[0]],
            point=float(point[m][0]),
            other=None if point_other is None else float(point_other[m][0]),
            rows_needed=max(known) if len(known) == len(idx) else None,
            comparable=all(len(keep[w]) + int(pooled_large[w]) >= 2 for w in uses if len(small[w])),
            share=float(rows[members].sum() / rows.sum()) if rows.sum() > 0 else 1.0,
        )
    return out


def _judged(
    attr: str, groups: np.ndarray, s: np.ndarray, min_sizes: Mapping[str, int], notes: list[str]
) -> dict[str, np.ndarray]:
    """Which groups each measure judges (sizes from the data as it is), naming the others."""
    counts, need = _counts(s), _need(min_sizes)
    keep = {}
    for what, c in counts.items():
        keep[what] = np.flatnonzero(c >= need[what])
        small = np.flatnonzero(c < need[what])
        if len(small):
            listed = ", ".join(f"{str(groups[i])!r} ({int(c[i])})" for i in small)
            measure = (
                "demographic_parity_difference and disparate_impact_ratio"
                if what == "rows"
                else f"equalized_odds_difference ({'TPR' if what == 'positives' else 'FPR'})"
            )
            notes.append(
                f"{attr}: groups with < {need[what]} {what} not judged for {measure}: {listed}"
            )
    return keep


def fairness_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    labels: Mapping[str, np.ndarray],
    min_sizes: Mapping[str, int],
    samples: int,
    confidence: float,
    seed: int,
    rows: np.ndarray | None = None,
    other_pred: np.ndarray | None = None,
    linear_above_rows: int | None = None,
) -> FairnessIntervals:
    """Every measure per attribute with its percentile-bootstrap CI; with ``other_pred`` (the
    champion's predictions on the same rows) the paired CI of (``y_pred`` - ``other_pred``).
    ``rows``: an id per row, equal for copies of one row. Above ``linear_above_rows`` distinct
    rows the intervals come from linearisation instead of the bootstrap."""
    y = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    other = None if other_pred is None else np.asarray(other_pred, dtype=np.float64)
    n = len(y)
    ids = None
    if rows is not None:
        _, ids = np.unique(np.asarray(rows), return_inverse=True)
        if int(ids.max(initial=-1)) + 1 in (n, 0):
            ids = None
    notes: list[str] = []
    measures: dict[str, dict[str, Interval]] = {}
    changes: dict[str, dict[str, Interval]] = {}
    others: dict[str, dict[str, float]] = {}
    small: dict[str, dict[str, SmallGroups]] = {}
    distinct = n if ids is None else int(ids.max(initial=-1)) + 1
    linear = linear_above_rows is not None and distinct > linear_above_rows
    prepared = []
    for attr, lab in labels.items():
        groups, inverse = np.unique(np.asarray(lab), return_inverse=True)
        base = _group_sums(inverse, len(groups), y, pred)
        keep = _judged(attr, groups, base, min_sizes, notes)
        point = _measures(base, keep)
        base_other = None if other is None else _group_sums(inverse, len(groups), y, other)
        if base_other is not None:
            point_other = _measures(base_other, keep)
            others[attr] = {m: float(point_other[m][0]) for m in MEASURES}
        pooled = _small_groups(groups, base, base_other, keep, min_sizes, distinct)
        if pooled:
            small[attr] = pooled
        if linear:  # one pass over the rows, no resamples
            v = _influence(y, pred, inverse, base, keep)
            measures[attr] = {
                m: linear_interval(float(point[m][0]), v[m], confidence, ids) for m in MEASURES
            }
            if base_other is not None and other is not None:
                v_other = _influence(y, other, inverse, base_other, keep)
                changes[attr] = {
                    m: linear_interval(
                        float(point[m][0]) - others[attr][m], v[m] - v_other[m], confidence, ids
                    )
                    for m in MEASURES
                }
            continue
        onehot = np.zeros((n, len(groups)))
        onehot[np.arange(n), inverse] = 1.0
        cols = _columns(onehot, y, pred)
        cols_other = None if other is None else _columns(onehot, y, other)
        prepared.append((attr, cols, cols_other, keep))
        measures[attr] = {m: Interval(float(point[m][0]), math.nan, math.nan) for m in MEASURES}
    if linear:
        return FairnessIntervals(measures, changes, tuple(notes), others, small)
    draws: dict[tuple[str, str], list[np.ndarray]] = {}
    diffs: dict[tuple[str, str], list[np.ndarray]] = {}
    if n >= 2:  # every attribute on the same resamples, drawn once
        for w in resample_weights(n, samples, seed, ids):
            for attr, cols, cols_other, keep in prepared:
                drawn = _measures(_sums(w, cols), keep)
                drawn_other = None if cols_other is None else _measures(_sums(w, cols_other), keep)
                for m in MEASURES:
                    draws.setdefault((attr, m), []).append(drawn[m])
                    if drawn_other is not None:
                        diffs.setdefault((attr, m), []).append(drawn[m] - drawn_other[m])
    for attr, _, cols_other, _ in prepared:
        point_new = {m: measures[attr][m].point for m in MEASURES}
        measures[attr] = {
            m: _interval(point_new[m], draws.get((attr, m), []), confidence) for m in MEASURES
        }
        if cols_other is not None:
            changes[attr] = {
                m: _interval(point_new[m] - others[attr][m], diffs.get((attr, m), []), confidence)
                for m in MEASURES
            }
    return FairnessIntervals(measures, changes, tuple(notes), others, small)


def _interval(point: float, draws: list[np.ndarray], confidence: float) -> Interval:
    if not np.isfinite(point) or not draws:
        return Interval(float(point), float("nan"), float("nan")) if np.isfinite(point) else _NAN
    lo, hi = percentile_interval(np.concatenate(draws), confidence)
    return Interval(float(point), lo, hi)
