"""Airflow's distributed CeleryExecutor, for real: api-server, scheduler, dag-processor and two
``airflow celery worker`` processes (concurrency 1 each) on one machine, broker on Redis, Celery
results and Airflow metadata on PostgreSQL.

- A night triggered through the REST API with the UI's body runs to success, its tasks spread
  over both workers (each worker's task instances report their own hostname).
- A worker is lost mid-task (kill -9 of its whole session while it runs ``train``): the scheduler
  fails the task after the heartbeat timeout, the other worker runs the retry, the night still
  succeeds, and the challenger is registered once.

Test-only settings, to keep it short: a 20 s task heartbeat timeout (default 300 s), a 5 s retry
delay through a cluster policy (``tests/support/airflow_worker.py``; the DAG backs off for
minutes), one retry (``RETRAIN_RETRIES``) and no cron runs (``[scheduler] use_job_schedule``).

Throwaway state: database ``airflow_celery_<random>`` (dropped at the end), an empty Redis
database (flushed before and after), a copy of the session's base workspace (first champion,
see ``tests/dags/test_dag_runs.py``). Every process is killed at the end, even on failure; on a
failure the tail of each component's log is printed.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.airflow_servers import (
    DAG_ID,
    Deployment,
    airflow_deployment,
    dag_runs,
    free_port,
    fresh_database,
    pg_url,
    session_pids,
    task_instances,
    task_tries,
    ui_body,
    wait_dag_loaded,
    wait_for,
)
from tests.support.airflow_worker import HOSTNAME_CALLABLE, LOCAL_SETTINGS
from tests.support.nights import (
    base_workspace,
    mlflow_client,
    mlflow_names,
    record,
    write_batch,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REDIS: dict[str, Any] = {"host": "127.0.0.1", "port": 6379}
WORKERS = ("worker-a", "worker-b")
HEARTBEAT_TIMEOUT = 20  # seconds without a heartbeat before a running task is failed
NIGHTS = {"spread": "2026-04-01", "lost_worker": "2026-04-02"}  # stable batches, forced retrain
RAN = ("success", "failed")
STAGES: tuple[str, ...]
STAGES = ("ingest", "assess", "window", "validate", "drift", "train", "evaluate", "fairness")
STAGES += ("gate",)  # then register or register_rejected, as the gate decides, then summary


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def redis_url() -> Any:
    """An empty Redis database (picked at random, flushed before and after) for the broker."""
    import redis

    try:
        redis.Redis(**REDIS, socket_connect_timeout=3).ping()
    except Exception as err:  # no server on this machine: say so, do not fail
        pytest.skip(f"Redis not reachable on {REDIS['host']}:{REDIS['port']}: {err}")
    empty = [n for n in range(1, 16) if redis.Redis(**REDIS, db=n).dbsize() == 0]  # 16: default
    if not empty:
        pytest.skip("no empty Redis database for the Celery broker")
    number = random.choice(empty)
    db = redis.Redis(**REDIS, db=number)
    db.flushdb()
    yield f"redis://{REDIS['host']}:{REDIS['port']}/{number}"
    db.flushdb()


def _celery_ping(broker: str) -> set[str]:
    """Names of the Celery workers answering a ping on the broker."""
    from celery import Celery

    app = Celery(broker=broker)
    try:
        return {name for reply in app.control.ping(timeout=1.5) for name in reply}
    finally:
        app.close()


@pytest.fixture(scope="module")
def celery_airflow(redis_url: str, airflow_template: str, tmp_path_factory: pytest.TempPathFactory):
    """The deployment: servers and two Celery workers; yields a Deployment once all are up."""
    base = base_workspace(tmp_path_factory)  # built once per session, before any server
    with fresh_database("airflow_celery", template=airflow_template) as database:
        root = tmp_path_factory.mktemp("airflow_celery")
        local_settings = root / "local_settings"
        local_settings.mkdir()
        (local_settings / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
        settings = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + pg_url(database),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            # runs come from the REST API only: unpausing creates no cron run beside them
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "RETRAIN_RETRIES": "1",  # a lost worker's task gets one more try
            "IT_RETRY_DELAY_SECONDS": "5",  # the cluster policy's retry delay (not minutes)
            # tests.support (hostname callable, policy) and airflow_local_settings importable
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(local_settings)]),
        }
        workers = {
            name: (
                ["celery", "worker", "--concurrency", "1", "--celery-hostname", f"{name}@it"]
                + ["--without-mingle", "--without-gossip"],
                {
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
                    "IT_WORKER_HOSTNAME": name,
                },
            )
            for name in WORKERS
        }
        with airflow_deployment(root, base, database, settings, workers, migrated=True) as dep:
            expected = {f"{name}@it" for name in WORKERS}
            wait_for("both workers to answer", lambda: _celery_ping(redis_url) >= expected, 180)
            wait_dag_loaded(dep.api, dep.logs)
            status, body = dep.api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
            assert status == 200 and body["is_paused"] is False, body
            yield dep


# --------------------------------------------------------------------------- helpers
def _trigger(dep: Deployment, day: str) -> str:
    """A forced-retrain night as the UI's form posts it; the run id."""
    conf = {"date": day, "batch": None, "force_retrain": True, "skip_deploy": True}
    conf["dry_run"] = False
    status, run = dep.api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", ui_body(conf))
    assert status == 200, (status, run)
    assert run["run_type"] == "manual" and run["conf"]["date"] == day
    return str(run["dag_run_id"])


def _finished(dep: Deployment, run_id: str, timeout: float = 600) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run = next(r for r in dag_runs(dep.api) if r["dag_run_id"] == run_id)
        return run if run["state"] in ("success", "failed") else None

    return wait_for(f"run {run_id} to finish", done, timeout, every=3)


