"""`retrain status` (issue 16): reasons in full and wrapped, the aliases read without an MLflow
client (checked against one on a real SQLite registry), what serves, the last nights. That the
command imports neither MLflow nor scikit-learn nor pandas (what keeps it under a second) is
checked in a fresh interpreter: tests/integration/test_status_registry.py."""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.config import ConfigError, Params, load_params
from pipelines.edges.aliases import read_aliases
from pipelines.night.record import save_record
from pipelines.night.status import StatusView, format_status, night_notes, serving_line
from pipelines.records import NightDeploy, NightRecord

ROOT = Path(__file__).resolve().parents[2]
REASON = (
    "all 8 checks passed; not judged: equalized_odds_difference for race: 'Amer-Indian-Eskimo' "
    "(19 actual positives), 'Other' (25 actual positives) below the minimum 30: not judged on an "
    "interval; pooled as one group beside the judged ones: 0.2337; about 25,663 rows needed to "
    "judge each on its own; the paired difference of roc_auc +0.0012 [-0.0031, +0.0055]"
)
LONG_PATH = "/workspace/reports/nights/2026-03-01/gate/" + "x" * 120 + "/report.html"


def _ws(root: Path, **mlflow: str) -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["mlflow"].update(mlflow)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_params(root / "params.yaml", check_classifier=False)


def _view(**kw: Any) -> StatusView:
    base: dict[str, Any] = {
        "model": "adult-income",
        "registry": "sqlite:////w/mlflow.db",
        "aliases": {"champion": "3", "previous": "2"},
        "serving": f"no deployment recorded; {LONG_PATH}",
        "nights": [f"2026-03-0{d}: rejected v{d}: {REASON}; v3 serving" for d in (1, 2)],
        "nights_total": 9,
        "events": [
            {"at": "2026-03-02T02:10:00+00:00", "kind": "rejection", "version": "4"},
            {"kind": "promotion", "version": "3", "actor": "airflow", "reason": REASON},
        ],
        "events_total": 30,
    }
    return StatusView(**{**base, **kw})


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_every_line_fits_and_every_reason_is_whole(width):
    out = format_status(_view(), width=width)
    for line in out.splitlines():  # only a single word longer than the width (a path) may pass
        assert len(line) <= width or len(line.split()) == 1 or LONG_PATH in line, line
    flat = _words(out)
    assert flat.count(_words(REASON)) == 3  # both nights and the promotion, never cut
    assert LONG_PATH in out  # a path is never broken
    assert "nights (last 2 of 9):" in out and "registry events (last 2 of 30):" in out
    assert "(no reason recorded)" in out and "by ?:" in out  # an older event missing fields


def test_the_head_names_every_alias_and_a_registry_that_could_not_be_read():
    out = format_status(_view(aliases={"champion": "5", "rollout": "6"}, registry_error="boom"))
    assert out.splitlines()[0] == (
        "model adult-income: champion v5, previous -, pending -, rollout v6"
    )
    assert "registry NOT READ: boom" in out
    empty = format_status(_view(nights=[], nights_total=0, events=[], events_total=0))
    assert "nights (none yet):" in empty and "registry events (none yet):" in empty
    asked_none = format_status(_view(nights=[], events=[]))  # --nights 0 --events 0
    assert "nights (last 0 of 9):" in asked_none and "events (last 0 of 30):" in asked_none


