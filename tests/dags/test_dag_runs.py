"""`dag.test()` runs of every path a night can take, on real data in throwaway workspaces.

A workspace with a first champion is built once per session (`dvc repro`, about a minute) and
copied for each test, so every test starts from the same state and the tests run in any order.
Each run is a `dag.test()` in a fresh interpreter with its own AIRFLOW_HOME (SQLite), with
`RETRAIN_PARAMS` pointing at the workspace, exactly as a deployment would configure it.

Paths: batch rejected (fast), no drift (fast), forced retrain promoted, gate rejection
(forced retrain under impossible thresholds). The two retraining paths train a model each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.nights import (  # noqa: F401
    MIRROR,
    base_workspace,
    champion,
    copy_workspace,
    mlflow_client,
    mlflow_names,
    night_env,
    notifications,
    record,
    write_batch,
)

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_ID = "retrain_nightly"

RUNNER = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dr = bag.dags["retrain_nightly"].test(run_conf=json.loads(sys.argv[2]))
tis = dr.get_task_instances()
# the tasks' buttons (operator extra links) as Airflow keeps them for the UI: XComs _link_*
from sqlalchemy import select
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    rows = session.scalars(select(XComModel).where(
        XComModel.run_id == dr.run_id, XComModel.key.like("_link_%"))).all()
    links = {f"{x.task_id} {x.key[len('_link_'):]}": XComModel.deserialize_value(x) for x in rows}
print("RESULT " + json.dumps({
    "state": str(getattr(dr.state, "value", dr.state)),
    "run_id": dr.run_id,
    "tasks": {t.task_id: str(getattr(t.state, "value", t.state)) for t in tis},
    "tries": {t.task_id: t.try_number for t in tis},
    "links": links,
}))
"""


MONITOR_RUNNER = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dr = bag.dags["retrain_monitor"].test()
print("RESULT " + json.dumps({
    "state": str(getattr(dr.state, "value", dr.state)),
    "tasks": {t.task_id: str(getattr(t.state, "value", t.state)) for t in dr.get_task_instances()},
}))
"""

# --------------------------------------------------------------------------- workspaces


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow_home")
    env = night_env(home, home)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return home


@pytest.fixture
def ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_workspace(base_workspace(tmp_path_factory), tmp_path / "project")


def dag_test(home: Path, ws: Path, conf: dict[str, Any], **env: str) -> dict[str, Any]:
    """`dag.test(run_conf=conf)` in a fresh interpreter (``env``: more settings); the run's
    state, task states and the tasks' extra links (``"<task> <link class>": address``)."""
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(DAGS / "retrain_nightly.py"), json.dumps(conf)],
        env={**night_env(home, ws), **env},
        cwd=home,  # not the workspace: its copy of pipelines/ must not shadow the installed one
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-5000:] + proc.stderr[-3000:]
    result = json.loads(line[len("RESULT ") :])
    result["log"] = proc.stdout + proc.stderr
    return result


MLFLOW_UI = "http://mlflow.example:5000"  # RETRAIN_MLFLOW_UI_URL: a browser's address of MLflow
UI_DEFAULTS = {"date": None, "batch": None, "force_retrain": False, "skip_deploy": False}
UI_DEFAULTS["dry_run"] = False
RETRAIN_TASKS = ("window", "validate", "drift", "train", "evaluate", "fairness", "gate")
APPROVAL_TASKS = ("needs_approval", "approve", "promote")  # deploy.approval: none here

pytestmark = pytest.mark.slow


def outcome_tasks(tasks: dict[str, str]) -> dict[str, str]:
    """The outcome tasks that did not skip: exactly one per finished night."""
    assert tasks["outcome"] == "success"
    return {t: s for t, s in tasks.items() if t.startswith("night_") and s != "skipped"}


