"""Stage `register`: act on the gate's decision in the MLflow Model Registry.

A model that passed is registered and becomes ``champion`` (the old one stays as ``previous``);
one that failed is registered too, tagged ``rejected`` with the reasons, and its gate report is
attached to its run. Reruns never register the same run twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines.config import Params, load_params
from pipelines.stages.gate import Decision


def act_on_decision(
    params: Params, train_record: dict[str, Any], decision: Decision, report_dir: Path
) -> dict[str, Any]:
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
    registry.crash_point("registration")
    if decision.passed:
        event = registry.promote(params, version, reason="; ".join(decision.reasons))
    else:
        event = registry.reject(params, version, list(decision.reasons))
    champion = registry.champion_version(params)
    return {
        "model": params.mlflow.registered_model,
        "version": version,
        "verdict": decision.verdict,
        "event": event.to_dict(),
        "champion": champion,
        "run_id": train_record["run_id"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="register", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=None)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    record = json.loads(params.paths.train_record.read_text())
    decision = Decision.from_dict(json.loads((params.paths.gate_decision).read_text()))
    out = act_on_decision(params, record, decision, params.paths.stage("gate"))
    path = params.paths.registration
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    action = "promoted to champion" if decision.passed else "kept, tagged rejected"
    print(
        f"register: {out['model']} v{out['version']} {action}; "
        f"champion is {'v' + out['champion'] if out['champion'] else 'none yet'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
