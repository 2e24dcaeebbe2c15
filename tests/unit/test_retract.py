"""Retracting an accepted batch: it stays with the reason, no later window trains or evaluates
on it, the window says so (``window.json``), and so do the gate report and the night's line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines import cli
from pipelines.config import WindowConfig, load_params
from pipelines.data import read_parquet, write_parquet
from pipelines.night.summary import night_line
from pipelines.records import NightRecord
from pipelines.stages import window
from pipelines.stages.window import build_window, read_retractions, retract, trained_on_text

RAW = {
    "dataset": {
        "name": "toy",
        "reference": {"name": "reference.csv"},
        "current": {"name": "current.csv"},
        "columns": ["x", "y"],
        "target": "y",
        "positive_label": "a",
        "features": {"numeric": ["x"], "categorical": []},
    },
    "validate": {"suite": "toy"},
    "mlflow": {"registered_model": "toy-model"},
}
DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(start, start + n, dtype=float), "y": ["a"] * n})


def _batches() -> dict[str, pd.DataFrame]:
    return {day: frame(400, 1000 * (i + 1)) for i, day in enumerate(DAYS)}


def test_a_retracted_batch_is_left_out_of_training() -> None:
    w = build_window(frame(100), _batches(), frame(10), WindowConfig(), {DAYS[0]: "poisoned"})
    assert w.batches == DAYS[1:]
    assert w.retracted == {DAYS[0]: "poisoned"}
    assert not w.train["x"].between(1000, 1399).any()  # none of its rows
    assert w.eval_source == f"held-out part of batch {DAYS[2]}"


def test_a_retracted_newest_batch_does_not_judge_the_challenger() -> None:
    w = build_window(frame(100), _batches(), frame(10), WindowConfig(), {DAYS[2]: "mislabelled"})
    assert w.batches == DAYS[:2]
    assert w.eval_source == f"held-out part of batch {DAYS[1]}"
    assert w.eval["x"].between(2000, 2399).all() and len(w.eval) > 0


def test_last_batches_counts_only_batches_not_retracted() -> None:
    cfg = WindowConfig(last_batches=2)
    w = build_window(frame(100), _batches(), frame(10), cfg, {DAYS[2]: "bad"})
    assert w.batches == DAYS[:2]


def test_a_retraction_of_a_batch_not_in_the_folder_changes_nothing() -> None:
    w = build_window(frame(100), _batches(), frame(10), WindowConfig(), {"2025-12-31": "old"})
    assert w.batches == DAYS and w.retracted == {}


# --------------------------------------------------------------------------- the record
@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A params file, prepared data and three accepted batches."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(RAW))
    write_parquet(frame(100), tmp_path / "data" / "prepared" / "reference.parquet")
    write_parquet(frame(50, 500), tmp_path / "data" / "prepared" / "current.parquet")
    for day, df in _batches().items():
        write_parquet(df, tmp_path / "data" / "accepted" / f"{day}.parquet")
    return tmp_path


def test_retract_keeps_the_batch_and_writes_why_beside_it(workspace: Path) -> None:
    params = load_params(workspace / "params.yaml")
    at = datetime(2026, 1, 4, 9, 30, tzinfo=UTC)
    record = retract(params, DAYS[1], "  labels flipped upstream ", now=at)
    assert record == params.paths.accepted / f"{DAYS[1]}.retracted.json"
    assert json.loads(record.read_text()) == {
        "batch": f"{DAYS[1]}.parquet",
        "reason": "labels flipped upstream",
        "retracted_at": "2026-01-04T09:30:00+00:00",
    }
    assert params.paths.accepted_batch(DAYS[1]).is_file()  # kept
    assert read_retractions(params.paths.accepted) == {DAYS[1]: "labels flipped upstream"}


@pytest.mark.parametrize(
    ("day", "reason", "problem"),
    [
        ("2026-02-01", "bad", "no accepted batch for 2026-02-01"),
        (DAYS[0], "   ", "--reason must say why"),
    ],
)
def test_retract_refuses_what_it_cannot_do(
    day: str, reason: str, problem: str, workspace: Path
) -> None:
    params = load_params(workspace / "params.yaml")
    with pytest.raises(ValueError, match=problem):
        retract(params, day, reason)
    assert read_retractions(params.paths.accepted) == {}


def test_retract_twice_is_refused_and_keeps_the_first_reason(workspace: Path) -> None:
    params = load_params(workspace / "params.yaml")
    retract(params, DAYS[0], "first")
    with pytest.raises(ValueError, match="already retracted"):
        retract(params, DAYS[0], "second")
    assert read_retractions(params.paths.accepted) == {DAYS[0]: "first"}


def test_cli_retract_then_the_window_stage_leaves_the_batch_out(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params_file = str(workspace / "params.yaml")
    args = ["retract", DAYS[2], "--reason", "poisoned night", "--params", params_file]
    assert cli.main(args) == 0
    assert f"retracted {DAYS[2]}: poisoned night" in capsys.readouterr().out
    assert cli.main(["retract", "2026-03-01", "--reason", "x", "--params", params_file]) == 2
    assert "no accepted batch for 2026-03-01" in capsys.readouterr().err

    assert window.main(["--params", params_file]) == 0
    assert f"retracted, left out: {DAYS[2]}" in capsys.readouterr().out
    params = load_params(params_file)
    manifest = json.loads(params.paths.window_manifest.read_text())
    assert manifest == {
        "batches": list(DAYS[:2]),
        "retracted": {DAYS[2]: "poisoned night"},
        "eval_source": f"held-out part of batch {DAYS[1]}",
    }
    train = read_parquet(params.paths.window_train)
    assert not train["x"].between(3000, 3399).any()

    text = trained_on_text(params.paths.window_manifest)  # what the gate report adds
    assert f"- trained on: {DAYS[0]}, {DAYS[1]}" in text
    assert f"- left out (retracted): {DAYS[2]}: poisoned night" in text


def test_the_night_line_names_the_retracted_batches() -> None:
    rec = NightRecord(
        date="2026-01-04",
        started_at="t",
        reports="r",
        outcome="no_retrain",
        retracted=[f"{DAYS[2]}: poisoned night"],
    )
    assert (
        f"  retracted, left out of training: {DAYS[2]}: poisoned night"
        in night_line(rec).splitlines()
    )
