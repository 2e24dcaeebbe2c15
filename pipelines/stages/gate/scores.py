"""The gate's evidence from scores: one pure function, :func:`evidence_from_scores`, from the
labels, the challenger's (and the champion's) probabilities and the sensitive attributes of the
held-out rows to the :class:`~pipelines.stages.gate.rules.Evidence` :func:`decide` judges. The
gate stage's edge (:mod:`.evidence`: loading and scoring the models, the serving check) calls
it, and so does the benchmark of the gate's decisions: what is measured is the gate's own code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.config import Params
from pipelines.records import Interval
from pipelines.stages.fairness.core import MEASURES
from pipelines.stages.gate.rules import Evidence

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.stages.evaluate import Evaluation
    from pipelines.stages.fairness import FairnessResult
    from pipelines.stages.fairness.intervals import FairnessIntervals


@dataclass(frozen=True)
class Scored:
    """The evidence, and what ``evidence.json`` keeps of how it was measured."""

    evidence: Evidence
    record: dict[str, Any] = field(default_factory=dict)


def evidence_from_scores(
    y: np.ndarray,
    proba_new: np.ndarray,
    sensitive: pd.DataFrame,
    params: Params,
    *,
    rows: np.ndarray | None = None,
    proba_old: np.ndarray | None = None,
    champion_version: str | None = None,
    metrics: Mapping[str, Interval] | None = None,
    fairness: Mapping[str, float] | None = None,
) -> Scored:
    """What the gate judges on these held-out rows: the challenger's metrics (``metrics``, the
    evaluate stage's, or measured here; ``fairness``: the fairness stage's worst points, or
    measured here when no attribute has intervals), the champion's on the same rows with the paired
    differences, and the fairness measures with their CIs and paired changes. ``rows``: an id
    per row, equal for copies of one row (None: every row distinct). Validation and the serving
    check are the edge's: it adds them to the evidence."""
    from pipelines.stages.evaluate import TooLittleData, evaluate_scores, unmeasured
    from pipelines.stages.fairness import assess_fairness

    if (proba_old is None) != (champion_version is None):
        raise ValueError("a champion needs both its version and its scores on these rows")
    ids = np.arange(len(y)) if rows is None else np.asarray(rows)
    distinct = len(np.unique(ids))  # copies of a row are one row of evidence
    if metrics is None:
        try:
            metrics = dict(evaluate_scores(y, proba_new, params.evaluate, rows=ids).metrics)
        except TooLittleData as err:
            metrics = dict(unmeasured(y, proba_new, params.evaluate, str(err)).metrics)
    threshold = params.evaluate.decision_threshold
    pred_new = (np.asarray(proba_new) >= threshold).astype(np.int64)
    record: dict[str, Any] = {"champion_version": champion_version, "champion_degenerate": None}
    champ_metrics: dict[str, Interval] = {}
    diffs: dict[str, Interval] = {}
    pred_old = None
    degenerate = None
    if proba_old is not None:
        champ_eval, diffs = judge_champion(y, proba_new, proba_old, ids, params)
        champ_metrics = dict(champ_eval.metrics)
        pred_old = (np.asarray(proba_old) >= threshold).astype(np.int64)
        degenerate = degenerate_reason(pred_old, params.gate.degenerate_selection_rate)
        record |= {"champion_evaluation": champ_eval.to_dict(), "champion_degenerate": degenerate}
    intervals = judge_fairness(y, pred_new, pred_old, sensitive, ids, params)
    # the fairness stage's worst points: judged only when no attribute has intervals
    if fairness is None:
        fairness = {}
        if not intervals.measures:
            measured = assess_fairness(y, pred_new, sensitive, params.fairness)
            fairness = worst_points(measured, params)
    by_attr = points(intervals.measures)
    champ_by_attr = points(intervals.other) if pred_old is not None else {}
    ev = Evidence(
        metrics=dict(metrics),
        fairness=dict(fairness),
        champion_version=champion_version,
        champion_metrics=champ_metrics,
        differences=diffs,
        fairness_by_attribute=by_attr,
        champion_fairness_by_attribute=champ_by_attr,
        rows=distinct,
        fairness_intervals=intervals.measures,
        fairness_changes=intervals.changes if degenerate is None else {},
        fairness_small=intervals.small,
        champion_degenerate=degenerate,
    )
    record |= {
        "differences": {k: v.to_dict() for k, v in diffs.items()},
        "challenger_fairness_by_attribute": by_attr,
        "champion_fairness_by_attribute": champ_by_attr,
        "fairness_intervals": _dicts(intervals.measures),
        "fairness_changes": _dicts(intervals.changes),
        "fairness_not_judged": list(intervals.not_judged),
        "eval_rows": len(y),
        "distinct_eval_rows": distinct,
    }
    return Scored(ev, record)


