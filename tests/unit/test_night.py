"""The night's pure parts and its edges on the local disk: the retrain decision, the typed
record, quarantine that never overwrites (the lock across processes:
tests/integration/test_workspace_lock.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.config import NightlyConfig, Params, load_params
from pipelines.night.assess import retrain_reasons
from pipelines.night.ingest import quarantine_batch
from pipelines.night.record import load_record, parse_day, save_record
from pipelines.records import NightRecord, Registration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path: Path) -> Params:
    text = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text)
    return load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    "kw,expected",
    [
        ({}, []),
        ({"forced": True}, ["forced"]),
        ({"has_champion": False}, ["no champion yet"]),
        ({"dataset_drift": True}, ["data drift"]),
        ({"target_drift": True}, ["target drift"]),
        ({"nights_since_retrain": 7}, ["schedule (every 7 nights)"]),
        ({"nights_since_retrain": 6}, []),
    ],
)
def test_retrain_reasons(kw, expected):
    args = dict(
        forced=False,
        has_champion=True,
        dataset_drift=False,
        target_drift=False,
        nights_since_retrain=0,
    )
    assert retrain_reasons(NightlyConfig(), **{**args, **kw}) == expected


def test_drift_does_not_retrain_when_switched_off():
    cfg = NightlyConfig(retrain_on_drift=False, retrain_every=0)
    reasons = retrain_reasons(
        cfg,
        forced=False,
        has_champion=True,
        dataset_drift=True,
        target_drift=False,
        nights_since_retrain=100,
    )
    assert reasons == []


def test_parse_day_names_the_bad_date():
    assert parse_day("2026-01-05") == "2026-01-05"
    with pytest.raises(ValueError, match="'2026-02-30' is not a date"):
        parse_day("2026-02-30")


def test_record_round_trips_and_rejects_unknown_fields(ws):
    rec = load_record(ws, "2026-01-05")
    assert rec.outcome is None and not rec.finished
    rec.outcome, rec.retrain_reasons = "no_retrain", ["data drift"]
    save_record(ws, rec)
    again = load_record(ws, "2026-01-05")
    assert again == rec and again.stopped_early
    raw = json.loads(ws.paths.night_record("2026-01-05").read_text())
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['surprise'\]"):
        NightRecord.from_dict({**raw, "surprise": 1})


def test_registration_reads_back_typed(tmp_path):
    reg = Registration(
        model="m", version="3", verdict="pass", champion="3", run_id="run",
        event={"previous_champion": "2"},
    )  # fmt: skip
    path = tmp_path / "registration.json"
    path.write_text(json.dumps(reg.to_dict()))
    back = Registration.read(path)
    assert back == reg and back.promoted and back.previous_champion == "2"


def test_quarantine_never_overwrites(ws, tmp_path):
    kept = []
    for k in range(3):
        batch = ws.paths.landing / "2026-01-05.csv"
        batch.parent.mkdir(parents=True, exist_ok=True)
        batch.write_text(f"attempt {k}\n")
        report = tmp_path / "validation.json"
        report.write_text(json.dumps({"attempt": k}))
        kept.append(quarantine_batch(ws, batch, "2026-01-05", [report]))
        assert not batch.exists()
    assert [p.name for p in kept] == ["2026-01-05", "2026-01-05.2", "2026-01-05.3"]
    assert [(p / "2026-01-05.csv").read_text() for p in kept] == [
        f"attempt {k}\n" for k in range(3)
    ]
