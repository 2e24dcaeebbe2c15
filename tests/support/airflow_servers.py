"""Real Airflow components for the integration tests, shared by the LocalExecutor and the
CeleryExecutor tests.

- ``fresh_database``: a throwaway PostgreSQL database on 127.0.0.1:5432, dropped at the end
  (the test is skipped, not failed, when no server runs here); a copy of a template database
  when one is given (``CREATE DATABASE ... TEMPLATE``: about a second);
- ``migrated_template``: a database ``airflow db migrate`` ran in once per session, which
  every deployment's database is copied from (a migration costs about 20 s);
- ``airflow_deployment``: a workspace copy, an AIRFLOW_HOME, a migrated database and the
  components (api-server, scheduler, dag-processor, plus any workers), each in its own session,
  configured from the environment only, as in a deployment; everything is killed at the end;
- ``use_workspace``: a running deployment switched to another workspace (the Airflow Variable
  ``RETRAIN_PARAMS``, set through the REST API), so test modules share one set of servers.
- ``Api``: the REST API with a JWT from ``/auth/token``; the body the UI posts to trigger a run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.nights import copy_workspace, night_env

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PARAMS_VARIABLE = "RETRAIN_PARAMS"  # the Airflow Variable naming the workspace's params file
DAG_ID = "retrain_nightly"
# the MLflow UI as a user's browser would reach it (RETRAIN_MLFLOW_UI_URL of the session's
# servers, ``local_airflow``): links are built on it, nothing is served there
MLFLOW_UI = "http://mlflow.example:5000"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
SERVERS = (
    ("api-server", ["api-server", "--host", "127.0.0.1"]),
    ("scheduler", ["scheduler"]),
    ("dag-processor", ["dag-processor"]),
)


# --------------------------------------------------------------------------- PostgreSQL
def pg_connect(dbname: str = "postgres") -> Any:
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, connect_timeout=3, **PG)
    conn.autocommit = True
    return conn


def pg_url(database: str, scheme: str = "postgresql+psycopg2") -> str:
    return f"{scheme}://{PG['user']}@{PG['host']}:{PG['port']}/{database}"


@contextmanager
def fresh_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database ``<prefix>_<random>`` (a copy of ``template`` when given), dropped at the
    end (connections terminated)."""
    import importlib.util

    if importlib.util.find_spec("asyncpg") is None:  # Airflow 3 opens async sessions too
        pytest.skip("Airflow on PostgreSQL needs the asyncpg driver (pip install asyncpg)")
    try:
        conn = pg_connect()
    except Exception as err:  # no server on this machine: say so, do not fail
        pytest.skip(f"PostgreSQL not reachable on {PG['host']}:{PG['port']}: {err}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        with conn.cursor() as cur:
            copy = f' TEMPLATE "{template}"' if template else ""
            cur.execute(f'CREATE DATABASE "{name}"{copy}')
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


# --------------------------------------------------------------------------- waiting, logs
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tails(logs: Path, chars: int = 3000) -> str:
    """The last ``chars`` characters of every component's log."""
    return "".join(
        f"\n--- {f.name}\n" + f.read_text(errors="replace")[-chars:]
        for f in sorted(logs.glob("*.log"))
    )


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    every: float = 2.0,
    logs: Path | None = None,
) -> Any:
    """``check()``'s first truthy value; on timeout an AssertionError with the logs' tails."""
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
    tail = log_tails(logs) if logs is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}{tail}")


# --------------------------------------------------------------------------- the REST API
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

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body


def ui_body(conf: dict[str, Any]) -> dict[str, Any]:
    """The body the UI's trigger form posts: the params, logical date and interval left empty."""
    body = {"conf": conf, "data_interval_end": None, "data_interval_start": None}
    body["logical_date"] = None
    return body


def run_path(run_id: str) -> str:
    return f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def dag_runs(api: Api) -> list[dict[str, Any]]:
    return api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=50")["dag_runs"]