# --------------------------------------------------------------------------- the paths
def test_rejected_batch_fails_ingest_alerts_and_skips_the_rest(airflow_home, ws):
    day = "2026-03-01"
    batch = write_batch(ws, day, "corrupt")
    run = dag_test(airflow_home, ws, {**UI_DEFAULTS, "date": day})

    assert run["state"] == "failed"
    tasks = run["tasks"]
    assert tasks["ingest"] == "failed" and run["tries"]["ingest"] == 1  # not retried
    for t in ("assess", *RETRAIN_TASKS, "register", "register_rejected", *APPROVAL_TASKS):
        assert tasks[t] == "skipped", t
    assert tasks["deploy"] == "skipped"
    assert tasks["summary"] == "success" and tasks["watcher"] == "failed"
    assert outcome_tasks(tasks) == {"night_quarantined": "success"}
    # a short, wrapped message; no traceback of the task runner's frames, here or in watcher
    rec = record(ws, day)
    quarantine = Path(rec["quarantined_to"])
    assert rec["batch"] == str(quarantine / batch.name)  # the record names where the file is
    assert f"night {day}: batch {quarantine / batch.name} REJECTED (" in run["log"]
    assert "Traceback" not in run["log"] and "Task exited" in run["log"]
    assert "note: 2026-03-01: quarantined: " in run["log"]
    assert rec["outcome"] == "batch_rejected" and rec["serving"] == "1"
    assert (quarantine / batch.name).is_file() and (quarantine / "validation_docs").is_dir()
    assert not batch.exists()
    alerts = notifications(ws)
    assert [(a["event"], a["task_id"]) for a in alerts] == [("failure", "ingest")]
    assert "REJECTED" in alerts[0]["message"] and str(quarantine) in alerts[0]["message"]
    assert alerts[0]["night"] == day and alerts[0]["run_id"] == run["run_id"]
    assert champion(ws) == "1"


def test_no_drift_skips_retraining_and_succeeds(airflow_home, ws):
    day = "2026-03-02"
    write_batch(ws, day, "stable")
    run = dag_test(airflow_home, ws, {**UI_DEFAULTS, "date": day})

    assert run["state"] == "success"
    tasks = run["tasks"]
    assert tasks["ingest"] == "success" and tasks["assess"] == "success"
    for t in (*RETRAIN_TASKS, "register", "register_rejected", *APPROVAL_TASKS, "deploy"):
        assert tasks[t] == "skipped", t
    assert tasks["watcher"] == "skipped"
    assert tasks["summary"] == "success"
    assert outcome_tasks(tasks) == {"night_no_retrain": "success"}
    assert (
        f"note: {day}: no retrain (no drift, not scheduled, not forced); v1 serving" in run["log"]
    )
    rec = record(ws, day)
    assert rec["outcome"] == "no_retrain" and not rec["drift"]["dataset_drift"]
    assert rec["run"] == run["run_id"]  # the run that has the night
    assert rec["data_version"] and rec["serving"] == "1" and rec["finished_at"]
    assert (ws / "data" / "accepted" / f"{day}.parquet").is_file()
    assert notifications(ws) == []
    assert "night summary: " in run["log"] and "no_retrain" in run["log"]


def test_retrain_promotes_notifies_and_records_the_night_in_mlflow(airflow_home, ws):
    day = "2026-04-01"
    write_batch(ws, day, "stable")
    conf = {**UI_DEFAULTS, "date": day, "force_retrain": True, "skip_deploy": True}
    run = dag_test(airflow_home, ws, conf, RETRAIN_MLFLOW_UI_URL=MLFLOW_UI)

    assert run["state"] == "success", run["tasks"]
    tasks = run["tasks"]
    for t in ("ingest", "assess", *RETRAIN_TASKS, "register", "summary"):
        assert tasks[t] == "success", t
    assert tasks["register_rejected"] == "skipped" and tasks["deploy"] == "skipped"
    assert tasks["watcher"] == "skipped"
    # no approval asked: register promoted; promote has nothing left to do, approve never asks
    assert tasks["needs_approval"] == "success" and tasks["approve"] == "skipped"
    assert tasks["promote"] == "success"
    assert outcome_tasks(tasks) == {"night_promoted": "success"}

    rec = record(ws, day)
    assert rec["outcome"] == "promoted" and rec["gate"]["verdict"] == "pass"
    assert rec["gate"]["approval"] is None  # nobody was asked
    assert rec["gate"]["plan"]["kind"] == "promote"  # the release plan, recorded
    assert rec["retrain_reasons"] == ["forced"]
    assert rec["promoted"] == rec["serving"] == "2" == champion(ws)
    alerts = notifications(ws)
    assert [(a["event"], a["task_id"]) for a in alerts] == [("promotion", "register")]
    assert "v2 promoted to champion (was v1)" in alerts[0]["message"]
    # the registry knows who promoted: this Airflow run
    history = ws / "reports" / "registry" / "history.jsonl"
    last = json.loads(history.read_text().splitlines()[-1])
    assert last["kind"] == "promotion" and last["actor"].startswith(f"airflow:{DAG_ID}/")
    # the night is reachable from MLflow: its own run, and a tag on the challenger's run
    c = mlflow_client(ws)
    exp = c.get_experiment_by_name(f"{mlflow_names(ws)[1]}-nights")
    (night_run,) = c.search_runs([exp.experiment_id], filter_string=f"tags.night = '{day}'")
    assert night_run.data.tags["outcome"] == "promoted"
    assert night_run.data.tags["airflow.run_id"] == run["run_id"]
    names = {a.path for a in c.list_artifacts(night_run.info.run_id, "night")}
    assert "night/summary.json" in names
    assert c.get_run(rec["challenger"]["run_id"]).data.tags["night"] == day
    assert "MLflow night run: " in run["log"] and "MLflow challenger run: " in run["log"]
    # the buttons on the tasks' pages: on the MLflow UI's address a browser reaches
    model, _ = mlflow_names(ws)
    challenger = c.get_run(rec["challenger"]["run_id"])
    version = f"{MLFLOW_UI}/#/models/{model}/versions/2"
    run_url = f"{MLFLOW_UI}/#/experiments/{challenger.info.experiment_id}/runs/"
    night_url = run_url.replace(challenger.info.experiment_id, exp.experiment_id)
    night_url += night_run.info.run_id
    run_url += challenger.info.run_id
    night = {
        "ModelVersionLink": version,
        "ChallengerRunLink": run_url,
        "NightRunLink": night_url,
        "NightSummaryLink": f"{night_url}/artifacts/night/summary.html",
    }
    links = run["links"]
    assert {k: v for k, v in links.items() if k.startswith("register ")} == {
        "register ModelVersionLink": version,
        "register ChallengerRunLink": run_url,
    }
    for t in ("summary", "outcome", "night_promoted"):
        assert {k.split()[1]: v for k, v in links.items() if k.startswith(f"{t} ")} == night, t
    assert "night/summary.html" in names  # what the summary's button opens


