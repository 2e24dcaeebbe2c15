"""The real Airflow components against PostgreSQL: scheduler, dag-processor and api-server
(LocalExecutor), a run triggered through the REST API with the body the UI sends, and a run
the scheduler creates on its own.

One throwaway database (``airflow_it_<random>``) per session on 127.0.0.1:5432, one workspace
copied from the session's base workspace (first champion built once, see
``tests/dags/test_dag_runs.py``). Settings come from the environment only, as in a deployment:
``AIRFLOW__...`` for Airflow, ``AIRFLOW_VAR_RETRAIN_PARAMS`` (an Airflow Variable) for the
workspace. Everything is stopped (SIGTERM to each component's process group) and the database
dropped at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.dags.test_dag_runs import (
    base_workspace,
    champion,
    copy_workspace,
    night_env,
    record,
)

pytestmark = pytest.mark.integration

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
DAG_ID = "retrain_nightly"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
MANUAL_DAY = "2026-04-01"  # a stable batch, forced retrain: the challenger is promoted


def _pg(dbname: str = "postgres") -> Any:
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, connect_timeout=3, **PG)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="module")
def database() -> Any:
    import importlib.util

    if importlib.util.find_spec("asyncpg") is None:  # Airflow 3 opens async sessions too
        pytest.skip("Airflow on PostgreSQL needs the asyncpg driver (pip install asyncpg)")
    try:
        conn = _pg()
    except Exception as err:  # no server on this machine: say so, do not fail
        pytest.skip(f"PostgreSQL not reachable on {PG['host']}:{PG['port']}: {err}")
    name = f"airflow_it_{secrets.token_hex(4)}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield name
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """The Airflow REST API with a JWT from /auth/token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def login(self, username: str, password: str) -> None:
        status, body = self.call(
            "POST", "/auth/token", {"username": username, "password": password}
        )
        assert status in (200, 201), (status, body)
        self.token = body["access_token"]


def _wait(what: str, check, timeout: float, every: float = 2.0, logs: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError) as err:  # not up yet
            last = err
        else:
            if last:
                return last
        time.sleep(every)
    tail = ""
    if logs is not None:
        for f in sorted(logs.glob("*.log")):
            tail += f"\n--- {f.name}\n" + f.read_text(errors="replace")[-3000:]
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}{tail}")