def asset_events(api: Api, run_id: str) -> dict[str, dict[str, Any]]:
    """The Asset events a run emitted, by asset name: each one's extra."""
    body = api.get(f"/api/v2/assets/events?source_dag_id={DAG_ID}&limit=100")
    return {e["name"]: e["extra"] for e in body["asset_events"] if e["source_run_id"] == run_id}


def note_parts(note: str) -> tuple[str, str | None]:
    """A run's note: its text, and the night's MLflow link (Markdown, at its end) or None."""
    m = re.fullmatch(r"(.*) \(\[the night in MLflow\]\((\S+)\)\)", note, re.S)
    return (m.group(1), m.group(2)) if m else (note, None)


def extra_links(api: Api, run_id: str, task_id: str) -> dict[str, str | None]:
    """A task's buttons as the UI gets them (operator extra links): {name: address or None}."""
    return dict(api.get(f"{run_path(run_id)}/taskInstances/{task_id}/links")["extra_links"])


def task_instances(api: Api, run_id: str) -> dict[str, dict[str, Any]]:
    body = api.get(f"{run_path(run_id)}/taskInstances")
    return {t["task_id"]: t for t in body["task_instances"]}


def task_tries(api: Api, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """Every try of a task instance (the current one included), oldest first."""
    body = api.get(f"{run_path(run_id)}/taskInstances/{task_id}/tries")
    return sorted(body["task_instances"], key=lambda t: t["try_number"])


def log_text(api: Api, run_id: str, task_id: str, try_number: int) -> str:
    path = f"{run_path(run_id)}/taskInstances/{task_id}/logs/{try_number}"
    return json.dumps(api.get(path + "?full_content=true"))


def wait_dag_loaded(api: Api, logs: Path) -> None:
    """The dag-processor parsed the DAG file, with no import error."""
    wait_for(
        "the DAG to be parsed",
        lambda: api.call("GET", f"/api/v2/dags/{DAG_ID}")[0] == 200,
        180,
        logs=logs,
    )
    errors = api.get("/api/v2/importErrors")
    assert errors["total_entries"] == 0, errors


# --------------------------------------------------------------------------- processes
def session_pids(sid: int) -> list[int]:
    """Every live process of a session (a task process has a process group of its own);
    zombies are dead already and left out."""
    import psutil

    pids = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                pids.append(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return pids


def kill_session(sid: int, sig: int = signal.SIGKILL) -> list[int]:
    pids = session_pids(sid)
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


@dataclass
class Deployment:
    """Running components, by name; each one the leader of its own session."""

    api: Api
    ws: Path
    home: Path
    logs: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str], **env: str) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "w")  # noqa: SIM115  (closed in stop())
        self.procs[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env={**self.env, **env},
            cwd=self.home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: stopped as a whole, task processes too
        )
        return self.procs[name]

    def kill(self, name: str) -> list[int]:
        """kill -9 every process of the component's session, as a machine failure would;
        returns once none is left alive."""
        sid = self.procs[name].pid
        pids = kill_session(sid)
        self.procs[name].wait(timeout=30)
        wait_for(f"{name}'s processes to die", lambda: not session_pids(sid), 10, every=0.2)
        return pids

    def stop(self) -> None:
        """SIGTERM to each process group, then SIGKILL to whatever is left of each session."""
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        started = time.monotonic()
        for name, p in self.procs.items():
            try:
                p.wait(timeout=max(1.0, started + 60 - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} still running {time.monotonic() - started:.0f}s after SIGTERM")
        for p in self.procs.values():
            kill_session(p.pid)
            if p.poll() is None:
                p.wait(timeout=30)
            if p.stdout is not None:
                p.stdout.close()

    @contextmanager
    def report_on_failure(self) -> Iterator[None]:
        """On any failure inside, print the tail of each component's log."""
        try:
            yield
        except BaseException:
            print(f"\n===== component logs ({self.logs})" + log_tails(self.logs, 6000))
            tasks = sorted((self.home / "logs").glob("dag_id=*/**/*.log"), key=os.path.getmtime)
            failed = [f for f in tasks if '"level":"error"' in f.read_text(errors="replace")]
            shown = list(dict.fromkeys([*failed[-3:], *tasks[-3:]]))  # failed, and the last
            for f in shown:
                print(f"\n--- {f.relative_to(self.home)}\n" + f.read_text(errors="replace")[-4000:])
            raise


def deployment_env(
    home: Path, ws: Path, database: str, port: int, variable_in_env: bool = True
) -> dict[str, str]:
    """Everything the components share: settings from the environment only (the workspace
    too, as ``AIRFLOW_VAR_RETRAIN_PARAMS``, unless ``variable_in_env`` is False: then it is a
    Variable in the metastore, which :func:`use_workspace` can switch)."""
    env = night_env(home, ws)
    del env["RETRAIN_PARAMS"]  # the workspace comes from an Airflow Variable instead
    if variable_in_env:
        env["AIRFLOW_VAR_RETRAIN_PARAMS"] = str(ws / "params.yaml")
    else:  # the workspace can change: its params name its own registry (relative SQLite)
        del env["MLFLOW_TRACKING_URI"]
    env.update(
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=pg_url(database),
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),  # not 8793: may be taken
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
    )
    return env


