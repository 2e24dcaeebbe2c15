"""Bootstrap draws and influence values of the fairness stage's measures, so an arm's fairness
has an interval too.

Point values of fairness measures on live traffic are noisy: on synthetic data where canary and
champion are the same model, comparing the points against a 0.03 margin "finds" a regression in
about 4 runs of 5, even at 3,000 rows per arm. So the canary compares fairness the way it
compares the metric: with an interval of the change, a bootstrap interval (``deploy.canary
.method: fixed``) or a confidence sequence from the measures' influence values
(``sequential``, :func:`measure_influence` and :mod:`pipelines.release.canary.sequential`).

The fairness stage (:func:`~pipelines.stages.fairness.assess_fairness`) decides which groups
are judged (size rules included) and gives the point values. Here the same three measures are
recomputed on each bootstrap resample, over the groups the stage judged, as weighted sums over
the rows (one matrix product per block of resamples, like the evaluate stage's metrics). With
every weight 1 they equal the stage's values (tested).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import FairnessConfig, Params
from pipelines.groups import sensitive_groups
from pipelines.records import Interval, JsonRecord
from pipelines.release.canary.sequential import difference_interval
from pipelines.stages.evaluate.bootstrap import percentile_interval, resample_weights
from pipelines.stages.fairness import FairnessResult, group_labels
from pipelines.stages.fairness.core import INTERSECTION
from pipelines.stages.gate.rules import FAIRNESS_LOWER_IS_BETTER


@dataclass(frozen=True)
class FairnessChange(JsonRecord):
    """One measure of one attribute, canary against champion on the live traffic.

    ``regression`` is positive where the canary is worse (a larger difference, a smaller ratio),
    with its bootstrap interval; ``regressed``: its lower bound is above the margin.
    """

    attribute: str
    measure: str
    champion: float
    canary: float
    regression: Interval
    regressed: bool


@dataclass(frozen=True)
class ArmSample:
    """One arm's judged rows for the fairness comparison."""

    frame: pd.DataFrame  # the sensitive columns
    y: np.ndarray
    y_pred: np.ndarray
    result: FairnessResult  # the fairness stage's assessment of these rows
    seed: int  # the arm's bootstrap seed (the same resamples as its metric's)


def compare_fairness(
    champion: ArmSample,
    canary: ArmSample,
    params: Params,
    *,
    paired: bool = False,
    planned_rows: float | None = None,
) -> tuple[FairnessChange, ...]:
    """Every measure defined in both arms, attribute by attribute, with the interval of its
    regression. ``deploy.canary.method`` ``fixed``: a bootstrap interval (paired arms, the
    same rows and seed, share their resamples); ``sequential``: the confidence sequence's
    interval (``paired`` and ``planned_rows`` as in
    :func:`~pipelines.release.canary.sequential.difference_interval`)."""
    cfg = params.evaluate
    margin = params.deploy.canary.fairness_margin
    attributes = compared_attributes(canary.result, params) & compared_attributes(
        champion.result, params
    )
    if params.deploy.canary.method == "sequential":
        return _compare_sequential(
            champion, canary, params, attributes, paired, planned_rows or len(canary.y)
        )
    draws = [
        _draws(arm, attributes, cfg.bootstrap_samples, params.fairness)
        for arm in (champion, canary)
    ]
    out = []
    for attribute, measure, old, new, sign in _measures_of_both(champion, canary, attributes):
        old_d, new_d = (d[attribute][measure] for d in draws)
        lower, upper = percentile_interval(sign * (new_d - old_d), cfg.confidence)
        change = Interval(sign * (new - old), lower, upper)
        out.append(FairnessChange(attribute, measure, old, new, change, lower > margin))
    return tuple(out)


