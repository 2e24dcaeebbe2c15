"""A challenger as ``register`` sees it, without a night: a training run of a prefit model on a
few hundred rows, its evaluation and fairness, and the registration acting on a gate decision
(the MLflow screens' tests, in the unit tier on SQLite and in a real browser)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.config import Params
from pipelines.edges import tracking
from pipelines.stages.gate import Decision


def log_run(params: Params, model: Any, frame: Any, name: str) -> dict[str, Any]:
    """A training run of ``model`` named ``name``: 300 rows of ``frame`` as its training
    window, the last 200 as its held-out rows."""
    from pipelines.stages.train import feature_frame

    window = params.paths.window_train.parent
    window.mkdir(parents=True, exist_ok=True)
    frame.head(300).to_parquet(params.paths.window_train)
    frame.tail(200).to_parquet(params.paths.window_eval)
    X = feature_frame(frame.head(300), params.dataset)
    return tracking.log_training_run(
        params, model, X_example=X.head(5), train_path=params.paths.window_train,
        metrics={"train_rows": 300}, out_dir=params.paths.model,
        eval_path=params.paths.window_eval, run_name=name,
    )  # fmt: skip


def evaluation(params: Params, model: Any, frame: Any) -> Any:
    """The evaluate stage's result for ``model`` on the held-out rows (50 resamples)."""
    from pipelines.data import labels
    from pipelines.stages.evaluate import evaluate_scores
    from pipelines.stages.train import feature_frame, positive_proba

    rows = frame.tail(200)
    proba = positive_proba(model, feature_frame(rows, params.dataset))
    cfg = params.evaluate.model_copy(update={"bootstrap_samples": 50})
    return evaluate_scores(np.asarray(labels(rows, params.dataset)), proba, cfg)


def assess(params: Params, model: Any, frame: Any) -> None:
    """The fairness stage's result and the window's manifest, as the model card reads them."""
    from pipelines.data import labels
    from pipelines.files import write_json
    from pipelines.stages.fairness import assess_fairness
    from pipelines.stages.train import feature_frame, positive_proba

    rows = frame.tail(200)
    pred = (positive_proba(model, feature_frame(rows, params.dataset)) >= 0.5).astype(int)
    y = np.asarray(labels(rows, params.dataset))
    fair = assess_fairness(y, pred, rows[list(params.dataset.sensitive)], params.fairness)
    write_json(params.paths.fairness, fair.to_dict())
    manifest = {"batches": ["2026-02-28"], "retracted": {}, "eval_source": "held-out part"}
    write_json(params.paths.window_manifest, manifest)


def judge(
    params: Params,
    rec: dict[str, Any],
    decision: Decision,
    evaluated: Any,
    evidence: dict[str, Any] | None = None,
) -> Any:
    """``register`` acting on ``decision`` for the run ``rec`` (signed when it passes)."""
    from pipelines.release.register import act_on_decision
    from pipelines.serve.model import ServingSpec, load_challenger

    report = params.root / "gate"
    report.mkdir(exist_ok=True)
    (report / "report.md").write_text(f"# gate: {decision.verdict}\n")
    judged = {}
    if decision.passed:
        spec = ServingSpec.from_params(params)
        judged = load_challenger(params.tracking_uri, rec["model_uri"], spec).digests
    return act_on_decision(params, rec, decision, report, {}, judged, evaluated, evidence)
