"""Human approval between `register` and `deploy` (``deploy.approval: required``): reading the
ApprovalOperator's answer, how long it waits, which task runs next, and what the registry
records, on a real MLflow registry (SQLite) in a throwaway workspace.

The registry is one SQLite file per module (creating its tables costs seconds); each test has
its own workspace, registered model and history file, so the tests run in any order.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException

from pipelines.airflow_adapter import Night, moved_champion
from pipelines.config import Params, load_params
from pipelines.edges import registry
from pipelines.night.run import awaiting_approval_hint, with_approval
from pipelines.night.summary import night_line
from pipelines.records import GateSummary, NightRecord, Registration
from pipelines.release.approval import APPROVAL_RESERVE, answer_of, approval_timeout
from pipelines.release.plan import plan

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-04-01"
ACTOR = "airflow:retrain_nightly/manual__1"


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('registry')}/mlflow.db"


def _workspace(root: Path, tracking: str, approval: str) -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["deploy"]["approval"] = approval
    raw["mlflow"]["tracking_uri"] = tracking
    raw["mlflow"]["registered_model"] = f"approval-{secrets.token_hex(4)}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_params(root / "params.yaml")


@pytest.fixture
def ws(tmp_path: Path, tracking: str, monkeypatch: pytest.MonkeyPatch) -> Params:
    """A workspace with ``deploy.approval: required`` and a registered model of its own."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(registry.ACTOR_ENV, "tests")
    return _workspace(tmp_path / "ws", tracking, "required")


def _versions(params: Params, n: int) -> list[str]:
    """``n`` new versions of the workspace's model (an empty model folder as their source)."""
    c = registry.client(params)
    name = params.mlflow.registered_model
    if not c.search_registered_models(f"name='{name}'"):
        c.create_registered_model(name)
    source = params.root / "model"
    source.mkdir(exist_ok=True)
    return [str(c.create_model_version(name, source=str(source)).version) for _ in range(n)]


def _aliases(params: Params) -> dict[str, str]:
    c = registry.client(params)
    return {
        k: str(v) for k, v in c.get_registered_model(params.mlflow.registered_model).aliases.items()
    }


def _tags(params: Params, version: str) -> dict[str, str]:
    c = registry.client(params)
    return dict(c.get_model_version(params.mlflow.registered_model, version).tags)


def _held(params: Params) -> tuple[str, str, Registration]:
    """v1 the champion, v2 held for approval; the registration ``register`` writes for v2."""
    v1, v2 = _versions(params, 2)
    registry.promote(params, v1, reason="first champion")
    ev = registry.hold(params, v2, reason="gate passed")
    step = plan(_PASSED, params.deploy)
    name = params.mlflow.registered_model
    reg = Registration(
        model=name, version=v2, verdict="pass", champion=v1, run_id="run-2",
        event=ev.to_dict(), plan=step,
    )  # fmt: skip
    return v1, v2, reg


def _history(params: Params) -> list[tuple[str, str, str]]:
    return [(e["kind"], e["version"], e["actor"]) for e in registry.read_history(params)]


class _PASSED:  # noqa: N801 - a gate decision that passed
    passed = True
    reasons = ("gate passed",)


# --------------------------------------------------------------------------- the answer
AT = datetime(2026, 4, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "event,expected",
    [
        (
            {"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "reviewer"},
             "responded_at": AT, "params_input": {"reason": "metrics look right"}},
            ("approved", "reviewer", "metrics look right"),
        ),
        (
            {"chosen_options": ["Reject"], "responded_by_user": {"id": "on-call", "name": ""},
             "responded_at": AT, "params_input": {}},
            ("rejected", "on-call", "Reject chosen"),
        ),
        (  # what the scheduler's timeout sweep resumes the task with: the default, nobody
            {"chosen_options": ["Reject"], "responded_by_user": None, "responded_at": AT,
             "params_input": {"reason": None}, "timedout": True},
            ("timed_out", None, "no answer within 1440 minutes: rejected by default"),
        ),
    ],
)  # fmt: skip
def test_answer_of_reads_the_decision_the_responder_and_why(event, expected):
    answer = answer_of(event, timeout_minutes=1440)
    assert (answer.decision, answer.by, answer.reason) == expected
    assert answer.at == AT.isoformat()
    assert json.loads(json.dumps(answer.to_dict())) == answer.to_dict()  # travels as XCom


def test_approval_timeout_is_the_params_value_unless_the_run_would_time_out_first():
    now = AT
    assert approval_timeout(1440, now, None) == (timedelta(minutes=1440), False)
    far = now + timedelta(hours=30)
    assert approval_timeout(1440, now, far) == (timedelta(minutes=1440), False)
    near = now + timedelta(hours=3)
    assert approval_timeout(1440, now, near) == (timedelta(hours=3) - APPROVAL_RESERVE, True)
    waited, cut = approval_timeout(1440, now, now - timedelta(minutes=1))  # past its deadline
    assert cut and waited == timedelta(seconds=1)  # a timeout, never "no timeout"