def test_gate_rejection_keeps_the_champion_and_skips_promotion_and_deploy(airflow_home, ws):
    day = "2026-04-02"
    raw = yaml.safe_load((ws / "params.yaml").read_text())
    raw["gate"]["metrics"]["roc_auc"] = {"min": 0.99}  # no model here reaches it
    (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    write_batch(ws, day, "stable")
    run = dag_test(airflow_home, ws, {**UI_DEFAULTS, "date": day, "force_retrain": True})

    assert run["state"] == "success", run["tasks"]  # a rejection is an outcome, not an error
    tasks = run["tasks"]
    assert tasks["gate"] == "success" and tasks["register_rejected"] == "success"
    assert tasks["register"] == "skipped" and tasks["deploy"] == "skipped"
    assert all(tasks[t] == "skipped" for t in APPROVAL_TASKS), tasks
    assert tasks["summary"] == "success" and tasks["watcher"] == "skipped"
    assert outcome_tasks(tasks) == {"night_rejected": "success"}  # not the promotion's green

    rec = record(ws, day)
    assert rec["outcome"] == "not_promoted" and rec["gate"]["verdict"] == "fail"
    assert any("roc_auc" in r for r in rec["gate"]["reasons"]), rec["gate"]["reasons"]
    assert rec["serving"] == "1" == champion(ws) and rec["promoted"] is None
    model, _ = mlflow_names(ws)
    rejected = mlflow_client(ws).get_model_version(model, rec["challenger"]["version"])
    assert rejected.tags["status"] == "rejected"
    assert notifications(ws) == []  # nothing failed, nothing promoted
    # no MLflow UI address a browser reaches (a SQLite store): the buttons stay greyed out
    # (an empty link), never an instruction posing as an address
    links = run["links"]
    assert links["register_rejected ModelVersionLink"] == "", links
    assert links["summary NightSummaryLink"] == links["outcome NightRunLink"] == "", links


def test_the_monitor_s_verdict_is_the_last_line_of_its_task_log(airflow_home, ws):
    proc = subprocess.run(
        [sys.executable, "-c", MONITOR_RUNNER, str(DAGS / "retrain_monitor.py")],
        env=night_env(airflow_home, ws),
        cwd=airflow_home,
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert json.loads(line[len("RESULT ") :])["tasks"]["monitor"] == "success"
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.strip()]
    at = next(i for i, x in enumerate(lines) if "monitor verdict: " in x)
    verdict = lines[at].split("monitor verdict: ", 1)[1].split(" [retrain_monitor]")[0].strip()
    # the task's own last line; Airflow's "Done. Returned value was: ..." right after it
    # starts with the verdict too
    assert "Done. Returned value was: {'verdict': " in lines[at + 1], lines[at : at + 3]
    assert verdict in lines[at + 1], (verdict, lines[at + 1])