def judge_champion(
    y: np.ndarray, proba_new: np.ndarray, proba_old: np.ndarray, ids: np.ndarray, params: Params
) -> tuple[Evaluation, dict[str, Interval]]:
    """The champion measured on the same rows, and the paired differences (challenger -
    champion); rows too few to measure give undefined values, never an error."""
    from pipelines.stages.evaluate import (
        TooLittleData,
        evaluate_scores,
        paired_bootstrap_differences,
        unmeasured,
    )

    compared = tuple(dict.fromkeys([params.gate.non_inferiority_metric, *params.gate.metrics]))
    try:
        champ_eval = evaluate_scores(y, proba_old, params.evaluate, rows=ids)
        diffs = paired_bootstrap_differences(
            y, proba_new, proba_old, compared, params.evaluate, rows=ids
        )
    except TooLittleData as err:
        champ_eval = unmeasured(y, proba_old, params.evaluate, str(err))
        diffs = {m: Interval(math.nan, math.nan, math.nan) for m in compared}
    return champ_eval, diffs


def degenerate_reason(y_pred: np.ndarray, threshold: float) -> str | None:
    """Why a model's predictions make it no fairness baseline: it selects (almost) nobody or
    (almost) everybody, so its gaps between groups are small only because its rates are."""
    if len(y_pred) == 0:
        return None
    rate = float(np.mean(y_pred))
    if threshold < rate < 1 - threshold:
        return None
    return (
        f"selection rate {rate:.4f} on {len(y_pred):,} rows, "
        f"not within ({threshold}, {1 - threshold:g})"
    )


def judge_fairness(
    y: np.ndarray,
    y_pred: np.ndarray,
    y_pred_old: np.ndarray | None,
    sensitive: Any,
    ids: np.ndarray,
    params: Params,
) -> FairnessIntervals:
    """Each fairness measure with its CI (and the paired CI of its change against the champion)
    over the groups large enough for it."""
    from pipelines.stages.fairness.intervals import attribute_labels, fairness_intervals

    fallback = params.fairness.min_group_size
    given = {str(m): size for m, size in params.gate.fairness_min_group_size.items()}
    sizes = {m: given.get(m, fallback) for m in MEASURES}
    labels = attribute_labels(sensitive, params.fairness, params.gate.fairness_include_intersection)
    return fairness_intervals(
        y,
        y_pred,
        labels,
        sizes,
        params.evaluate.bootstrap_samples,
        params.evaluate.confidence,
        params.evaluate.seed,
        rows=ids,
        other_pred=y_pred_old,
        linear_above_rows=params.evaluate.linear_above_rows,
    )


def points(by_attr: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """attribute -> measure -> point, the undefined ones left out."""
    out: dict[str, dict[str, float]] = {}
    for a, ms in by_attr.items():
        vals = {m: float(getattr(v, "point", v)) for m, v in ms.items()}
        out[a] = {m: v for m, v in vals.items() if math.isfinite(v)}
    return out


def _dicts(by_attr: Mapping[str, Mapping[str, Interval]]) -> dict[str, dict[str, Any]]:
    return {a: {m: v.to_dict() for m, v in ms.items()} for a, ms in by_attr.items()}


def worst_points(fairness: FairnessResult, params: Params) -> dict[str, float]:
    """Each measure's worst value over the attributes the gate judges (the fairness stage's)."""
    worst = fairness.worst_of(intersection=params.gate.fairness_include_intersection)
    return {m: w.value for m, w in worst.items() if w.value is not None}
