"""A night's deploy step (issue 16): one policy for the CLI night and the DAG form's
``skip_deploy`` (``retrain nightly --skip-deploy``); a night told to skip deploys nothing and
its record says so; the flag is kept for a rerun like the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import build_parser
from pipelines.config import Params, load_params
from pipelines.night.deploy import (
    FOLLOWS,
    ROLLOUT,
    SKIPPED,
    deploy_decision,
    deploy_night,
    record_deploy,
)
from pipelines.night.record import load_record, save_record, start_night
from pipelines.records import (
    GateSummary,
    HoldForApproval,
    HoldForRollout,
    NightDeploy,
    NightFlags,
    NightRecord,
    Promote,
)

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-03-01"
PROMOTE = Promote(reason="gate passed")
SHADOW = HoldForRollout(mode="shadow", reason="gate passed")


@pytest.fixture
def ws(tmp_path: Path) -> Params:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    return load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    "promoted,plan,skip,follows,version,reason",
    [
        ("3", PROMOTE, False, False, "3", None),  # a new champion: deployed
        ("3", HoldForApproval(then=PROMOTE, timeout_minutes=5), False, False, "3", None),
        ("3", PROMOTE, True, False, None, SKIPPED),  # the form's / CLI's skip_deploy
        (None, None, True, False, None, SKIPPED),  # said even with nothing to deploy
        ("3", SHADOW, False, False, None, ROLLOUT),  # out beside the champion instead
        ("3", HoldForApproval(then=SHADOW, timeout_minutes=5), False, False, None, ROLLOUT),
        ("3", PROMOTE, False, True, None, FOLLOWS),  # `retrain serve` follows the alias
        (None, None, False, False, None, None),  # no new champion: nothing to say
        (None, PROMOTE, False, True, None, None),
    ],
)
def test_one_policy_decides_what_a_night_deploys(promoted, plan, skip, follows, version, reason):
    d = deploy_decision(promoted, plan, skip, follows_alias=follows)
    assert (d.version, d.reason) == (version, reason)


def _promoted(ws: Params) -> NightRecord:
    rec = NightRecord(
        date=DAY,
        started_at=f"{DAY}T02:00:00+00:00",
        reports="/r",
        outcome="promoted",
        promoted="3",
        champion_before="2",
        serving="3",
        gate=GateSummary(verdict="pass", reasons=["all checks passed"], plan=PROMOTE),
    )
    return save_record(ws, rec)


def test_a_night_told_to_skip_deploys_nothing_and_its_record_says_so(ws):
    rec = _promoted(ws)
    # a deployment is recorded (it would be redeployed); the flag wins and nothing runs
    ws.paths.deploy_state.parent.mkdir(parents=True, exist_ok=True)
    ws.paths.deploy_state.write_text(json.dumps({"mode": "podman", "address": "127.0.0.1:1"}))
    said: list[str] = []
    rec.deploy = deploy_night(ws, rec, skip_deploy=True, progress=said.append)
    save_record(ws, rec)
    back = load_record(ws, DAY)
    assert back.deploy is not None and back.deploy.status == "skipped"
    assert back.deploy.reason == SKIPPED and back.deploy.version == "3"
    assert back.deploy.line() == "deploy skipped: skip_deploy: serving left as it is"
    assert said == [f"[{DAY}] deploy skipped: {SKIPPED}"]
    assert not ws.paths.deploy_history.exists()  # no deploy was attempted
    page = ws.paths.night_record(DAY).with_name("summary.html").read_text()
    assert "skip_deploy: serving left as it is" in page


def test_without_a_recorded_deployment_serving_follows_the_alias(ws):
    rec = _promoted(ws)
    out = deploy_night(ws, rec, skip_deploy=False, progress=lambda _: None)
    assert out is not None and (out.status, out.reason) == ("skipped", FOLLOWS)
    rec.promoted, rec.outcome = None, "not_promoted"
    assert deploy_night(ws, rec, skip_deploy=False, progress=lambda _: None) is None


def test_skip_deploy_is_a_flag_of_the_night_kept_for_a_rerun(ws):
    args = build_parser().parse_args(["nightly", "--date", DAY, "--skip-deploy"])
    assert args.skip_deploy is True
    assert build_parser().parse_args(["nightly", "--date", DAY]).skip_deploy is False
    asked = NightFlags(force_retrain=True, skip_deploy=True)
    assert asked.line() == "--force-retrain --skip-deploy"
    start_night(ws, DAY, asked)
    flags, note = start_night(ws, DAY, NightFlags())  # the night did not finish: rerun
    assert flags.skip_deploy is True and note and "--skip-deploy" in note


def test_a_deploy_recorded_before_the_night_finishes_stays_in_its_record(ws):
    """The DAG's order: ``deploy`` records what it did, then ``summary`` loads the record,
    finishes it and saves it."""
    _promoted(ws)
    done = NightDeploy(status="skipped", version="3", reason=SKIPPED)
    assert record_deploy(ws, DAY, done).deploy == done
    rec = load_record(ws, DAY)
    rec.finished_at = f"{DAY}T03:00:00+00:00"
    save_record(ws, rec)
    assert load_record(ws, DAY).deploy == done