def test_the_aliases_read_from_sqlite_are_the_mlflow_clients(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = f"status-{secrets.token_hex(3)}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    c.create_registered_model(name)
    c.create_registered_model(name + "-other")
    source = tmp_path / "model"
    source.mkdir()
    for _ in range(3):
        c.create_model_version(name, source=str(source))
    c.create_model_version(name + "-other", source=str(source))
    for alias, version in (("champion", 2), ("previous", 1), ("pending", 3)):
        c.set_registered_model_alias(name, alias, str(version))
    c.set_registered_model_alias(name + "-other", "champion", "1")
    c.set_registered_model_alias(name, "previous", "2")  # an alias moved: the new row only
    expected = {k: str(v) for k, v in c.get_registered_model(name).aliases.items()}
    assert read_aliases(uri, name) == expected == {"champion": "2", "previous": "2", "pending": "3"}
    assert read_aliases(uri, "no-such-model") == {}
    missing = tmp_path / "none" / "mlflow.db"
    assert read_aliases(f"sqlite:///{missing}", name) == {}
    assert not missing.exists()  # status never makes a registry


def _free_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _deployed(params: Params, state: dict[str, Any]) -> None:
    params.paths.deploy_state.parent.mkdir(parents=True, exist_ok=True)
    params.paths.deploy_state.write_text(json.dumps(state))


def test_serving_says_which_version_serves_and_how(tmp_path):
    params = _ws(tmp_path / "ws")
    line = serving_line(params, {"champion": "3"})
    assert line.startswith("no deployment recorded") and "champion alias (v3)" in line
    address = f"127.0.0.1:{_free_port()}"
    _deployed(params, {"mode": "local", "address": address, "active": {"version": "2"}})
    line = serving_line(params, {"champion": "3"}, probe=0.5)
    assert f"local `retrain serve` at {address}, following the champion alias (v3" in line
    assert "not answering (" in line  # asked, and nothing listens there
    active = {"version": "2", "replicas": 2, "containers": ["a", "b"]}
    _deployed(params, {"mode": "podman", "address": address, "active": active})
    line = serving_line(params, {"champion": "3", "rollout": "4"}, probe=0)
    assert line.startswith(f"v2 deployed, 2 podman replica(s) behind nginx at {address}")
    assert "the champion is v3: not deployed yet" in line
    assert "v4 out beside it (`retrain canary status`)" in line


def _night(day: str, **kw: Any) -> NightRecord:
    return NightRecord(date=day, started_at=f"{day}T02:00:00+00:00", reports="/r", **kw)


def test_the_last_nights_oldest_first_with_what_serving_did(tmp_path):
    params = _ws(tmp_path / "ws")
    assert night_notes(params, 5) == ([], 0)
    for d in range(1, 8):
        save_record(params, _night(f"2026-03-0{d}", outcome="no_retrain", serving="1"))
    why = "skip_deploy: serving left as it is"
    skipped = NightDeploy(status="skipped", version="2", reason=why)
    save_record(
        params,
        _night(
            "2026-03-08",
            outcome="promoted",
            promoted="2",
            champion_before="1",
            serving="2",
            deploy=skipped,
        ),
    )
    bad = params.paths.night_record("2026-03-09")
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps({"date": "2026-03-09", "surprise": 1}))
    notes, total = night_notes(params, 3)
    assert total == 9
    assert notes[0] == "2026-03-07: no retrain (no drift, not scheduled, not forced); v1 serving"
    assert notes[1] == (
        "2026-03-08: promoted v2 (was v1); deploy skipped: skip_deploy: serving left as it is"
    )
    assert notes[2].startswith(f"2026-03-09: record not readable ({bad})")
    assert "surprise" in notes[2]


def test_params_without_the_classifier_check_are_still_checked(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"]["hyperparameters"]["no_such_knob"] = 1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="no_such_knob"):
        load_params(path)  # a command that trains checks the names with scikit-learn
    assert load_params(path, check_classifier=False).train.hyperparameters["no_such_knob"] == 1
    raw["mlflow"]["surprise"] = 1
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="unknown key 'mlflow.surprise'"):
        load_params(path, check_classifier=False)


@pytest.mark.parametrize("value,message", [("-1", "must be 0 or more"), ("x", "not a whole")])
def test_a_bad_count_is_refused_naming_the_option(value, message, capsys):
    from pipelines.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["status", "--nights", value])
    err = capsys.readouterr().err
    assert "--nights" in err and message in err
