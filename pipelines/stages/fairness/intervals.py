"""Fairness measures with bootstrap intervals, and paired intervals of their change between two
models on the same rows: what the gate judges fairness bounds and regressions on.

The rows are resampled the way the evaluate stage resamples them
(:func:`pipelines.stages.evaluate.bootstrap.resample_weights`: copies of a row count once), so a
measure's interval and the metrics' intervals rest on the same evidence. Each measure is judged
over the groups large enough for it (``min_sizes``: demographic parity and disparate impact on
the group's rows, equalized odds on its actual positives (TPR) and negatives (FPR)); the groups
are fixed on the data, not per resample, and those below the minimum are named with their size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.records import Interval
from pipelines.stages.evaluate.bootstrap import percentile_interval, resample_weights
from pipelines.stages.fairness.core import INTERSECTION, MEASURES, group_labels

_NAN = Interval(float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class FairnessIntervals:
    """attribute -> measure -> CI; with a second model, the paired CI of (model - other)."""

    measures: Mapping[str, Mapping[str, Interval]]
    changes: Mapping[str, Mapping[str, Interval]] = field(default_factory=dict)
    not_judged: tuple[str, ...] = ()
    other: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # the other's points


def attribute_labels(sensitive: pd.DataFrame, intersection: bool) -> dict[str, np.ndarray]:
    """Group labels per attribute (and the attributes crossed, ``"a x b"``, if asked)."""
    labels = {str(c): group_labels(sensitive[c]).astype(str) for c in sensitive.columns}
    if intersection and len(labels) >= 2:
        names = list(labels)
        crossed = labels[names[0]]
        for name in names[1:]:
            crossed = np.char.add(np.char.add(crossed, INTERSECTION), labels[name])
        labels[INTERSECTION.join(names)] = crossed
    return labels


def _columns(onehot: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """n x 4k: per group, its rows, actual positives, selected and true positives, so that one
    matrix product with a block of resample weights gives every group's sums."""
    cols = np.stack([np.ones_like(y), y, pred, y * pred], axis=1)  # n x 4
    out: np.ndarray = (cols[:, :, None] * onehot[:, None, :]).reshape(len(y), -1)
    return out


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


def _gap(values: np.ndarray) -> np.ndarray:
    if values.shape[1] < 2:
        return np.full(len(values), np.nan)
    out: np.ndarray = np.nanmax(values, axis=1) - np.nanmin(values, axis=1)
    return out


def _judged(
    attr: str, groups: np.ndarray, s: np.ndarray, min_sizes: Mapping[str, int], notes: list[str]
) -> dict[str, np.ndarray]:
    """Which groups each measure judges (sizes from the data as it is), naming the others."""
    n, pos = s[0, 0], s[0, 1]
    counts = {"rows": n, "positives": pos, "negatives": n - pos}
    need = {
        "rows": min(
            min_sizes["demographic_parity_difference"], min_sizes["disparate_impact_ratio"]
        ),
        "positives": min_sizes["equalized_odds_difference"],
        "negatives": min_sizes["equalized_odds_difference"],
    }
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
) -> FairnessIntervals:
    """Every measure per attribute with its percentile-bootstrap CI; with ``other_pred`` (the
    champion's predictions on the same rows) the paired CI of (``y_pred`` - ``other_pred``).
    ``rows``: an id per row, equal for copies of one row."""
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
    prepared = []
    for attr, lab in labels.items():
        groups, inverse = np.unique(np.asarray(lab), return_inverse=True)
        onehot = np.zeros((n, len(groups)))
        onehot[np.arange(n), inverse] = 1.0
        cols = _columns(onehot, y, pred)
        cols_other = None if other is None else _columns(onehot, y, other)
        base = _sums(np.ones((1, n)), cols)
        keep = _judged(attr, groups, base, min_sizes, notes)
        prepared.append((attr, cols, cols_other, keep))
        point = _measures(base, keep)
        measures[attr] = {m: Interval(float(point[m][0]), math.nan, math.nan) for m in MEASURES}
        if cols_other is not None:
            point_other = _measures(_sums(np.ones((1, n)), cols_other), keep)
            others[attr] = {m: float(point_other[m][0]) for m in MEASURES}
    draws: dict[tuple[str, str], list[np.ndarray]] = {}
    diffs: dict[tuple[str, str], list[np.ndarray]] = {}
    if n >= 2:  # every attribute on the same resamples, drawn once
        for w in resample_weights(n, samples, seed, ids):
            for attr, cols, cols_other, keep in prepared:
                v = _measures(_sums(w, cols), keep)
                v_other = None if cols_other is None else _measures(_sums(w, cols_other), keep)
                for m in MEASURES:
                    draws.setdefault((attr, m), []).append(v[m])
                    if v_other is not None:
                        diffs.setdefault((attr, m), []).append(v[m] - v_other[m])
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
    return FairnessIntervals(measures, changes, tuple(notes), others)


def _interval(point: float, draws: list[np.ndarray], confidence: float) -> Interval:
    if not np.isfinite(point) or not draws:
        return Interval(float(point), float("nan"), float("nan")) if np.isfinite(point) else _NAN
    lo, hi = percentile_interval(np.concatenate(draws), confidence)
    return Interval(float(point), lo, hi)