def _versions_of_night(dep: Deployment, day: str) -> list[str]:
    """Registry versions whose source run belongs to the night (tag ``night``)."""
    client = mlflow_client(dep.ws)
    model, _ = mlflow_names(dep.ws)
    return [
        str(v.version)
        for v in client.search_model_versions(f"name = '{model}'")
        if v.run_id and client.get_run(v.run_id).data.tags.get("night") == day
    ]


def _where(tasks: dict[str, dict[str, Any]]) -> dict[str, str]:
    """task id -> hostname of the worker that ran it (tasks that ran on a worker only: the
    outcome markers are no-op tasks the scheduler marks itself)."""
    return {t: ti["hostname"] for t, ti in tasks.items() if ti["state"] in RAN and ti["hostname"]}


def _check_judged_once(dep: Deployment, day: str, run: dict[str, Any]) -> dict[str, Any]:
    """The night succeeded, every stage ran, and its challenger was registered exactly once
    (promoted or kept as rejected, as the gate decided); the task instances, by task id."""
    tasks = task_instances(dep.api, run["dag_run_id"])
    states = {t: ti["state"] for t, ti in tasks.items()}
    assert run["state"] == "success", states
    rec = record(dep.ws, day)
    branch = "register" if rec["gate"]["verdict"] == "pass" else "register_rejected"
    for t in (*STAGES, branch, "summary"):
        assert states[t] == "success", (t, states)
    assert states["deploy"] == "skipped" and states["watcher"] == "skipped", states
    assert rec["outcome"] == ("promoted" if rec["gate"]["verdict"] == "pass" else "not_promoted")
    version = str(rec["challenger"]["version"])
    assert _versions_of_night(dep, day) == [version]  # registered exactly once
    print(f"night {day}: {rec['outcome']} (challenger v{version}, serving v{rec['serving']})")
    for reason in rec["gate"].get("reasons") or []:
        print(f"  gate: {reason}")
    return tasks


def _show(tasks: dict[str, dict[str, Any]]) -> None:
    """Which worker ran what, in order."""
    for ti in sorted(tasks.values(), key=lambda t: t["start_date"] or "~"):
        if ti["state"] in RAN:
            print(
                f"  {ti['task_id']:<18} {ti['hostname']}  try {ti['try_number']}  "
                f"{ti['start_date'][11:19]}-{ti['end_date'][11:19]}"
            )


# --------------------------------------------------------------------------- the tests
def test_a_night_spreads_over_both_workers(celery_airflow: Deployment):
    dep = celery_airflow
    day = NIGHTS["spread"]
    with dep.report_on_failure():
        write_batch(dep.ws, day, "stable")
        started = time.monotonic()
        run = _finished(dep, _trigger(dep, day))
        print(f"\nnight {day} on Celery: {time.monotonic() - started:.0f}s")

        tasks = _check_judged_once(dep, day, run)
        _show(tasks)
        assert record(dep.ws, day)["outcome"] == "promoted"  # as on LocalExecutor: v1 is replaced
        where = _where(tasks)
        assert set(where.values()) == set(WORKERS), where  # both workers ran tasks, no other


def test_a_lost_worker_task_is_retried_on_the_other_worker(celery_airflow: Deployment):
    dep = celery_airflow
    day = NIGHTS["lost_worker"]
    with dep.report_on_failure():
        assert all(dep.procs[w].poll() is None for w in WORKERS), "a worker is not running"
        model, _ = mlflow_names(dep.ws)
        before = len(mlflow_client(dep.ws).search_model_versions(f"name = '{model}'"))
        write_batch(dep.ws, day, "stable")
        run_id = _trigger(dep, day)

        def train_running() -> dict[str, Any] | None:
            ti = task_instances(dep.api, run_id).get("train") or {}
            return ti if ti.get("state") == "running" and ti.get("hostname") else None

        train = wait_for("train to run", train_running, 300, every=0.5)
        lost = train["hostname"]
        assert lost in WORKERS, train
        killed_at = time.monotonic()
        pids = dep.kill(lost)
        print(f"\nkill -9 {lost} (session {dep.procs[lost].pid}: {len(pids)} processes) in train")
        assert session_pids(dep.procs[lost].pid) == []  # its task process died with it too

        run = _finished(dep, run_id)
        print(f"night {day} finished {time.monotonic() - killed_at:.0f}s after the kill")
        tasks = _check_judged_once(dep, day, run)
        _show(tasks)
        survivor = next(w for w in WORKERS if w != lost)
        tries = task_tries(dep.api, run_id, "train")
        for t in tries:
            print(
                f"  train try {t['try_number']}: {t['state']} on {t['hostname']}, "
                f"{(t['start_date'] or '')[11:19]}-{(t['end_date'] or '')[11:19]}"
            )
        assert tasks["train"]["try_number"] > 1 and tasks["train"]["hostname"] == survivor
        assert tries[0]["hostname"] == lost and tries[-1]["hostname"] == survivor
        assert tries[0]["state"] != "success"
        # after the loss, every later task ran once, on the survivor
        later = [t for t, ti in tasks.items() if ti["state"] in RAN]
        later = [t for t in later if tasks[t]["start_date"] > tries[-1]["start_date"]]
        assert {"evaluate", "fairness", "gate", "summary"} <= set(later), later
        where = _where(tasks)
        assert {where[t] for t in later if t in where} == {survivor}, where
        assert all(tasks[t]["try_number"] == 1 for t in later), tasks
        # nothing lost, nothing doubled: one new version in all, the night's challenger
        after = len(mlflow_client(dep.ws).search_model_versions(f"name = '{model}'"))
        assert after == before + 1, (before, after)
