"""The release policy, decided once (:func:`pipelines.release.plan.plan`): every combination of
the gate's verdict, ``deploy.rollout``, ``deploy.approval`` and a human's answer, and the plan
travelling through the registration file unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.config import DeployConfig
from pipelines.records import (
    HoldForApproval,
    HoldForRollout,
    Promote,
    Registration,
    Reject,
)
from pipelines.release.plan import BY_HAND, answered, final, plan, rollout_mode


@dataclass(frozen=True)
class Gate:
    passed: bool
    reasons: tuple[str, ...] = ("roc_auc +0.01 [+0.004, +0.016]",)


@dataclass(frozen=True)
class Answer:
    decision: str
    by: str | None = "reviewer"
    reason: str = "looked at the report"


PASS, FAIL = Gate(True), Gate(False, ("roc_auc worse than the champion",))


@pytest.mark.parametrize("rollout", ["direct", "canary", "shadow"])
@pytest.mark.parametrize("approval", ["none", "required"])
def test_a_failed_gate_is_rejected_whatever_the_deploy_settings(rollout, approval):
    step = plan(FAIL, DeployConfig(rollout=rollout, approval=approval))
    assert step == Reject(reasons=FAIL.reasons, by="gate")


@pytest.mark.parametrize(
    "rollout,expected",
    [
        ("direct", Promote(reason=PASS.reasons[0])),
        ("canary", HoldForRollout(mode="canary", reason=PASS.reasons[0])),
        ("shadow", HoldForRollout(mode="shadow", reason=PASS.reasons[0])),
    ],
)
def test_a_passed_gate_is_promoted_or_goes_out_beside_the_champion(rollout, expected):
    deploy = DeployConfig(rollout=rollout)
    assert plan(PASS, deploy) == expected
    assert final(expected) == expected
    assert rollout_mode(expected) == (None if rollout == "direct" else rollout)


@pytest.mark.parametrize("rollout", ["direct", "shadow"])
def test_approval_required_holds_first_and_names_what_an_approval_leads_to(rollout):
    deploy = DeployConfig(rollout=rollout, approval="required", approval_timeout_minutes=90)
    step = plan(PASS, deploy)
    assert isinstance(step, HoldForApproval) and step.timeout_minutes == 90
    assert step.then == plan(PASS, deploy.model_copy(update={"approval": "none"}))
    assert final(step) == step.then
    assert rollout_mode(step) == (None if rollout == "direct" else rollout)


def test_an_approval_leads_to_the_held_step_with_who_approved_it():
    deploy = DeployConfig(rollout="canary", approval="required")
    held = plan(PASS, deploy)
    assert isinstance(held, HoldForApproval)
    yes = answered(held, Answer("approved"))
    assert yes == HoldForRollout(mode="canary", reason="approved by reviewer: looked at the report")
    assert plan(PASS, deploy, Answer("approved")) == yes  # the same policy, answer given


@pytest.mark.parametrize("decision", ["rejected", "timed_out"])
def test_a_rejection_or_a_timeout_rejects_by_a_human(decision):
    held = plan(PASS, DeployConfig(approval="required"))
    assert isinstance(held, HoldForApproval)
    by = None if decision == "timed_out" else "on-call"
    no = answered(held, Answer(decision, by, "not this week"))
    assert isinstance(no, Reject) and no.by == "human"
    assert no.reasons == (f"{decision} by {by or 'nobody'}: not this week",)


def test_an_answer_without_approval_required_changes_nothing():
    assert plan(PASS, DeployConfig(), Answer("rejected")) == Promote(reason=PASS.reasons[0])


def test_a_version_started_by_hand_follows_the_rollout_setting():
    assert rollout_mode(plan(BY_HAND, DeployConfig(rollout="shadow"))) == "shadow"
    assert rollout_mode(plan(BY_HAND, DeployConfig())) is None


@pytest.mark.parametrize(
    "step",
    [
        Promote(reason="ok"),
        HoldForRollout(mode="shadow", reason="ok"),
        Reject(reasons=("a", "b"), by="human"),
        HoldForApproval(then=HoldForRollout(mode="canary", reason="ok"), timeout_minutes=60),
        None,
    ],
)
def test_the_plan_travels_in_the_registration_file_unchanged(step):
    reg = Registration(
        model="m", version="2", verdict="pass", champion="1", run_id="run",
        event={"kind": "registration"}, plan=step,
    )  # fmt: skip
    back = Registration.from_dict(json.loads(json.dumps(reg.to_dict())))
    assert back == reg and back.held_for_approval == isinstance(step, HoldForApproval)


def test_a_plan_with_an_unknown_kind_is_refused_with_its_name():
    reg = Registration(model="m", version="2", verdict="pass", champion="1", run_id="run").to_dict()
    reg["plan"] = {"kind": "yolo"}
    with pytest.raises(ValueError, match="yolo"):
        Registration.from_dict(reg)


@pytest.mark.parametrize("rollout", ["direct", "canary"])
@pytest.mark.parametrize("approval", ["none", "required"])
def test_not_enough_evidence_keeps_the_champion(rollout, approval):
    """A gate without enough evidence is no promotion: the plan rejects, the champion keeps
    serving, and the reasons (how many rows a decision needs) travel with the plan."""
    from pipelines.config import Bound, GateConfig
    from pipelines.records import Interval
    from pipelines.stages.gate import Evidence, decide

    cfg = GateConfig(metrics={"roc_auc": Bound(min=0.8)})
    ev = Evidence(
        metrics={"roc_auc": Interval(0.9, 0.85, 0.95)},
        fairness={},
        champion_version="2",
        champion_metrics={"roc_auc": Interval(0.9, 0.85, 0.95)},
        differences={"roc_auc": Interval(0.037, -0.038, 0.120)},
        rows=91,
    )
    decision = decide(ev, cfg)
    assert decision.verdict == "insufficient"
    step = plan(decision, DeployConfig(rollout=rollout, approval=approval))
    assert isinstance(step, Reject) and step.by == "gate"
    assert any("rows needed" in r for r in step.reasons)


def test_a_night_can_ask_for_approval_or_not_over_params(tmp_path, monkeypatch):
    from pipelines.config import ConfigError, load_params
    from pipelines.release.register import night_approval

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "params.yaml").write_text((root / "params.yaml").read_text())
    params = load_params(tmp_path / "params.yaml")
    assert params.deploy.approval == "none"
    monkeypatch.delenv("RETRAIN_APPROVAL", raising=False)
    assert night_approval(params) is params  # nothing asked: params.yaml decides
    monkeypatch.setenv("RETRAIN_APPROVAL", "required")  # what the DAG's form sets
    held = night_approval(params)
    assert held.deploy.approval == "required" and params.deploy.approval == "none"
    assert night_approval(held, "none").deploy.approval == "none"
    with pytest.raises(ConfigError, match="RETRAIN_APPROVAL='maybe'"):
        night_approval(params, "maybe")
