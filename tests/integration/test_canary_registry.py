"""The canary against a real MLflow SQLite registry and a real prediction log: start, status,
decide and act, promote and abort by hand, with the aliases, tags, history, reports and
notifications a user (and serving, which routes by them) relies on."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.cli import main as cli
from pipelines.config import Params, parse_params
from pipelines.edges import registry
from pipelines.edges.notify import read_notifications
from pipelines.records import HoldForRollout
from pipelines.release.canary import control
from pipelines.release.plan import BY_HAND, plan
from tests.support.canary_data import answers, population

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """One SQLite registry for the module; each test has its own registered model in it."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('canary-registry') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)  # wins over params: point it at the throwaway
        mp.setenv("RETRAIN_ACTOR", "tests")
        mp.delenv("RETRAIN_NOTIFICATIONS", raising=False)
        mp.delenv("RETRAIN_PREDICTION_LOG", raising=False)
        yield uri


@pytest.fixture()
def ws(tracking_uri, tmp_path, request) -> Params:
    """A workspace in tmp_path: v1 champion, v2 and v3 registered, no canary."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["mlflow"]["tracking_uri"] = tracking_uri
    raw["mlflow"]["registered_model"] = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)
    raw["evaluate"]["bootstrap_samples"] = 300
    raw.setdefault("deploy", {}).setdefault("canary", {}).update({"min_rows": 300, "share": 0.2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = parse_params(raw, root=tmp_path, file=tmp_path / "params.yaml")
    c = registry.client(params)
    name = params.mlflow.registered_model
    c.create_registered_model(name)
    for v in (1, 2, 3):
        (tmp_path / f"model{v}").mkdir()
        c.create_model_version(name, source=str(tmp_path / f"model{v}"))
    registry.promote(params, "1", "first champion")
    return params


def aliases(params: Params) -> dict[str, str]:
    m = registry.client(params).get_registered_model(params.mlflow.registered_model)
    return {k: str(v) for k, v in m.aliases.items()}


def tags(params: Params, version: str) -> dict[str, str]:
    mv = registry.client(params).get_model_version(params.mlflow.registered_model, version)
    return dict(mv.tags)


def serve_and_label(params: Params, version: str, n: int, champion: float, canary: float):
    """Answers of both arms written by the real prediction log, then their outcomes fed back."""
    from pipelines.predlog.readers import record_outcomes
    from pipelines.predlog.writer import PredictionLog

    log = PredictionLog(params.prediction_log)
    frames = [
        answers(params, population(n, 1), "champion", "1", champion, 11, ids="a"),
        answers(params, population(n, 2), "canary", version, canary, 12, ids="b"),
    ]
    for frame in frames:
        for rid, req in frame.groupby("request_id", sort=False):
            records = req[["age", "sex", "race"]].to_dict("records")
            log.append(
                str(rid),
                req["model_version"].iloc[0],
                req["arm"].iloc[0],
                records,
                req["probability"].to_numpy(),
            )
    log.close()
    outcomes = pd.concat(frames)[["request_id", "row", "label"]]
    assert record_outcomes(params, outcomes) == 2 * n


def test_start_sets_the_alias_and_tags_serving_routes_by(ws):
    canary = control.start(ws, "2")
    assert aliases(ws) == {"champion": "1", "canary": "2"}
    t = tags(ws, "2")
    assert (t["canary.mode"], t["canary.share"]) == ("canary", "0.2")
    assert datetime.fromisoformat(t["canary.started"]) == canary.started
    assert t["canary.by"] == "tests" and "beside champion v1" in t["canary.reason"]
    history = registry.read_history(ws)
    assert history[-1]["kind"] == "canary" and history[-1]["version"] == "2"
    # a rerun changes nothing; a second canary, the champion, an unknown version are refused
    assert control.start(ws, "2") == canary
    assert len(registry.read_history(ws)) == len(history)
    with pytest.raises(registry.RegistryError, match="canary v2 .* is running"):
        control.start(ws, "3")
    with pytest.raises(registry.RegistryError, match="canary v2 .* is running"):
        control.start(ws, "2", mode="shadow")  # another mode is another rollout
    with pytest.raises(registry.RegistryError, match="already the champion"):
        control.start(ws, "1")
    with pytest.raises(registry.RegistryError, match="no version 9"):
        control.start(ws, "9")


def test_shadow_mode_mirrors_every_request(ws):
    shadow = ws.model_copy(update={"deploy": ws.deploy.model_copy(update={"rollout": "shadow"})})
    step = plan(BY_HAND, shadow.deploy)  # the release plan: out beside the champion, mirrored
    assert isinstance(step, HoldForRollout) and step.mode == "shadow"
    registry.hold_for_rollout(shadow, "3", step.mode, step.reason)
    assert aliases(ws) == {"champion": "1", "rollout": "3"}
    assert control.release_held(shadow, "3", step).mode == "shadow"
    assert aliases(ws) == {"champion": "1", "canary": "3"}  # held no more: out
    t = tags(ws, "3")
    assert (t["canary.mode"], t["canary.share"]) == ("shadow", "1")
    assert control.status(ws, rows=_no_rows(ws))["mode"] == "shadow"


def _no_rows(params: Params) -> pd.DataFrame:
    return answers(params, population(0, 0), "champion", "1", 1.0, 0)


def test_status_reads_the_prediction_log_since_the_start(ws):
    assert control.status(ws)["canary"] is None
    canary = control.start(ws, "2")
    serve_and_label(ws, "2", 1000, champion=0.8, canary=1.5)
    s = control.status(ws, now=canary.started + timedelta(hours=2))
    assert (s["canary"], s["champion"], s["mode"], s["share"]) == ("2", "1", "canary", 0.2)
    assert s["rows"] == {"champion": 1000, "canary": 1000}
    assert s["verdict"] == "promote" and s["hours"] == 2.0
    assert s["decision"]["difference"]["lower"] > 0
    assert s["summary"].startswith("canary v2 (canary mode) vs champion v1 after 2.0 h: PROMOTE")
    assert aliases(ws)["canary"] == "2"  # status only looks


def test_decide_promotes_a_better_canary_and_says_why(ws, capsys):
    control.start(ws, "2")
    serve_and_label(ws, "2", 1000, champion=0.8, canary=1.5)
    assert cli(["canary", "decide", "--params", str(ws.file)]) == 0
    assert "PROMOTE" in capsys.readouterr().out
    assert aliases(ws) == {"champion": "2", "previous": "1"}
    assert tags(ws, "2")["canary.result"] == "promoted"
    assert tags(ws, "2")["status"] == "champion"
    assert registry.read_history(ws)[-1]["kind"] == "promotion"
    (folder,) = ws.paths.canary.iterdir()
    record = json.loads((folder / "decision.json").read_text())
    assert record["verdict"] == "promote" and record["event"]["previous_champion"] == "1"
    arms = record["decision"]["canary"], record["decision"]["champion"]
    assert arms[0]["metric"]["point"] > arms[1]["metric"]["point"] and arms[0]["rows"] == 1000
    report = (folder / "report.md").read_text()
    assert report.startswith("# Canary v2: PROMOTE") and "| canary | v2 | 1,000 |" in report
    (note,) = read_notifications(ws.paths.notifications)
    assert note["event"] == "promotion" and note["message"].startswith("canary v2")
    assert control.status(ws)["canary"] is None


def test_decide_rolls_back_a_worse_canary(ws):
    control.start(ws, "2")
    serve_and_label(ws, "2", 1000, champion=1.5, canary=0.8)
    out = control.decide_and_act(ws)
    assert out["verdict"] == "rollback" and out["acted"] and out["champion"] == "1"
    assert aliases(ws) == {"champion": "1"}
    t = tags(ws, "2")
    assert (
        t["canary.result"] == "rolled_back"
        and "worse than the champion" in t["canary_abort.reason"]
    )
    assert registry.read_history(ws)[-1]["kind"] == "canary_abort"
    assert "ROLLBACK" in Path(out["reports"][-1]).read_text()
    (note,) = read_notifications(ws.paths.notifications)
    assert note["event"] == "failure" and "ROLLBACK" in note["message"]


def test_decide_waits_without_touching_anything(ws):
    control.start(ws, "2")
    serve_and_label(ws, "2", 100, champion=1.0, canary=1.0)
    out = control.decide_and_act(ws)
    assert out["verdict"] == "wait" and not out["acted"]
    assert "canary arm has 100 labelled rows of the 300 needed" in out["reasons"]
    assert aliases(ws) == {"champion": "1", "canary": "2"}
    assert not ws.paths.canary.exists() and not ws.paths.notifications.exists()
    json.dumps(out, allow_nan=False)  # the monitor DAG's task returns it as an XCom


def test_promote_and_abort_by_hand(ws):
    with pytest.raises(registry.RegistryError, match="no canary is running"):
        control.promote(ws, "nothing to promote")
    control.start(ws, "2")
    ev = control.promote(ws, "looks good")
    assert ev.kind == "promotion" and ev.previous_champion == "1"
    assert aliases(ws) == {"champion": "2", "previous": "1"}
    assert cli(["canary", "start", "3", "--mode", "shadow", "--params", str(ws.file)]) == 0
    assert cli(["canary", "abort", "--reason", "stop", "--params", str(ws.file)]) == 0
    assert aliases(ws) == {"champion": "2", "previous": "1"}
    assert tags(ws, "3")["canary.result"] == "rolled_back"
    assert tags(ws, "3")["canary_abort.reason"] == "stop"
    # canaried again later: the old result is gone until this run ends
    control.start(ws, "3")
    assert "canary.result" not in tags(ws, "3")


def test_an_interrupted_promotion_is_finished_not_aborted(ws):
    control.start(ws, "2")
    registry.promote(ws, "2", "killed before the canary alias went")  # champion moved, alias left
    with pytest.raises(registry.RegistryError, match="promotion was interrupted"):
        control.abort(ws, "too late")
    control.promote(ws, "finish it")
    assert aliases(ws) == {"champion": "2", "previous": "1"}
