"""The nightly cycle end to end on real Adult data, in a throwaway workspace with real DVC
(cache + local remote), a real MLflow registry (SQLite) and real GX / Evidently runs.

The tests share one workspace and run in order, like consecutive nights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipelines.demo import simulate
from pipelines.edges import dvc as workspace
from pipelines.edges import registry
from pipelines.lock import night_lock
from pipelines.night import run as nightly
from tests.support import faults
from tests.support.workspace import make_workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws(tmp_path_factory, adult):  # adult: skips when the dataset mirror is absent
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        params = make_workspace(tmp_path_factory.mktemp("ws") / "project")
        workspace.repro(params)  # the first champion
        yield params


def retrain_cli(params, *args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            *args,
            "--params",
            str(params.root / "params.yaml"),
        ],
        cwd=params.root,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kw,
    )


def aliases(params) -> tuple[str | None, str | None]:
    c = registry.client(params)
    name = params.mlflow.registered_model
    return registry.alias_version(c, name, "champion"), registry.alias_version(c, name, "previous")


def versions(params) -> list[str]:
    c = registry.client(params)
    found = c.search_model_versions(f"name='{params.mlflow.registered_model}'")
    return sorted((str(v.version) for v in found), key=int)


def test_bootstrap_makes_a_champion_and_repro_is_a_noop(ws):
    assert aliases(ws)[0] == "1"
    out = workspace.dvc(ws, "status", capture=True).stdout
    assert "Data and pipelines are up to date" in out
    t0 = time.perf_counter()
    out = workspace.dvc(ws, "repro", capture=True).stdout
    assert "Data and pipelines are up to date" in out
    assert not any(line.startswith("Running stage") for line in out.splitlines())
    assert time.perf_counter() - t0 < 30


def test_lineage_tags_on_the_version(ws):
    mv = registry.client(ws).get_model_version(ws.mlflow.registered_model, "1")
    for tag in ("git_commit", "data_version.train", "data_version.eval", "dvc_remote"):
        assert mv.tags.get(tag), tag
    # the data versions are real DVC objects in the remote
    remote = Path(mv.tags["dvc_remote"])
    h = mv.tags["data_version.train"]
    assert (remote / "files" / "md5" / h[:2] / h[2:]).is_file()


def test_corrupt_batch_is_quarantined_and_nothing_is_lost(ws):
    day = "2026-03-01"
    batch = simulate.write_scenario(ws, day, "corrupt")
    original = batch.read_bytes()
    before = aliases(ws)
    rec = nightly.run_night(ws, day)
    assert rec.outcome == "batch_rejected"
    assert not rec.validation.success
    failed = " ".join(rec.validation.failed)
    assert "-999" in failed and "__unseen_category__" in failed  # names what is wrong
    q = Path(rec.quarantined_to)
    assert (q / batch.name).read_bytes() == original  # kept byte for byte
    assert (q / "validation.json").is_file() and (q / "validation_docs").is_dir()
    assert not batch.exists()
    assert not (ws.paths.accepted_batch(day)).exists()
    assert aliases(ws) == before
    # the same date again: a second quarantine folder, nothing overwritten
    simulate.write_scenario(ws, day, "corrupt")
    rec2 = nightly.run_night(ws, day)
    assert Path(rec2.quarantined_to).name == f"{day}.2"
    assert (q / batch.name).read_bytes() == original


def test_stable_batch_is_accepted_without_retraining(ws):
    day = "2026-03-02"
    simulate.write_scenario(ws, day, "stable")
    n_versions = len(versions(ws))
    rec = nightly.run_night(ws, day)
    assert rec.outcome == "no_retrain"
    assert rec.validation.success and rec.data_version
    assert not rec.drift.dataset_drift
    assert (ws.paths.accepted_batch(day)).is_file()
    assert len(versions(ws)) == n_versions
    summary = json.loads((ws.paths.night_record(day)).read_text())
    assert summary["outcome"] == "no_retrain" and summary["serving"] == "1"


def test_drifted_batch_triggers_retraining(ws):
    day = "2026-03-03"
    simulate.write_scenario(ws, day, "covariate_drift")
    rec = nightly.run_night(ws, day)
    assert rec.drift.dataset_drift, rec.drift
    assert "data drift" in rec.retrain_reasons
    assert rec.retrained
    assert rec.outcome in ("promoted", "not_promoted")
    assert rec.gate.verdict in ("pass", "fail", "insufficient") and rec.gate.reasons
    assert rec.challenger.metrics["roc_auc"].lower <= rec.challenger.metrics["roc_auc"].point
    assert rec.champion.version is not None  # compared with the champion on the same rows
    assert "roc_auc" in rec.champion.difference
    card = ws.paths.night_model_card(day).markdown  # the registered version's, with the night's
    assert card.read_text().startswith(f"# Model card: {ws.mlflow.registered_model} v")
    assert card.read_text() == ws.paths.model_card().markdown.read_text()


def test_poisoned_batch_is_blocked_by_the_fairness_gate(ws):
    day = "2026-03-04"
    simulate.write_scenario(ws, day, "biased")
    before = aliases(ws)[0]
    rec = nightly.run_night(ws, day, force_retrain=True)
    assert rec.outcome == "not_promoted"
    attr, _group = simulate.poison_group(
        pd.read_parquet(ws.paths.prepared_current), ws.dataset, ws.simulate
    )
    decision = json.loads((ws.paths.gate_decision).read_text())
    regressions = [
        c
        for c in decision["checks"]
        if c["group"] == "fairness_regression"
        and f"({attr})" in c["name"]
        and c["verdict"] in ("fail", "insufficient")  # shown, or not shown within the margin
    ]
    assert regressions, decision["reasons"]
    assert aliases(ws)[0] == before  # champion untouched
    rejected = registry.client(ws).get_model_version(
        ws.mlflow.registered_model, rec.challenger.version
    )
    assert rejected.tags["status"] == "rejected"


def test_forced_promotion_is_recorded_as_override_and_rollback_restores(ws):
    champion, _ = aliases(ws)
    rejected = versions(ws)[-1]
    ev = registry.promote(ws, rejected, reason="accepting the risk for a test", kind="override")
    assert aliases(ws) == (rejected, champion)
    hist = registry.read_history(ws)
    assert hist[-1]["kind"] == "override" and hist[-1]["reason"] == "accepting the risk for a test"
    assert hist[-1]["actor"] and hist[-1]["at"]
    mv = registry.client(ws).get_model_version(ws.mlflow.registered_model, rejected)
    assert mv.tags["override.reason"] == "accepting the risk for a test"
    assert ev.previous_champion == champion
    proc = retrain_cli(ws, "rollback", "--reason", "override was a mistake")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert aliases(ws)[0] == champion
    assert registry.read_history(ws)[-1]["kind"] == "rollback"


def test_two_nights_at_once_the_second_refuses(ws):
    with night_lock(ws):
        proc = retrain_cli(ws, "nightly", "--date", "2026-03-05")
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "another night is running" in out
    assert not (ws.paths.night_record("2026-03-05")).exists()


def _kill_when(proc: subprocess.Popen, marker: str, timeout: float = 300) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        if time.monotonic() > deadline:
            break
    proc.wait(timeout=60)
    return "".join(seen)


@pytest.mark.parametrize(
    "day,how",
    [
        ("2026-03-06", {"kill_at": "Running stage 'train'"}),
        ("2026-03-07", {"crash_at": "registry.registration"}),
    ],
)
def test_a_killed_night_is_completed_by_the_next_run(ws, day, how):
    simulate.write_scenario(ws, day, "stable")
    champion_before, _ = aliases(ws)
    n_before = len(versions(ws))
    if "kill_at" in how:
        proc = retrain_cli(ws, "nightly", "--date", day, "--force-retrain")
        out = _kill_when(proc, how["kill_at"])
        assert how["kill_at"] in out, out[-2000:]
    else:
        proc = retrain_cli(
            ws,
            "nightly",
            "--date",
            day,
            "--force-retrain",
            env=faults.env(RETRAIN_CRASH_AT=how["crash_at"]),
        )
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode != 0, out[-2000:]
    # the state after the kill is consistent: the champion is a whole version, never half moved
    champ, prev = aliases(ws)
    assert champ == champion_before
    # the next run completes the night
    rec = nightly.run_night(ws, day, force_retrain=True)
    assert rec.outcome in ("promoted", "not_promoted"), rec
    after = versions(ws)
    assert len(after) == n_before + 1, after  # exactly one version for the night, no duplicate
    champ, prev = aliases(ws)
    if rec.outcome == "promoted":
        assert champ == after[-1] and prev == champion_before
    else:
        assert champ == champion_before


def test_a_promotion_killed_between_alias_moves_leaves_a_whole_champion(ws):
    champion, _ = aliases(ws)
    target = next(v for v in reversed(versions(ws)) if v != champion)
    proc = retrain_cli(
        ws,
        "promote",
        target,
        "--reason",
        "crash test",
        env=faults.env(RETRAIN_CRASH_AT="registry.promotion"),
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 137, out
    assert aliases(ws)[0] == champion  # previous may have moved; champion did not
    proc = retrain_cli(ws, "promote", target, "--reason", "crash test, again")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert aliases(ws) == (target, champion)
    registry.rollback(ws)
    assert aliases(ws)[0] == champion


def test_reproduce_rebuilds_identical_predictions(ws):
    from pipelines.reproduce import reproduce_version

    champion, _ = aliases(ws)
    # the cache may be gone on another machine: the remote alone must be enough
    import shutil

    shutil.rmtree(ws.root / ".dvc" / "cache")
    r = reproduce_version(ws, champion, sample=1000)
    assert r.identical, r
    assert r.compared_rows == 1000
