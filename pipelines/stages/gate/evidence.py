"""The gate's edge: collect what the gate judges from the stage results and the registry.

The challenger's evaluation and fairness come from the `evaluate` and `fairness` stages. Both
models are scored the way serving scores them: loaded from the tracking server and compiled by
the serving code (:func:`pipelines.serve.model.load_challenger`; the champion through the
verifying load every registered version takes, :func:`pipelines.serve.model.load_registered`,
so an unsigned or tampered champion stops the gate). The champion (if any) is scored
on the *same* evaluation rows, so the comparison is paired and judges what actually serves; the
challenger's compiled predictions must reproduce its offline ones (``serving`` check, within
1e-6), so a model that cannot be served as it was evaluated is never promoted. Every file comes
from ``params.paths``; what was gathered is written to ``evidence.json`` beside the decision,
with the sha256 of every file of the challenger judged: what ``register`` signs if it passes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.config import Params
from pipelines.files import write_text
from pipelines.records import Interval
from pipelines.stages.fairness.core import MEASURES
from pipelines.stages.gate.rules import Evidence

if TYPE_CHECKING:
    from pipelines.stages.evaluate import Evaluation
    from pipelines.stages.fairness import FairnessResult
    from pipelines.stages.fairness.intervals import FairnessIntervals

SERVING_SAMPLE = 500


def gather_evidence(params: Params) -> Evidence:
    from pipelines.data import labels, read_parquet
    from pipelines.edges import registry
    from pipelines.serve.model import ServingSpec, load_challenger, load_registered
    from pipelines.stages.evaluate import Evaluation, distinct_row_ids
    from pipelines.stages.fairness import FairnessResult, assess_fairness

    paths = params.paths
    evaluation = Evaluation.from_dict(json.loads(paths.evaluation.read_text()))
    fairness = FairnessResult.from_dict(json.loads(paths.fairness.read_text()))
    validation = json.loads(paths.validation_json.read_text())
    predictions = read_parquet(paths.predictions)
    record = json.loads(paths.train_record.read_text())

    eval_df = read_parquet(paths.window_eval)
    y = labels(eval_df, params.dataset)
    proba_new = predictions["proba"].to_numpy()
    ids = distinct_row_ids(eval_df, params)
    rows = len(np.unique(ids))  # copies of a row are one row of evidence

    # serving path: the logged model, loaded back and compiled the way the server does it
    spec = ServingSpec.from_params(params)
    uri = record["model_uri"]
    sample = eval_df.head(SERVING_SAMPLE)
    digests: dict[str, str] = {}
    ok: bool | None
    try:
        served = load_challenger(params.tracking_uri, uri, spec)
        digests = served.digests
        if len(sample) == 0:
            ok, detail = None, "no held-out rows to check the serving path on"
        else:
            ok, detail = serving_check(served.scorer, uri, sample, proba_new[: len(sample)])
    except Exception as err:  # noqa: BLE001 - any failure to serve is a failed check
        ok, detail = False, f"{uri}: cannot be served: {type(err).__name__}: {err}"

    threshold = params.evaluate.decision_threshold
    y_pred_new = (proba_new >= threshold).astype(np.int64)
    sensitive = eval_df[list(params.dataset.sensitive)]
    champion = registry.champion_version(params)
    extra: dict[str, Any] = {"champion_version": champion}
    champ_metrics: dict[str, Interval] = {}
    champ_fair: dict[str, float] = {}
    diffs: dict[str, Interval] = {}
    y_pred_old = None
    degenerate = None
    if champion is not None:
        key = params.paths.signing_public_key
        champ = load_registered(params.tracking_uri, spec, champion, key)
        proba_old = champ.scorer.predict_frame(eval_df) if len(eval_df) else np.zeros(0)
        champ_eval, diffs = judge_champion(y, proba_new, proba_old, ids, params)
        champ_metrics = dict(champ_eval.metrics)
        y_pred_old = (proba_old >= threshold).astype(np.int64)
        degenerate = degenerate_reason(y_pred_old, params.gate.degenerate_selection_rate)
        champ_fairness = assess_fairness(y, y_pred_old, sensitive, params.fairness)
        champ_fair = _worst(champ_fairness, params)
        extra |= {
            "champion_evaluation": champ_eval.to_dict(),
            "champion_fairness": champ_fairness.to_dict(),
            "champion_degenerate": degenerate,
        }
    intervals = judge_fairness(y, y_pred_new, y_pred_old, sensitive, ids, params)
    by_attr = _points(intervals.measures)
    champ_by_attr = _points(intervals.other) if y_pred_old is not None else {}
    ev = Evidence(
        metrics=dict(evaluation.metrics),
        fairness=_worst(fairness, params),
        validation_failures=len(validation.get("failed", [])),
        champion_version=champion,
        champion_metrics=champ_metrics,
        champion_fairness=champ_fair,
        differences=diffs,
        fairness_by_attribute=by_attr,
        champion_fairness_by_attribute=champ_by_attr,
        serving_ok=ok,
        serving_detail=detail,
        rows=rows,
        fairness_intervals=intervals.measures,
        fairness_changes=intervals.changes if degenerate is None else {},
        fairness_not_judged=intervals.not_judged,
        champion_degenerate=degenerate,
    )
    extra |= {
        "differences": {k: v.to_dict() for k, v in diffs.items()},
        "challenger_fairness": _worst(fairness, params),
        "champion_fairness_worst": champ_fair,
        "challenger_fairness_by_attribute": by_attr,
        "champion_fairness_by_attribute": champ_by_attr,
        "fairness_intervals": _dicts(intervals.measures),
        "fairness_changes": _dicts(intervals.changes),
        "fairness_not_judged": list(intervals.not_judged),
        "serving": {"ok": ok, "detail": detail, "digests": digests},
        "eval_rows": len(eval_df),
        "distinct_eval_rows": rows,
    }
    write_text(paths.gate_evidence, json.dumps(extra, indent=2, default=float) + "\n")
    return ev


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


def _points(by_attr: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for a, ms in by_attr.items():
        vals = {m: float(getattr(v, "point", v)) for m, v in ms.items()}
        out[a] = {m: v for m, v in vals.items() if math.isfinite(v)}
    return out


def _dicts(by_attr: Mapping[str, Mapping[str, Interval]]) -> dict[str, dict[str, Any]]:
    return {a: {m: v.to_dict() for m, v in ms.items()} for a, ms in by_attr.items()}


def serving_check(
    scorer: Any, uri: str, frame: Any, expected: np.ndarray, tol: float = 1e-6
) -> tuple[bool, str]:
    """Do the compiled scorer's predictions on ``frame`` (through the server's record path)
    equal the offline ones?"""
    got = scorer.predict_frame(frame)
    if got.shape != expected.shape:
        return False, f"served {got.shape} predictions for {expected.shape} offline ones"
    diff = float(np.max(np.abs(got - expected))) if len(got) else 0.0
    ok = diff <= tol
    return ok, (
        f"{uri} ({scorer.mode} scorer): {len(got)} predictions, max |served - offline| = "
        f"{diff:.2e} ({'within' if ok else 'beyond'} {tol:g})"
    )


def _worst(fairness: FairnessResult, params: Params) -> dict[str, float]:
    worst = fairness.worst_of(intersection=params.gate.fairness_include_intersection)
    return {m: w.value for m, w in worst.items() if w.value is not None}
