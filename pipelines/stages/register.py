"""Stage `register`: act on the gate's decision in the MLflow Model Registry.

A model that passed is registered and becomes ``champion`` (the old one stays as ``previous``),
unless ``deploy.approval`` is ``required``: then it is held for a human as ``pending`` and the
champion keeps serving until someone approves it (the DAG's ``approve`` task, or
``retrain promote VERSION``). One that failed is registered too, tagged ``rejected`` with the
reasons. The gate report is attached to the run either way. Reruns never register the same run
twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines import seams
from pipelines.config import Params, load_params
from pipelines.edges.registry import registration_line
from pipelines.files import write_json
from pipelines.records import Registration
from pipelines.stages.gate import Decision


def act_on_decision(
    params: Params, train_record: dict[str, Any], decision: Decision, report_dir: Path
) -> Registration:
    import mlflow

    from pipelines.edges import registry

    tags = {
        **{k: str(v) for k, v in train_record["tags"].items()},
        "gate": decision.verdict,
        "gate.reasons": " | ".join(decision.reasons)[:4900],
    }
    version = registry.register(params, train_record["run_id"], train_record["model_uri"], tags)
    c = registry.client(params)
    with mlflow.start_run(run_id=train_record["run_id"]):
        for f in sorted(report_dir.glob("*")):
            if f.is_file():
                mlflow.log_artifact(str(f), artifact_path="gate")
    c.set_model_version_tag(
        params.mlflow.registered_model,
        version,
        "gate.report",
        f"runs:/{train_record['run_id']}/gate/report.md",
    )
    seams.point("registry.registration")
    if decision.passed and (
        params.deploy.approval == "required" or params.deploy.rollout != "direct"
    ):
        # held: a human approves it, or it goes out as a canary/shadow beside the champion first
        event = registry.hold(params, version, reason="; ".join(decision.reasons))
    elif decision.passed:
        event = registry.promote(params, version, reason="; ".join(decision.reasons))
    else:
        event = registry.reject(params, version, list(decision.reasons))
    return Registration(
        model=params.mlflow.registered_model,
        version=version,
        verdict="pass" if decision.passed else "fail",
        champion=registry.champion_version(params),
        run_id=train_record["run_id"],
        event=event.to_dict(),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="register", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=None)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    record = json.loads(params.paths.train_record.read_text())
    decision = Decision.from_dict(json.loads(params.paths.gate_decision.read_text()))
    reg = act_on_decision(params, record, decision, params.paths.stage("gate"))
    write_json(params.paths.registration, reg.to_dict())
    line = registration_line(reg)
    if reg.verdict == "pass" and params.deploy.approval != "required":
        if params.deploy.rollout != "direct":  # held for the rollout, not for a human
            line = (
                f"{reg.model} v{reg.version} registered, to go out in {params.deploy.rollout} "
                f"mode beside champion v{reg.champion}"
            )
    print(f"register: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
