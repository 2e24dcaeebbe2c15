"""The real Airflow components against PostgreSQL: scheduler, dag-processor and api-server
(LocalExecutor), a run triggered through the REST API with the body the UI sends, and a run
the scheduler creates on its own.

The session's servers (``local_airflow`` in ``tests/integration/conftest.py``: one throwaway
database copied from the migrated template, settings from the environment only, as in a
deployment), switched to a workspace of this module's, copied from the session's base
workspace (first champion built once, ``tests/support/nights.py``) through the Airflow Variable
``RETRAIN_PARAMS``. Everything is stopped (SIGTERM to each component's process group) and the
database dropped at the end of the session.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.airflow_servers import (
    DAG_ID,
    MLFLOW_UI,
    asset_events,
    dag_runs,
    extra_links,
    log_text,
    note_parts,
    task_instances,
    ui_body,
    use_workspace,
    wait_dag_loaded,
    wait_for,
)
from tests.support.nights import base_workspace, champion, mlflow_names, record

pytestmark = pytest.mark.integration

# a stable batch, forced retrain: the challenger is promoted. The batch is the one drawn for
# this date, written for the night of the latest 02:00 (UTC): the night the scheduler adds
# when the DAG is unpaused, which must then leave the triggered night alone
BATCH_OF = "2026-04-01"


@pytest.fixture(scope="module")
def airflow(local_airflow, tmp_path_factory: pytest.TempPathFactory):
    """The session's servers on PostgreSQL, switched to a workspace of this module's;
    yields (api, workspace, logs)."""
    dest = tmp_path_factory.mktemp("airflow_it") / "project"
    dep = use_workspace(local_airflow, base_workspace(tmp_path_factory), dest)
    yield dep.api, dep.ws, dep.logs


def test_triggered_and_scheduled_nights_run_on_postgres(airflow):
    api, ws, logs = airflow

    wait_dag_loaded(api, logs)  # parsed by the dag-processor, with no import error

    from pipelines.config import load_params
    from pipelines.demo.simulate import write_scenario

    params = load_params(ws / "params.yaml")
    day = (datetime.now(UTC) - timedelta(hours=2)).date().isoformat()  # the latest 02:00's
    same_batch = params.simulate.seed + int(BATCH_OF.replace("-", "")) - int(day.replace("-", ""))
    write_scenario(params, day, "stable", seed=same_batch)

    # the form's values, as the UI posts them (logical date left empty)
    form = {"date": day, "batch": None, "force_retrain": True}
    form |= {"skip_deploy": True, "dry_run": False}
    bad = ui_body({**form, "date": "2026-02-30"})
    status, body = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", bad)
    assert status == 400, (status, body)  # refused by the params schema, no run created

    status, run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", ui_body(form))
    assert status == 200, (status, run)
    manual_id = run["dag_run_id"]
    assert run["run_type"] == "manual" and run["conf"]["date"] == day

    # unpausing (as "Unpause on trigger" does right after) makes the scheduler create the
    # latest missed cron run (02:00 UTC) on its own, for the same night; due earlier, it may
    # well start first
    unpaused_at = datetime.now(UTC)
    status, body = api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    assert status == 200 and body["is_paused"] is False, body

    def both_done() -> list[dict[str, Any]] | None:
        runs = dag_runs(api)
        done = [r for r in runs if r["state"] in ("success", "failed")]
        manual = any(r["dag_run_id"] == manual_id for r in done)
        scheduled = any(r["run_type"] == "scheduled" for r in done)
        return runs if manual and scheduled else None

    runs = wait_for("the manual and the scheduled run", both_done, 900, every=5, logs=logs)

    # the manual night: retrained, gate passed, promoted; deploy skipped as asked
    manual = next(r for r in runs if r["dag_run_id"] == manual_id)
    tasks = task_instances(api, manual_id)
    states = {t: ti["state"] for t, ti in tasks.items()}
    assert manual["state"] == "success", states
    assert states["register"] == "success" and states["register_rejected"] == "skipped"
    assert states["deploy"] == "skipped" and states["watcher"] == "skipped"
    rec = record(ws, day)
    assert rec["outcome"] == "promoted" and rec["gate"]["verdict"] == "pass"
    assert rec["promoted"] == rec["serving"] == champion(ws) == "2"
    history = (ws / "reports" / "registry" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["actor"].startswith(f"airflow:{DAG_ID}/{manual_id}")
    log = log_text(api, manual_id, "summary", tasks["summary"]["try_number"])
    assert "night summary" in log and "summary.json" in log and "MLflow" in log
    # the screens: the run's note, the outcome's own task, the Asset events
    note, link = note_parts(manual["note"])
    assert note == f"{day}: promoted v2 (was v1)", manual
    assert link and link.startswith(f"{MLFLOW_UI}/#/experiments/"), manual  # the night's run
    # the buttons on the tasks' pages (operator extra links), on that same address
    summary_links = extra_links(api, manual_id, "summary")
    assert summary_links == {
        "MLflow: the challenger's run": summary_links["MLflow: the challenger's run"],
        "MLflow: the model version": f"{MLFLOW_UI}/#/models/{mlflow_names(ws)[0]}/versions/2",
        "MLflow: the night's run": link,
        "Night summary (HTML)": f"{link}/artifacts/night/summary.html",
    }, summary_links
    assert summary_links["MLflow: the challenger's run"].endswith(rec["challenger"]["run_id"])
    assert extra_links(api, manual_id, "night_promoted") == summary_links
    register_links = extra_links(api, manual_id, "register")
    assert register_links == {
        k: summary_links[k] for k in ("MLflow: the challenger's run", "MLflow: the model version")
    }, register_links
    # the schedule: the UI's column draws the asset; the cron is in what the API gives it
    shown = api.get(f"/api/v2/dags/{DAG_ID}")
    assert shown["timetable_summary"] == "Asset or 0 2 * * *", shown
    assert shown["timetable_description"] == "Triggered by assets or At 02:00", shown
    assert "0 2 * * *" in shown["description"] and "retrain-live-trigger" in shown["description"]
    assert states["night_promoted"] == "success"
    assert all(
        s == "skipped"
        for t, s in states.items()
        if t.startswith("night_") and t != "night_promoted"
    )
    events = asset_events(api, manual_id)
    assert events["retrain-accepted-data"]["night"] == day, events
    assert events["retrain-accepted-data"]["data_version"] == rec["data_version"]
    assert events["retrain-champion"] == {"night": day, "version": "2", "outcome": "promoted"}

    # the scheduled night: created by the scheduler for the latest 02:00, for its own date,
    # which the triggered run has: it leaves the night alone, and its logs and note say why
    scheduled = next(r for r in runs if r["run_type"] == "scheduled")
    sched_id = scheduled["dag_run_id"]
    sched_tasks = task_instances(api, sched_id)
    assert scheduled["state"] == "success", sched_tasks
    logical = datetime.fromisoformat(scheduled["logical_date"].replace("Z", "+00:00"))
    assert logical <= unpaused_at and (logical.hour, logical.minute) == (2, 0)
    assert logical.date().isoformat() == day
    assert {t: x["state"] for t, x in sched_tasks.items() if x["state"] != "skipped"} == {
        "summary": "success",
        "outcome": "success",
    }
    ingest_log = log_text(api, sched_id, "ingest", sched_tasks["ingest"]["try_number"])
    assert f"night {day} is run by {manual_id}" in ingest_log, ingest_log[-2000:]
    assess_log = log_text(api, sched_id, "assess", sched_tasks["assess"]["try_number"])
    assert "skipped: ingest did not accept a batch" in assess_log, assess_log[-2000:]
    assert scheduled["note"] == f"{day}: not run by this scheduled run (run by {manual_id})"
    assert extra_links(api, sched_id, "outcome") == dict.fromkeys(summary_links)  # greyed out
    assert record(ws, day)["outcome"] == "promoted" and record(ws, day)["run"] == manual_id
    assert asset_events(api, sched_id) == {}
    assert len([r for r in runs if r["run_type"] == "scheduled"]) == 1  # catchup is off
