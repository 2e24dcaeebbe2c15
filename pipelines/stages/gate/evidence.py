"""The gate's edge: collect what the gate judges from the stage results and the registry.

The challenger's evaluation and fairness come from the `evaluate` and `fairness` stages. Both
models are scored the way serving scores them: loaded from the tracking server and compiled by
the serving code (:func:`pipelines.serve.model.load_challenger`; the champion through the
verifying load every registered version takes, :func:`pipelines.serve.model.load_registered`,
so an unsigned or tampered champion stops the gate). The champion (if any) is scored
on the *same* evaluation rows, so the comparison is paired and judges what actually serves; the
challenger's compiled predictions must reproduce its offline ones (``serving`` check, within
1e-6), so a model that cannot be served as it was evaluated is never promoted. Every file comes
from ``params.paths``. What the gate judges is made from the scores by the pure
:func:`~pipelines.stages.gate.scores.evidence_from_scores`; what was gathered is written to
``evidence.json`` beside the decision, with the sha256 of every file of the challenger judged:
what ``register`` signs if it passes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np

from pipelines.config import Params
from pipelines.files import write_text
from pipelines.stages.gate.rules import Evidence
from pipelines.stages.gate.scores import evidence_from_scores, worst_points

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

    sensitive = eval_df[list(params.dataset.sensitive)]
    champion = registry.champion_version(params)
    proba_old = None
    extra: dict[str, Any] = {"champion_fairness_worst": {}}
    if champion is not None:
        key = params.paths.signing_public_key
        champ = load_registered(params.tracking_uri, spec, champion, key)
        proba_old = champ.scorer.predict_frame(eval_df) if len(eval_df) else np.zeros(0)
        # the champion's fairness as the fairness stage reports it, for the night's summary
        y_pred_old = (proba_old >= params.evaluate.decision_threshold).astype(np.int64)
        champ_fairness = assess_fairness(y, y_pred_old, sensitive, params.fairness)
        extra |= {
            "champion_fairness": champ_fairness.to_dict(),
            "champion_fairness_worst": worst_points(champ_fairness, params),
        }
    scored = evidence_from_scores(
        y,
        proba_new,
        sensitive,
        params,
        rows=distinct_row_ids(eval_df, params),
        proba_old=proba_old,
        champion_version=champion,
        metrics=evaluation.metrics,
        fairness=worst_points(fairness, params),
    )
    ev = replace(
        scored.evidence,
        validation_failures=len(validation.get("failed", [])),
        serving_ok=ok,
        serving_detail=detail,
    )
    extra = scored.record | extra
    extra |= {
        "challenger_fairness": worst_points(fairness, params),
        "serving": {"ok": ok, "detail": detail, "digests": digests},
    }
    write_text(paths.gate_evidence, json.dumps(extra, indent=2, default=float) + "\n")
    return ev


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
