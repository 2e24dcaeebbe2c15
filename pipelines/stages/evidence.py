"""The gate's edge: collect what the gate judges from the stage results and the registry.

The challenger's evaluation and fairness come from the `evaluate` and `fairness` stages. The
champion (if any) is loaded from the registry and scored on the *same* evaluation rows, so the
comparison is paired; the challenger is also loaded back from the tracking server through the
serving code path and must reproduce its offline predictions.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pipelines.config import Params
from pipelines.stages.gate import Evidence, Interval

SERVING_SAMPLE = 500


def _worst(fairness: Any, params: Params) -> dict[str, float]:
    worst = fairness.worst_of(intersection=params.gate.fairness_include_intersection)
    return {m: w.value for m, w in worst.items() if w.value is not None}


def _by_attribute(fairness: Any, params: Params) -> dict[str, dict[str, float]]:
    return {
        a.attribute: {m: v for m, v in a.measures.items() if v is not None}
        for a in fairness.attributes
        if params.gate.fairness_include_intersection or not a.is_intersection
    }


def gather_evidence(params: Params) -> Evidence:
    from pipelines.data import labels, read_parquet
    from pipelines.edges import registry
    from pipelines.scoring import load_scorer, serving_check
    from pipelines.stages.evaluate import Evaluation, evaluate_scores, paired_bootstrap_differences
    from pipelines.stages.fairness import FairnessResult, assess_fairness

    reports = params.paths.reports
    evaluation = Evaluation.from_dict(
        json.loads((reports / "evaluate" / "evaluation.json").read_text())
    )
    fairness = FairnessResult.from_dict(
        json.loads((reports / "fairness" / "fairness.json").read_text())
    )
    validation = json.loads((reports / "validate" / "validation.json").read_text())
    predictions = read_parquet(reports / "evaluate" / "predictions.parquet")
    record = json.loads(params.paths.train_record.read_text())

    eval_df = read_parquet(params.paths.window_eval)
    y = labels(eval_df, params.dataset)
    proba_new = predictions["proba"].to_numpy()
    metrics = {k: Interval(v.point, v.lower, v.upper) for k, v in evaluation.metrics.items()}

    # serving path: the logged model, loaded back the way the server loads it
    sample = eval_df.head(SERVING_SAMPLE)
    try:
        ok, detail = serving_check(
            load_scorer(record["model_uri"], params.dataset), sample, proba_new[: len(sample)]
        )
    except Exception as err:  # noqa: BLE001 - any failure to serve is a failed check
        ok, detail = False, f"{record['model_uri']}: cannot be served: {type(err).__name__}: {err}"

    champion = registry.champion_version(params)
    extra: dict[str, Any] = {"champion_version": champion}
    champ_metrics: dict[str, Interval] = {}
    champ_fair: dict[str, float] = {}
    champ_by_attr: dict[str, dict[str, float]] = {}
    diffs: dict[str, Interval] = {}
    if champion is not None:
        scorer = load_scorer(f"models:/{params.mlflow.registered_model}@champion", params.dataset)
        proba_old = scorer.predict_proba(eval_df)
        champ_eval = evaluate_scores(y, proba_old, params.evaluate)
        champ_metrics = {
            k: Interval(v.point, v.lower, v.upper) for k, v in champ_eval.metrics.items()
        }
        y_pred_old = (proba_old >= params.evaluate.decision_threshold).astype(np.int64)
        champ_fairness = assess_fairness(
            y, y_pred_old, eval_df[list(params.dataset.sensitive)], params.fairness
        )
        champ_fair = _worst(champ_fairness, params)
        champ_by_attr = _by_attribute(champ_fairness, params)
        compared = tuple(dict.fromkeys([params.gate.non_inferiority_metric, *params.gate.metrics]))
        for metric, d in paired_bootstrap_differences(
            y, proba_new, proba_old, compared, params.evaluate
        ).items():
            diffs[metric] = Interval(d.point, d.lower, d.upper)
        extra |= {
            "champion_evaluation": champ_eval.to_dict(),
            "champion_fairness": champ_fairness.to_dict(),
        }
    ev = Evidence(
        metrics=metrics,
        fairness=_worst(fairness, params),
        validation_failures=len(validation.get("failed", [])),
        champion_version=champion,
        champion_metrics=champ_metrics,
        champion_fairness=champ_fair,
        differences=diffs,
        fairness_by_attribute=_by_attribute(fairness, params),
        champion_fairness_by_attribute=champ_by_attr,
        serving_ok=ok,
        serving_detail=detail,
    )
    out = params.paths.gate_evidence
    out.parent.mkdir(parents=True, exist_ok=True)
    extra |= {
        "differences": {k: vars(v) for k, v in diffs.items()},
        "challenger_fairness": _worst(fairness, params),
        "champion_fairness_worst": champ_fair,
        "challenger_fairness_by_attribute": _by_attribute(fairness, params),
        "champion_fairness_by_attribute": champ_by_attr,
        "serving": {"ok": ok, "detail": detail},
        "eval_rows": len(eval_df),
    }
    out.write_text(json.dumps(extra, indent=2, default=float) + "\n")
    return ev