def _measures_of_both(
    champion: ArmSample, canary: ArmSample, attributes: set[str]
) -> Iterator[tuple[str, str, float, float, float]]:
    """``(attribute, measure, champion's value, canary's value, sign)`` for each measure both
    arms define; ``sign * (canary - champion)`` is the regression (+1 where a larger value is
    worse, a difference; -1 where a smaller one is, a ratio)."""
    before = {a.attribute: a.measures for a in champion.result.attributes}
    for a in canary.result.attributes:
        if a.attribute not in attributes:
            continue
        for measure, new in a.measures.items():
            old = before[a.attribute][measure]
            if new is not None and old is not None:
                sign = 1.0 if measure in FAIRNESS_LOWER_IS_BETTER else -1.0
                yield a.attribute, measure, old, new, sign


def _compare_sequential(
    champion: ArmSample,
    canary: ArmSample,
    params: Params,
    attributes: set[str],
    paired: bool,
    planned_rows: float,
) -> tuple[FairnessChange, ...]:
    """The regressions' intervals from the measures' influence values (confidence sequence)."""
    margin = params.deploy.canary.fairness_margin
    linear = [
        {
            g.attribute: measure_influence(g, arm.y, arm.y_pred)
            for g in judged_groups(arm.frame, arm.result, attributes, params.fairness)
        }
        for arm in (champion, canary)
    ]
    out = []
    for attribute, measure, old, new, sign in _measures_of_both(champion, canary, attributes):
        old_if, new_if = (lin[attribute].get(measure) for lin in linear)
        if old_if is None or new_if is None:
            continue
        change = difference_interval(
            (sign * old, sign * old_if[1]),
            (sign * new, sign * new_if[1]),
            params.evaluate.confidence,
            paired=paired,
            planned_rows=planned_rows,
        )
        out.append(FairnessChange(attribute, measure, old, new, change, change.lower > margin))
    return tuple(out)