@pytest.mark.parametrize(
    "result,moved",
    [
        ({"verdict": "pass", "version": "2", "champion": "2"}, True),  # register, no approval
        ({"verdict": "pass", "version": "2", "champion": "1"}, False),  # held for approval
        ({"verdict": "pass", "version": "1", "champion": None}, False),
        ({"verdict": "fail", "version": "2", "champion": "2"}, False),
        (None, False),  # promote with no approval asked returns nothing
    ],
)
def test_promotion_callbacks_run_only_when_the_champion_moved(result, moved):
    assert moved_champion(result) is moved


# --------------------------------------------------------------------------- the registry
def test_hold_registers_without_touching_the_champion_and_reruns_record_nothing_twice(ws):
    v1, v2, reg = _held(ws)
    assert _aliases(ws) == {"champion": v1, "pending": v2}
    tags = _tags(ws, v2)
    assert tags["approval"] == "pending" and tags["status"] == "awaiting_approval"
    assert reg.held_for_approval
    line = registry.registration_line(reg)
    assert "AWAITING APPROVAL" in line and f"champion v{v1} keeps serving" in line
    assert f"retrain promote {v2}" in line

    registry.hold(ws, v2, reason="gate passed")  # `dvc repro -s register` again
    assert _history(ws) == [("promotion", v1, "tests"), ("registration", v2, "tests")]
    assert registry.approval(ws, v2) == {"decision": "pending"}
    assert registry.approval(ws, v1) is None  # never held: no approval section


@pytest.mark.parametrize("decision", ["rejected", "timed_out"])
def test_a_rejection_or_timeout_keeps_the_champion_and_records_who_and_why(ws, decision):
    v1, v2, _ = _held(ws)
    by = "reviewer" if decision == "rejected" else "nobody (no answer)"
    registry.decide(ws, v2, decision, by, "not this week")
    registry.decide(ws, v2, decision, by, "not this week")  # summary cleared and rerun

    assert _aliases(ws) == {"champion": v1}  # pending gone, champion untouched
    tags = _tags(ws, v2)
    assert tags["approval"] == decision and tags["status"] == "not_approved"
    assert tags["approval.by"] == by and tags["approval.reason"] == f"{decision}: not this week"
    assert _history(ws)[-1] == ("approval", v2, by)
    assert [k for k, *_ in _history(ws)].count("approval") == 1
    assert registry.approval(ws, v2)["decision"] == decision
    description = registry.client(ws).get_model_version(ws.mlflow.registered_model, v2).description
    word = decision.replace("_", " ")  # what the version's page opens with, said once
    assert description.startswith(f"NOT APPROVED ({word} by {by}): not this week")
    assert description.count("NOT APPROVED") == 1
    with pytest.raises(registry.RegistryError, match="unknown approval decision"):
        registry.decide(ws, v2, "maybe", by, "?")  # type: ignore[arg-type]


def test_retrain_promote_of_a_held_version_is_an_audited_approval(ws):
    v1, v2, _ = _held(ws)
    registry.promote(ws, v2, reason="checked by hand", kind="override")  # `retrain promote 2`
    assert _aliases(ws) == {"champion": v2, "previous": v1}
    tags = _tags(ws, v2)
    assert tags["approval"] == "approved" and tags["approval.by"] == "tests"
    assert [k for k, *_ in _history(ws)][-2:] == ["approval", "override"]


# --------------------------------------------------------------------------- the night's steps
def test_needs_approval_sends_a_held_version_to_approve_and_a_promoted_one_on(ws):
    night = Night(ws, DAY, {}, ACTOR)
    v1, v2, held = _held(ws)
    assert night.needs_approval(held.to_dict()) == ["approve"]
    promoted = Registration(
        model=held.model, version=v1, verdict="pass", champion=v1, run_id="run-1",
        event={"kind": "promotion"},
    )  # fmt: skip
    assert night.needs_approval(promoted.to_dict()) == ["promote"]
    assert night.promote(promoted.to_dict(), None) is None  # register promoted: nothing to do


def test_an_approval_promotes_and_records_the_approver_and_the_run(ws):
    night = Night(ws, DAY, {}, ACTOR)
    v1, v2, held = _held(ws)
    answer = {"decision": "approved", "by": "reviewer", "at": AT.isoformat(), "reason": "ship it"}
    out = night.promote(held.to_dict(), answer)

    assert moved_champion(out) and out["event"]["previous_champion"] == v1
    assert _aliases(ws) == {"champion": v2, "previous": v1}
    tags = _tags(ws, v2)
    assert tags["approval"] == "approved" and tags["approval.by"] == "reviewer"
    assert tags["status"] == "champion"
    kinds = [(k, a) for k, _, a in _history(ws)][-2:]
    assert kinds == [("approval", "reviewer"), ("promotion", ACTOR)]
    night.promote(held.to_dict(), answer)  # cleared and rerun: nothing moves twice
    assert [k for k, *_ in _history(ws)].count("approval") == 1