def migrate(env: dict[str, str], home: Path) -> None:
    """``airflow db migrate`` against the database ``env`` names."""
    proc = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, cwd=home, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@contextmanager
def migrated_template(root: Path) -> Iterator[str]:
    """A database with Airflow's schema, migrated once: deployments copy it
    (``fresh_database(prefix, template=...)``) instead of migrating their own."""
    with fresh_database("airflow_template") as name:
        home = root / "home"
        home.mkdir(parents=True)
        migrate(
            {**night_env(home, home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(name)}, home
        )
        yield name


@contextmanager
def airflow_deployment(
    root: Path,
    base_ws: Path,
    database: str,
    settings: dict[str, str],
    workers: dict[str, tuple[list[str], dict[str, str]]] | None = None,
    migrated: bool = False,
    variable_in_env: bool = True,
) -> Iterator[Deployment]:
    """A copy of ``base_ws``, ``airflow db migrate`` (unless the database is a copy of a
    ``migrated_template``), then api-server, scheduler, dag-processor and ``workers`` ({name:
    (airflow args, extra env)}) with ``settings`` on top of the shared environment; yields once
    the api-server and the scheduler are healthy and logged in to (and, with the workspace a
    Variable in the metastore, once that is set)."""
    ws = copy_workspace(base_ws, root / "project")
    home, logs = root / "airflow_home", root / "logs"
    home.mkdir()
    logs.mkdir()
    port, password = free_port(), secrets.token_urlsafe(12)
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    env = {**deployment_env(home, ws, database, port, variable_in_env), **settings}
    # the user the night puts its run's note as (the Task SDK has no call for a note)
    env["AIRFLOW_CONN_RETRAIN_AIRFLOW_API"] = f"http://admin:{password}@127.0.0.1:{port}"
    if not migrated:
        migrate(env, home)

    dep = Deployment(Api(f"http://127.0.0.1:{port}"), ws, home, logs, env)
    try:
        with dep.report_on_failure():
            for name, args in SERVERS:
                dep.start(name, args + (["--port", str(port)] if name == "api-server" else []))
            for name, (args, extra) in (workers or {}).items():
                dep.start(name, args, **extra)

            def healthy() -> bool:
                status, body = dep.api.call("GET", "/api/v2/monitor/health")
                return status == 200 and body["scheduler"]["status"] == "healthy"

            wait_for("api-server and scheduler health", healthy, 180, logs=logs)
            dep.api.login("admin", password)
            if not variable_in_env:
                set_variable(dep.api, PARAMS_VARIABLE, str(ws / "params.yaml"))
            yield dep
    finally:
        dep.stop()


def set_variable(api: Api, key: str, value: str) -> None:
    """An Airflow Variable in the metastore, created or replaced through the REST API."""
    status, body = api.call("PATCH", f"/api/v2/variables/{key}", {"key": key, "value": value})
    if status == 404:
        status, body = api.call("POST", "/api/v2/variables", {"key": key, "value": value})
    assert status in (200, 201), (status, body)


def use_workspace(dep: Deployment, base_ws: Path, dest: Path) -> Deployment:
    """The running deployment on a private copy of ``base_ws``: the tasks read the workspace
    from the Variable, which is switched to the copy (the runs before were all finished)."""
    ws = copy_workspace(base_ws, dest)
    set_variable(dep.api, PARAMS_VARIABLE, str(ws / "params.yaml"))
    return dataclasses.replace(dep, ws=ws)


# --------------------------------------------------------------------------- runs, HITL answers
def trigger(api: Api, conf: dict[str, Any]) -> str:
    """A run with the form's values, posted as the UI posts them; its run id."""
    status, run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", ui_body(conf))
    assert status == 200, (status, run)
    return str(run["dag_run_id"])


def wait_run_done(api: Api, run_id: str, timeout: float, logs: Path) -> dict[str, Any]:
    """The run, once it succeeded or failed."""

    def done() -> dict[str, Any] | None:
        run = api.get(run_path(run_id))
        return run if run["state"] in ("success", "failed") else None

    return wait_for(f"run {run_id} to finish", done, timeout, every=3, logs=logs)


def wait_task_state(
    api: Api, run_id: str, task_id: str, state: str, timeout: float, logs: Path
) -> dict[str, Any]:
    """The task instance, once it is in ``state``; fails early when its run ended first."""

    def reached() -> dict[str, Any] | None:
        ti = task_instances(api, run_id).get(task_id) or {}
        if ti.get("state") == state:
            return ti
        run = api.get(run_path(run_id))
        assert run["state"] not in ("success", "failed"), (
            f"run {run_id} ended {run['state']} before {task_id} was {state}: "
            f"{ {t: x['state'] for t, x in task_instances(api, run_id).items()} }"
        )
        return None

    return wait_for(f"{task_id} to be {state}", reached, timeout, every=3, logs=logs)


def wait_deferral_settled(run_id: str, task_id: str, timeout: float, logs: Path) -> None:
    """Wait until the scheduler has taken in the end of the worker process that put
    ``task_id`` in ``awaiting_input``. Answered before that (a fraction of a second after the
    request appears, which a script can do and a person cannot), the answer re-queues the task
    and the scheduler then reads the old process's exit as a state changed externally and
    fails it (seen with Airflow 3.3's LocalExecutor)."""
    needle = f"TaskInstance Finished: dag_id={DAG_ID}, task_id={task_id}, run_id={run_id},"

    def settled() -> bool:
        text = (logs / "scheduler.log").read_text(errors="replace")
        return any(needle in line and "state=awaiting_input" in line for line in text.splitlines())

    wait_for(f"the scheduler to see {task_id} wait for input", settled, timeout, every=1, logs=logs)


def hitl_path(run_id: str, task_id: str, map_index: int = -1) -> str:
    """A Human-in-the-loop task's request and answer (GET) / where to answer it (PATCH)."""
    return f"{run_path(run_id)}/taskInstances/{task_id}/{map_index}/hitlDetails"


def answer_hitl(
    api: Api, run_id: str, task_id: str, option: str, params_input: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """Answer a waiting Human-in-the-loop task as the UI's *Required actions* page does."""
    body = {"chosen_options": [option], "params_input": params_input or {}}
    return api.call("PATCH", hitl_path(run_id, task_id), body)
