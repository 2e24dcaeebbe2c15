"""The night's pure parts and its edges on the local disk: the retrain decision, the typed
record, quarantine that never overwrites (the lock across processes:
tests/integration/test_workspace_lock.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import NightlyConfig, Params, load_params
from pipelines.night.assess import retrain_reasons
from pipelines.night.ingest import quarantine_batch
from pipelines.night.record import (
    claim_night,
    load_record,
    parse_day,
    save_record,
    start_night,
)
from pipelines.records import NightFlags, NightRecord, Registration

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


def test_a_rerun_of_an_unfinished_night_given_no_flags_takes_the_recorded_ones(ws, tmp_path):
    day = "2026-03-06"
    batch = str(tmp_path / "b.csv")
    asked = NightFlags(force_retrain=True, batch=batch)
    assert start_night(ws, day, asked) == (asked, None)  # the first start records its flags
    assert load_record(ws, day).flags == asked
    # the night is killed before it finishes; rerun with no flags: the recorded ones, said so
    flags, note = start_night(ws, day, NightFlags())
    assert flags == asked
    assert note and "--force-retrain --batch " + batch in note and "did not finish" in note
    # flags given on a rerun win, and are what the record keeps from then on
    dry = NightFlags(dry_run=True)
    assert start_night(ws, day, dry) == (dry, None)
    assert load_record(ws, day).flags == dry
    # a night that finished is rerun as asked: no flags means none
    rec = load_record(ws, day)
    rec.finished_at = "2026-03-06T03:00:00+00:00"
    save_record(ws, rec)
    assert start_night(ws, day, NightFlags()) == (NightFlags(), None)


def test_a_scheduled_night_leaves_a_date_another_run_has_alone(ws):
    day = "2026-03-07"
    manual, scheduled = "manual__2026-03-07T10:00:00", "scheduled__2026-03-07T02:00:00"
    # nobody has the night yet: a scheduled run takes it like any run
    assert claim_night(ws, "2026-03-08", scheduled, only_if_new=True) is None
    assert load_record(ws, "2026-03-08").run == scheduled
    # a triggered run has it: the scheduled run (unpausing adds one) is told whose it is
    assert claim_night(ws, day, manual, only_if_new=False) is None
    assert claim_night(ws, day, scheduled, only_if_new=True) == manual
    assert load_record(ws, day).run == manual  # left as it was
    # the same run again (a retry, a cleared task) keeps it; an asked run takes it over
    assert claim_night(ws, day, manual, only_if_new=True) is None
    assert claim_night(ws, day, "manual__again", only_if_new=False) is None
    assert load_record(ws, day).run == "manual__again"


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


def _outside(tmp_path: Path, name: str = "elsewhere.csv") -> Path:
    far = tmp_path.parent / f"{tmp_path.name}-outside"
    far.mkdir(exist_ok=True)
    f = far / name
    f.write_text("age,income\n1,x\n")
    return f


def test_a_batch_named_outside_the_landing_is_refused_and_left_alone(ws, tmp_path, capsys):
    from pipelines import cli
    from pipelines.night.ingest import BatchPathError, confine_batch

    ws.paths.landing.mkdir(parents=True)
    far = _outside(tmp_path)
    code = cli.main(["nightly", "--params", str(ws.file), "--date", "2026-01-05",
                     "--batch", str(far)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(far) in err and "outside the folders" in err
    assert far.read_text() == "age,income\n1,x\n"  # not moved, not deleted
    dotdot = ws.paths.landing / ".." / ".." / ".." / f"{tmp_path.name}-outside" / far.name
    with pytest.raises(BatchPathError, match="outside the folders"):
        confine_batch(ws, dotdot)
    inside = ws.paths.landing / "2026-01-05.csv"
    inside.write_text("x\n")
    assert confine_batch(ws, inside) == inside
    with pytest.raises(BatchPathError, match=r"not a \.parquet or \.csv file"):
        confine_batch(ws, inside.rename(inside.with_suffix(".sh")))


@pytest.mark.parametrize("link_to", ["outside", "inside"])
def test_a_symlinked_batch_is_refused(ws, tmp_path, link_to):
    from pipelines.night.ingest import BatchPathError, confine_batch, quarantine_batch

    ws.paths.landing.mkdir(parents=True)
    target = _outside(tmp_path) if link_to == "outside" else ws.paths.landing / "real.csv"
    target.write_text("age,income\n1,x\n")
    link = ws.paths.landing / "2026-01-05.csv"
    link.symlink_to(target)
    with pytest.raises(BatchPathError, match=f"batch {link}: a symlink"):
        confine_batch(ws, link)
    with pytest.raises(BatchPathError, match="a symlink"):
        quarantine_batch(ws, link, "2026-01-05", [])
    assert target.is_file() and link.is_symlink()
    # a landing folder that is itself a link to elsewhere: the file resolves outside it
    sub = ws.paths.landing / "sub"
    sub.symlink_to(target.parent, target_is_directory=True)
    if link_to == "outside":
        with pytest.raises(BatchPathError, match="outside the folders"):
            confine_batch(ws, sub / target.name)


def test_an_allowed_folder_outside_the_workspace_is_copied_from_never_moved(ws, tmp_path):
    import pandas as pd

    from pipelines.night.ingest import accept_batch, confine_batch, quarantine_batch

    far = _outside(tmp_path)
    allowed = ws.model_copy(
        update={"nightly": ws.nightly.model_copy(update={"batch_folders": (far.parent,)})}
    )
    assert confine_batch(allowed, far) == far
    kept = accept_batch(allowed, pd.DataFrame({"age": [1]}), far, "2026-01-05")
    assert kept == allowed.paths.processed / far.name  # what the night's record names
    dest = quarantine_batch(allowed, far, "2026-01-06", [])
    assert far.read_text() == "age,income\n1,x\n"
    assert (allowed.paths.processed / far.name).is_file() and (dest / far.name).is_file()
    # the accepted file carries when it was accepted: the window judges on the batch accepted last
    from pipelines.stages.window import read_accepted_at

    assert set(read_accepted_at(allowed.paths.accepted)) == {"2026-01-05"}


def test_the_airflow_forms_batch_is_confined_too(ws, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.airflow_adapter import Night

    ws.paths.landing.mkdir(parents=True)
    far = _outside(tmp_path)
    link = ws.paths.landing / "2026-01-05.csv"
    link.symlink_to(far)
    inside = ws.paths.landing / "2026-01-06.csv"
    inside.write_text("x\n")
    for value, why in ((str(far), "outside the folders"), ("data/landing/2026-01-05.csv",
                                                            "a symlink")):  # fmt: skip
        with pytest.raises(AirflowFailException, match=why):
            Night(ws, "2026-01-05", {"batch": value}, "me")._batch()
    assert (
        Night(ws, "2026-01-06", {"batch": "data/landing/2026-01-06.csv"}, "me")._batch() == inside
    )
    assert far.is_file()


# ------------------------------------------------------------ batches in the dataset's format
def _format_ws(tmp_path: Path, adult_current, **dataset) -> Params:
    """A workspace whose dataset is written as ``dataset`` says, with its held-out rows
    prepared (what `retrain simulate` draws from)."""
    import yaml

    from pipelines.data import write_parquet

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["dataset"].update(dataset)
    raw["paths"]["expectations"] = str(ROOT / "expectations")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "params.yaml")
    write_parquet(adult_current.head(2000), params.paths.prepared_current)
    return params


@pytest.mark.parametrize("sep,header", [(";", False), (" ", False), ("\t", True), (",", True)])
def test_a_simulated_batch_is_written_in_the_dataset_format(tmp_path, adult_current, sep, header):
    from pipelines.data import read_parquet, read_table
    from pipelines.demo.simulate import make_batch, write_scenario

    ws = _format_ws(tmp_path, adult_current, separator=sep, header=header)
    path = write_scenario(ws, "2026-01-05", "stable")
    first = path.read_text().splitlines()[0]
    assert sep in first and first.startswith(ws.dataset.columns[0]) == header
    source = read_parquet(ws.paths.prepared_current)
    seed = ws.simulate.seed + 20260105
    expected = make_batch(source, "stable", ws.dataset, ws.simulate, seed)
    pd.testing.assert_frame_equal(read_table(path, ws.dataset), expected)


def test_a_rejected_batch_says_why_in_plain_words_and_where_it_went():
    from pipelines.night.summary import night_line, unreadable_batch
    from pipelines.records import BatchValidation

    failed = [
        f"expect_column_min_to_be_between: column 'age': {k} values below 17" for k in range(7)
    ]
    rec = NightRecord(
        date="2026-01-05",
        started_at="2026-01-05T02:00:00+00:00",
        reports="/ws/reports/nights/2026-01-05",
        outcome="batch_rejected",
        validation=BatchValidation(success=False, evaluated=24, failed=failed),
        quarantined_to="/ws/data/quarantine/2026-01-05",
    )
    lines = night_line(rec).splitlines()
    assert "drift" in lines[0] and "%" not in lines[0]  # not judged for drift: no figure
    assert lines[1:6] == [f"  - column 'age': {k} values below 17" for k in range(5)]
    assert lines[6] == "  ... and 2 more (see the validation report)"
    assert lines[7] == "  quarantined in /ws/data/quarantine/2026-01-05"
    assert unreadable_batch(rec) is None  # judged by the suite: a rejection, not an error


def test_a_batch_that_cannot_be_read_fails_the_night_command(
    tmp_path, adult_current, capsys, monkeypatch
):
    """Written with commas for a ';' dataset: not a judged rejection but an error, exit != 0."""
    from pipelines.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the workspace's own registry

    ws = _format_ws(tmp_path, adult_current, separator=";")
    ws.paths.landing.mkdir(parents=True)
    adult_current.head(50).to_csv(ws.paths.landing / "2026-01-05.csv", index=False)
    assert main(["nightly", "--params", str(ws.file), "--date", "2026-01-05"]) == 1
    out, err = capsys.readouterr()
    assert "one column read where 15 were expected with separator ';'" in err
    assert "looks ',' (comma)-separated" in err
    assert "quarantined in" in out and "drift not judged" in out