@pytest.mark.parametrize(
    "answer", [None, {"decision": "rejected", "by": "on-call", "reason": "no"}]
)
def test_promote_refuses_a_version_nobody_approved(ws, answer):
    night = Night(ws, DAY, {}, ACTOR)
    v1, _, held = _held(ws)
    with pytest.raises(AirflowFailException, match="not approved"):
        night.promote(held.to_dict(), answer)
    assert _aliases(ws)["champion"] == v1


def test_the_question_names_the_version_what_each_answer_does_and_the_deadline(ws):
    night = Night(ws, DAY, {}, ACTOR)
    v1, v2, held = _held(ws)
    q = night.ask(held.to_dict(), deadline=None)
    assert q.timeout == timedelta(minutes=ws.deploy.approval_timeout_minutes)
    assert f"v{v2}" in q.subject and DAY in q.subject
    assert f"v{v1} stays champion and keeps serving" in q.body and "**Reject**" in q.body
    soon = datetime.now(UTC) + timedelta(hours=2)
    assert night.ask(held.to_dict(), deadline=soon).timeout < timedelta(hours=2)


def test_a_timeout_is_recorded_as_nobody_with_the_run(ws):
    night = Night(ws, DAY, {}, ACTOR)
    _, v2, _ = _held(ws)
    answer = answer_of({"chosen_options": ["Reject"], "timedout": True, "responded_at": AT}, 1440)
    night.record_answer(answer.to_dict(), v2)
    tags = _tags(ws, v2)
    assert tags["approval"] == "timed_out" and tags["approval.by"].startswith("nobody")
    assert ACTOR in tags["approval.by"]


# --------------------------------------------------------------------------- the register stage
def _train_record(params: Params) -> dict[str, Any]:
    """A real MLflow run with a model folder, as the `train` stage records it."""
    import mlflow

    from pipelines.edges import tracking

    tracking.setup(params)
    (params.root / "model").mkdir(exist_ok=True)
    (params.root / "model" / "MLmodel").write_text("flavors: {}\n")
    (params.root / "model" / "model.skops").write_bytes(b"not loaded here")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(params.root / "model"), artifact_path="model")
    uri = f"runs:/{run.info.run_id}/model"
    return {"run_id": run.info.run_id, "model_uri": uri, "tags": {"night": DAY}}


@pytest.mark.parametrize("approval", ["none", "required"])
def test_register_promotes_or_holds_as_the_params_say(tmp_path, tracking, monkeypatch, approval):
    from pipelines.release.register import act_on_decision
    from pipelines.stages.gate import Decision

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = _workspace(tmp_path / "ws", tracking, approval)
    (v1,) = _versions(params, 1)
    registry.promote(params, v1, reason="first champion")
    report = tmp_path / "gate"
    report.mkdir()
    (report / "report.md").write_text("# gate\n")
    decision = Decision("pass", ("roc_auc not worse",), (), v1, AT.isoformat())

    from pipelines.serve.trust import file_digests

    record = _train_record(params)
    judged = file_digests(params.root / "model")  # what the gate records of the model it loads
    reg = act_on_decision(params, record, decision, report, {"roc_auc": 0.875}, judged)
    # the baseline the monitor holds the version to, kept on the version itself
    assert registry.evaluated_metric(params, reg.version, "roc_auc") == 0.875
    assert registry.evaluated_metric(params, v1, "roc_auc") is None  # registered without it

    assert reg.verdict == "pass" and reg.version != v1
    if approval == "none":  # as before approval existed
        assert reg.champion == reg.version and reg.event["kind"] == "promotion"
        assert not reg.held_for_approval and moved_champion(reg.to_dict())
        assert _aliases(params) == {"champion": reg.version, "previous": v1}
    else:
        assert reg.champion == v1 and reg.event["kind"] == "registration"
        assert reg.held_for_approval and not moved_champion(reg.to_dict())
        assert _aliases(params) == {"champion": v1, "pending": reg.version}


# --------------------------------------------------------------------------- the night record
def test_the_night_record_and_line_carry_the_approval(ws):
    v1, v2, _ = _held(ws)
    gate = GateSummary(verdict="pass", reasons=["ok"])
    rec = NightRecord(
        date=DAY, started_at=AT.isoformat(), reports="reports", outcome="not_promoted", serving=v1
    )
    rec.retrained, rec.gate = True, with_approval(ws, gate, v2)
    assert rec.gate.approval is not None
    assert rec.gate.approval.model_dump(exclude_none=True) == {"version": v2, "decision": "pending"}
    assert f"approval PENDING (retrain promote {v2})" in night_line(rec)
    hint = awaiting_approval_hint(rec)
    assert hint and "AWAITING APPROVAL" in hint and f"retrain promote {v2}" in hint

    registry.decide(ws, v2, "rejected", "reviewer", "too soon")
    rec.gate = with_approval(ws, gate, v2)
    assert rec.gate.approval is not None
    assert rec.gate.approval.by == "reviewer" and rec.gate.approval.reason
    assert "; approval REJECTED by reviewer; serving v" in night_line(rec)
    assert awaiting_approval_hint(rec) is None

    rec.gate = with_approval(ws, gate, v1)  # a version never held: the line as it always was
    assert rec.gate == gate and "approval" not in night_line(rec)