@pytest.fixture(scope="module")
def airflow(database, tmp_path_factory: pytest.TempPathFactory):
    """Scheduler, dag-processor and api-server on PostgreSQL; yields (api, workspace, logs)."""
    root = tmp_path_factory.mktemp("airflow_it")
    ws = copy_workspace(base_workspace(tmp_path_factory), root / "project")
    home, logs = root / "airflow_home", root / "logs"
    home.mkdir()
    logs.mkdir()
    port, password = _free_port(), secrets.token_urlsafe(12)
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    env = night_env(home, ws)
    del env["RETRAIN_PARAMS"]  # the workspace comes from an Airflow Variable instead
    env.update(
        AIRFLOW_VAR_RETRAIN_PARAMS=str(ws / "params.yaml"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=(
            f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}"
        ),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),  # not 8793: may be taken
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
    )
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, cwd=home, capture_output=True, text=True, timeout=600
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    procs: list[subprocess.Popen] = []
    for name, args in (
        ("api-server", ["api-server", "--port", str(port), "--host", "127.0.0.1"]),
        ("scheduler", ["scheduler"]),
        ("dag-processor", ["dag-processor"]),
    ):
        out = open(logs / f"{name}.log", "w")  # noqa: SIM115  (closed with the process)
        procs.append(
            subprocess.Popen(
                [AIRFLOW, *args],
                env=env,
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        )
    try:
        api = Api(f"http://127.0.0.1:{port}")

        def healthy() -> bool:
            status, body = api.call("GET", "/api/v2/monitor/health")
            return status == 200 and body["scheduler"]["status"] == "healthy"

        _wait("api-server and scheduler health", healthy, 180, logs=logs)
        api.login("admin", password)
        yield api, ws, logs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
            if p.stdout is not None:
                p.stdout.close()


def _runs(api: Api) -> list[dict[str, Any]]:
    status, body = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=50")
    assert status == 200, body
    return body["dag_runs"]


def _tasks(api: Api, run_id: str) -> dict[str, dict[str, Any]]:
    q = urllib.request.quote(run_id, safe="")
    status, body = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances")
    assert status == 200, body
    return {t["task_id"]: t for t in body["task_instances"]}


def _log_text(api: Api, run_id: str, task_id: str, try_number: int) -> str:
    q = urllib.request.quote(run_id, safe="")
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances/{task_id}/logs/{try_number}"
    status, body = api.call("GET", path + "?full_content=true")
    assert status == 200, body
    return json.dumps(body)


def test_triggered_and_scheduled_nights_run_on_postgres(airflow):
    api, ws, logs = airflow

    # the dag-processor parsed the DAG file with no import error
    def dag_loaded() -> bool:
        status, _ = api.call("GET", f"/api/v2/dags/{DAG_ID}")
        return status == 200

    _wait("the DAG to be parsed", dag_loaded, 180, logs=logs)
    status, errors = api.call("GET", "/api/v2/importErrors")
    assert status == 200 and errors["total_entries"] == 0, errors

    from pipelines.config import load_params
    from pipelines.simulate import write_scenario

    write_scenario(load_params(ws / "params.yaml"), MANUAL_DAY, "stable")

    # the form's values, as the UI posts them (logical date left empty)
    form = {"date": MANUAL_DAY, "batch": None, "force_retrain": True}
    form |= {"skip_deploy": True, "dry_run": False}
    ui_body = {"conf": form, "data_interval_end": None, "data_interval_start": None}
    ui_body["logical_date"] = None
    bad = {**ui_body, "conf": {**form, "date": "2026-02-30"}}
    status, body = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", bad)
    assert status == 400, (status, body)  # refused by the params schema, no run created

    status, run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", ui_body)
    assert status == 200, (status, run)
    manual_id = run["dag_run_id"]
    assert run["run_type"] == "manual" and run["conf"]["date"] == MANUAL_DAY

    # unpausing makes the scheduler create the latest missed cron run (02:00 UTC) on its own
    unpaused_at = datetime.now(UTC)
    status, body = api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    assert status == 200 and body["is_paused"] is False, body

    def both_done() -> list[dict[str, Any]] | None:
        runs = _runs(api)
        done = [r for r in runs if r["state"] in ("success", "failed")]
        manual = any(r["dag_run_id"] == manual_id for r in done)
        scheduled = any(r["run_type"] == "scheduled" for r in done)
        return runs if manual and scheduled else None

    runs = _wait("the manual and the scheduled run", both_done, 900, every=5, logs=logs)

    # the manual night: retrained, gate passed, promoted; deploy skipped as asked
    manual = next(r for r in runs if r["dag_run_id"] == manual_id)
    tasks = _tasks(api, manual_id)
    states = {t: ti["state"] for t, ti in tasks.items()}
    assert manual["state"] == "success", states
    assert states["register"] == "success" and states["register_rejected"] == "skipped"
    assert states["deploy"] == "skipped" and states["watcher"] == "skipped"
    rec = record(ws, MANUAL_DAY)
    assert rec["outcome"] == "promoted" and rec["gate"]["verdict"] == "pass"
    assert rec["promoted"] == rec["serving"] == champion(ws) == "2"
    history = (ws / "reports" / "registry" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["actor"].startswith(f"airflow:{DAG_ID}/{manual_id}")
    log = _log_text(api, manual_id, "summary", tasks["summary"]["try_number"])
    assert "night summary" in log and "summary.json" in log and "MLflow" in log

    # the scheduled night: created by the scheduler for the latest 02:00, for its own date
    scheduled = next(r for r in runs if r["run_type"] == "scheduled")
    assert scheduled["state"] == "success", _tasks(api, scheduled["dag_run_id"])
    logical = datetime.fromisoformat(scheduled["logical_date"].replace("Z", "+00:00"))
    assert logical <= unpaused_at and (logical.hour, logical.minute) == (2, 0)
    night = logical.date().isoformat()
    assert record(ws, night)["outcome"] == "no_batch"  # nothing landed for that date
    assert len([r for r in runs if r["run_type"] == "scheduled"]) == 1  # catchup is off
