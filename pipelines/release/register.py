"""Stage `register`: record the gate's decision in the MLflow Model Registry and act on the
release plan (:func:`pipelines.release.plan.plan`).

The challenger is registered either way, with the gate's verdict, reasons and report, and a
model card (:mod:`pipelines.release.card`: ``model_card.md`` and ``.html`` beside
``registration.json`` and under ``model_card/`` on the training run). A version
the gate passed is signed (:func:`pipelines.release.signing.sign_registration`: the digests of
the files the gate judged, recorded in ``evidence.json``); a rejected one never is, so nothing
loads it. Then the plan decides: ``promote`` makes it the ``champion`` (the old one stays as
``previous``); ``hold_for_approval`` holds it for a human as ``pending`` (the DAG's ``approve``
task, or ``retrain promote VERSION``); ``hold_for_rollout`` holds it as ``rollout`` until the
night puts it out beside the champion as a canary or shadow; ``reject`` tags it rejected with
the reasons.
The plan is recorded in ``registration.json`` and on the version (tag ``release.plan``). Reruns
never register the same run twice.

This is the DVC pipeline's last stage (``dvc.yaml``: ``python -m pipelines.release.register``):
where the pipeline hands the judged challenger to the release.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines import seams
from pipelines.config import Params, load_params
from pipelines.files import write_json
from pipelines.records import HoldForApproval, HoldForRollout, Plan, Promote, Registration
from pipelines.release import judgement
from pipelines.release.plan import plan
from pipelines.release.signing import SigningError, sign_registration
from pipelines.stages.evaluate import Evaluation
from pipelines.stages.gate import Decision

CARD_ARTIFACTS = "model_card"  # the card's folder among the training run's artifacts


def act_on_decision(
    params: Params,
    train_record: dict[str, Any],
    decision: Decision,
    report_dir: Path,
    evaluated: Mapping[str, float] | None = None,
    judged: Mapping[str, str] | None = None,
    evaluation: Evaluation | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> Registration:
    """Register the challenger, sign it if the gate passed it, and carry out the release plan.
    ``evaluated``: its metrics on the held-out rows (point estimates), kept on the version as
    ``evaluated.<metric>``: the baseline the live monitor holds the version to once it serves,
    however it got there. ``judged``: the sha256 of every file of the model the gate loaded
    and judged (``evidence.json``); what a passed version's signature vouches for.
    ``evaluation`` and ``evidence`` (the gate's ``evidence.json``): logged on the training run
    with the verdict (:mod:`pipelines.release.judgement`), so MLflow shows the decision."""
    from pipelines.edges import registry, tracking

    step = plan(decision, params.deploy)
    run_id = train_record["run_id"]
    tracking.log_judgement(
        params,
        run_id,
        judgement.run_metrics(decision, evaluation, evidence or {}),
        judgement.run_tags(decision, step),
        report_dir,
    )
    tags = {
        **{k: str(v) for k, v in train_record["tags"].items()},
        "gate": decision.verdict,
        "gate.reasons": " | ".join(decision.reasons)[:4900],
        "release.plan": step.kind,
        "verdict": judgement.verdict_tag(step),
        "gate.report": f"runs:/{run_id}/gate/report.md",
        **{f"{registry.EVALUATED}{m}": repr(float(v)) for m, v in (evaluated or {}).items()},
    }
    version = registry.register(params, run_id, train_record["model_uri"], tags)
    c = registry.client(params)
    experiment = train_record.get("experiment_id") or c.get_run(run_id).info.experiment_id
    link = tracking.run_url(params, str(experiment), run_id, "gate/report.md")
    card = _model_card(params, train_record, decision, step, version, evaluation, evidence)
    card_link = tracking.run_url(params, str(experiment), run_id, f"{CARD_ARTIFACTS}/{card}")
    registry.describe(
        params,
        version,
        judgement.version_description(
            decision,
            step,
            f"{tags['gate.report']} ({link})",
            f"runs:/{run_id}/{CARD_ARTIFACTS}/{card} ({card_link})",
        ),
    )
    if decision.passed:  # signed before any alias can name it; a rejected version never is
        sign_registration(params, version, train_record["run_id"], judged or {})
    seams.point("registry.registration")
    if isinstance(step, Promote):
        event = registry.promote(params, version, reason=step.reason)
    elif isinstance(step, HoldForApproval):
        event = registry.hold(params, version, reason="; ".join(decision.reasons))
    elif isinstance(step, HoldForRollout):
        event = registry.hold_for_rollout(params, version, step.mode, step.reason)
    else:
        event = registry.reject(params, version, list(step.reasons))
    return Registration(
        model=params.mlflow.registered_model,
        version=version,
        verdict="pass" if decision.passed else "fail",
        champion=registry.champion_version(params),
        run_id=train_record["run_id"],
        event=event.to_dict(),
        plan=step,
    )


def _model_card(
    params: Params,
    train_record: dict[str, Any],
    decision: Decision,
    step: Plan,
    version: str,
    evaluation: Evaluation | None,
    evidence: Mapping[str, Any] | None,
) -> str:
    """Write the version's model card (:mod:`pipelines.release.card`) beside the registration
    and log it on the training run under ``model_card/``; return the name of its HTML file."""
    from pipelines.edges import tracking
    from pipelines.release.card_files import gather_facts, write_card

    facts = gather_facts(
        params,
        train_record,
        decision,
        judgement.verdict_tag(step),
        judgement.headline(decision, step),
        version,
        evaluation,
        evidence or {},
    )
    out = write_card(facts, params.paths.model_card())
    tracking.log_files(params, train_record["run_id"], [out.markdown, out.html], CARD_ARTIFACTS)
    return out.html.name


def night_approval(params: Params, value: str | None = None) -> Params:
    """``params`` with this night's ``deploy.approval`` when one was asked for
    (``RETRAIN_APPROVAL``, set by the nightly DAG's form), for the release plan to read."""
    from pipelines.config import ConfigError
    from pipelines.settings import settings

    value = value if value is not None else settings().approval
    if not value:
        return params
    if value not in ("none", "required"):
        raise ConfigError(f"RETRAIN_APPROVAL={value!r}: must be 'required' or 'none'")
    deploy = params.deploy.model_copy(update={"approval": value})
    return params.model_copy(update={"deploy": deploy})


def main(argv: list[str] | None = None) -> int:
    from pipelines.edges.registry import registration_line

    ap = argparse.ArgumentParser(prog="register", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=None)
    args = ap.parse_args(argv)
    params = night_approval(load_params(args.params))
    record = json.loads(params.paths.train_record.read_text())
    decision = Decision.from_dict(json.loads(params.paths.gate_decision.read_text()))
    evaluation = Evaluation.from_dict(json.loads(params.paths.evaluation.read_text()))
    evaluated = {m: i.point for m, i in evaluation.metrics.items() if math.isfinite(i.point)}
    evidence = json.loads(params.paths.gate_evidence.read_text())
    judged = (evidence.get("serving") or {}).get("digests") or {}
    gate_dir = params.paths.stage("gate")
    try:
        reg = act_on_decision(
            params, record, decision, gate_dir, evaluated, judged, evaluation, evidence
        )
    except SigningError as err:  # registered but unsigned: no alias names it, nothing loads it
        print(f"register: error: {err}", file=sys.stderr)
        return 2
    write_json(params.paths.registration, reg.to_dict())
    print(f"register: {registration_line(reg)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