def measure_influence(
    groups: JudgedGroups, y: np.ndarray, y_pred: np.ndarray
) -> dict[str, tuple[float, np.ndarray]]:
    """Each measure defined on these rows with its influence value per row (the delta method
    at the groups that are largest and smallest at the point estimate; a group rate
    ``r_g = sum_g x_i / n_g`` moves by ``(x_i - r_g) / n_g`` when row ``i`` of group ``g`` is
    added). The points equal :func:`measure_values` at unit weights."""
    m = groups.indicators
    yf, pf = y.astype(np.float64), y_pred.astype(np.float64)
    n = len(yf)

    def rates(member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each group's rate of ``y_pred`` among ``member`` rows, and its influence values."""
        size = member.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = (member * pf[:, None]).sum(axis=0) / size
            values = member * (pf[:, None] - rate[None, :]) * n / size[None, :]
        return rate, np.nan_to_num(values)

    out: dict[str, tuple[float, np.ndarray]] = {}
    rate, inf = rates(m)
    seen = np.flatnonzero(m.sum(axis=0) > 0)
    if len(seen) >= 2:
        hi, lo = seen[np.argmax(rate[seen])], seen[np.argmin(rate[seen])]
        out["demographic_parity_difference"] = (
            float(rate[hi] - rate[lo]),
            inf[:, hi] - inf[:, lo],
        )
        if rate[hi] > 0:
            ratio = rate[lo] / rate[hi]
            out["disparate_impact_ratio"] = (
                float(ratio),
                (inf[:, lo] - ratio * inf[:, hi]) / rate[hi],
            )
    gaps = []
    for member, cols in (
        (m * yf[:, None], groups.tpr_groups),
        (m * (1 - yf)[:, None], groups.fpr_groups),
    ):
        if len(cols) >= 2:
            r, v = rates(member[:, cols])
            hi, lo = int(np.argmax(r)), int(np.argmin(r))
            gaps.append((float(r[hi] - r[lo]), v[:, hi] - v[:, lo]))
    if gaps:
        out["equalized_odds_difference"] = max(gaps, key=lambda g: g[0])
    return out


def _draws(
    arm: ArmSample, attributes: set[str], samples: int, cfg: FairnessConfig
) -> dict[str, dict[str, Any]]:
    groups = judged_groups(arm.frame, arm.result, attributes, cfg)
    blocks: dict[str, dict[str, list[np.ndarray]]] = {g.attribute: {} for g in groups}
    for w in resample_weights(len(arm.y), samples, arm.seed):
        for g in groups:
            for measure, v in measure_values(g, arm.y, arm.y_pred, w).items():
                blocks[g.attribute].setdefault(measure, []).append(v)
    return {a: {m: np.concatenate(v) for m, v in ms.items()} for a, ms in blocks.items()}


@dataclass(frozen=True)
class JudgedGroups:
    """The groups of one attribute that the fairness stage judged, as row indicators."""

    attribute: str
    indicators: np.ndarray  # rows x judged groups, 0/1
    tpr_groups: np.ndarray  # judged groups whose TPR enters the equalized-odds gap
    fpr_groups: np.ndarray  # ... whose FPR does


def judged_groups(
    frame: pd.DataFrame, result: FairnessResult, attributes: set[str], cfg: FairnessConfig
) -> list[JudgedGroups]:
    """Indicators of the judged groups of each attribute in ``attributes`` (single columns or
    an intersection, named as the fairness stage names them)."""
    out = []
    size = result.min_group_size
    for a in result.attributes:
        if a.attribute not in attributes:
            continue
        # the stage's groups: a numeric attribute binned as the stage bins it
        labels = group_labels(sensitive_groups(frame[a.columns[0]], cfg)).astype(str)
        for column in a.columns[1:]:
            crossed = np.char.add(labels, INTERSECTION)
            labels = np.char.add(
                crossed, group_labels(sensitive_groups(frame[column], cfg)).astype(str)
            )
        names = [g.group for g in a.groups]
        indicators = (labels[:, None] == np.array(names, dtype=str)[None, :]).astype(np.float64)
        tpr = np.array([i for i, g in enumerate(a.groups) if g.positives >= size], dtype=int)
        fpr = np.array([i for i, g in enumerate(a.groups) if g.n - g.positives >= size], dtype=int)
        out.append(JudgedGroups(a.attribute, indicators, tpr, fpr))
    return out


def measure_values(
    groups: JudgedGroups, y: np.ndarray, y_pred: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """The three measures for each row of ``weights`` (resamples x rows); NaN where a
    resample leaves them undefined (fewer than two groups with rows, no selection at all)."""
    m = groups.indicators
    yf, pf = y.astype(np.float64), y_pred.astype(np.float64)
    k = m.shape[1]
    # one pass over the weights: counts, selections, positives and hits of every group
    sums = weights @ np.hstack([m, m * pf[:, None], m * yf[:, None], m * (yf * pf)[:, None]])
    count, selected, positives, hits = (sums[:, i * k : (i + 1) * k] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = selected / count
        tpr = hits / positives
        fpr = (selected - hits) / (count - positives)
    out: dict[str, np.ndarray] = {}
    nan = np.full(len(weights), np.nan)
    if k >= 2:
        hi, lo = _max(rate), _min(rate)
        out["demographic_parity_difference"] = hi - lo
        with np.errstate(divide="ignore", invalid="ignore"):
            out["disparate_impact_ratio"] = np.where(hi > 0, lo / hi, np.nan)
    else:
        out["demographic_parity_difference"] = out["disparate_impact_ratio"] = nan
    gaps = [
        _max(r[:, cols]) - _min(r[:, cols])
        for r, cols in ((tpr, groups.tpr_groups), (fpr, groups.fpr_groups))
        if len(cols) >= 2
    ]
    out["equalized_odds_difference"] = _max(np.column_stack(gaps)) if gaps else nan
    return out


def _max(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # a resample without any row of the groups: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmax(a, axis=1), dtype=np.float64)


def _min(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmin(a, axis=1), dtype=np.float64)


def compared_attributes(result: FairnessResult, params: Params) -> set[str]:
    """The attributes whose regressions are judged: the intersection only with
    ``gate.fairness_include_intersection``, as the gate judges them."""
    include = params.gate.fairness_include_intersection
    return {a.attribute for a in result.attributes if include or not a.is_intersection}
