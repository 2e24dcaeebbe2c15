"""The container stack for real: `make stack` (docker-compose.yml on podman or docker), every
health endpoint, the logins, `retrain run` and a night through Airflow's REST API against the
MLflow server, the new champion served behind nginx with the token, then `make stack-down`.

Throwaway state: its own compose project (``retrain-test-<random>``: containers, network and
volumes of its own, removed at the end) on free host ports, so a stack someone runs from this
checkout is left alone. The images are the machine's: built by the first run, then taken from
the engine's layer cache (a fresh machine builds them: about 6 minutes on 2 cores). The secrets
are the checkout's .env (written by `make stack` when absent, git-ignored).

Run by `make test-stack` (RETRAIN_TEST_STACK=1). `make test` skips it, with the reason: on 2
cores the whole suite with the stack came to about 90 minutes, CI's limit (the stack part alone
15-24 minutes). Skipped, with the reason, also without podman + podman-compose
(scripts/install-podman.sh) or a docker daemon, or without the Adult files beside the repository.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("RETRAIN_TEST_STACK") != "1",
        reason="the container stack runs with `make test-stack` (RETRAIN_TEST_STACK=1)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "retrain_nightly"
NIGHT = "2026-04-01"  # a stable batch with a forced retrain: the challenger is promoted
WORKERS = ("airflow-worker-1", "airflow-worker-2")
MODEL = "adult-income"


def _engine() -> str:
    if shutil.which("podman"):
        if shutil.which("podman-compose") is None:
            pytest.skip("podman-compose not installed (scripts/install-podman.sh installs it)")
        return "podman"
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        return "docker"
    pytest.skip("no container engine: podman (scripts/install-podman.sh) or a docker daemon")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dotenv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip().strip("\"'")
    return out


@dataclass
class Stack:
    engine: str
    project: str
    env: dict[str, str]  # the environment `make stack` ran with
    secrets: dict[str, str]  # .env
    airflow: str
    mlflow: str
    serving: str
    prometheus: str
    up_seconds: float

    def container(self, service: str) -> str:
        filters = []
        for label in (f"project={self.project}", f"service={service}"):
            filters += ["--filter", f"label=com.docker.compose.{label}"]
        out = subprocess.run(
            [self.engine, "ps", "-q", *filters], capture_output=True, text=True, check=True
        ).stdout.split()
        assert out, f"no running container for {service}"
        return out[0]

    def exec(
        self, service: str, *cmd: str, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.engine, "exec", self.container(service), *cmd],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def _make(target: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    engine = _engine()
    datasets = ROOT.parent / "shared" / "datasets"
    if not (datasets / "adult" / "adult.data").is_file():
        pytest.skip(f"the Adult files are not in {datasets}/adult (the stack mounts them)")
    project = f"retrain-test-{secrets.token_hex(3)}"
    names = ("AIRFLOW_PORT", "MLFLOW_PORT", "SERVING_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT")
    ports = {k: str(_free_port()) for k in names}
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, **ports, "CONTAINER_ENGINE": engine}
    t0 = time.monotonic()
    try:
        up = _make("stack", env, timeout=2400)  # a fresh machine builds every image first
        assert up.returncode == 0, f"make stack failed:\n{up.stdout[-3000:]}\n{up.stderr[-5000:]}"
        yield Stack(
            engine, project, env, _dotenv(ROOT / ".env"),
            airflow=f"http://127.0.0.1:{ports['AIRFLOW_PORT']}",
            mlflow=f"http://127.0.0.1:{ports['MLFLOW_PORT']}",
            serving=f"http://127.0.0.1:{ports['SERVING_PORT']}",
            prometheus=f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}",
            up_seconds=time.monotonic() - t0,
        )  # fmt: skip
    finally:
        down = _make("stack-down", env, timeout=600)
        label = f"label=com.docker.compose.project={project}"
        volumes = subprocess.run(
            [engine, "volume", "ls", "-q", "--filter", label], capture_output=True, text=True
        ).stdout.split()
        if volumes:  # kept by stack-down (as for a user); this project's are throwaway
            subprocess.run([engine, "volume", "rm", *volumes], capture_output=True)
        subprocess.run([engine, "network", "rm", f"{project}_default"], capture_output=True)
    assert down.returncode == 0, down.stderr[-3000:]


# --------------------------------------------------------------------------- HTTP
def _request(
    url: str,
    body: Any = None,
    method: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _airflow_token(stack: Stack) -> str:
    status, body = _request(
        stack.airflow + "/auth/token",
        {"username": "admin", "password": stack.secrets["AIRFLOW_ADMIN_PASSWORD"]},
    )
    assert status in (200, 201), body
    return str(body["access_token"])


def _wait(what: str, check: Any, timeout: float, every: float = 3) -> Any:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")


def _records(stack: Stack, n: int = 5) -> list[dict[str, Any]]:
    """A few evaluation rows, without the label, as the serving app takes them."""
    script = (
        "import json, pandas as pd; from pipelines.config import load_params; "
        "p = load_params('params.yaml'); "
        f"df = pd.read_parquet(p.paths.window_eval).head({n}).drop(columns=[p.dataset.target]); "
        "print(df.to_json(orient='records'))"
    )
    proc = stack.exec(WORKERS[0], "python", "-c", script, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def _served_version(stack: Stack) -> str | None:
    status, body = _request(stack.serving + "/ready")
    return str(body.get("model_version")) if status == 200 and isinstance(body, dict) else None


def _champion(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    """The champion, asked from this machine as a client of the MLflow server (basic auth)."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", stack.secrets["MLFLOW_ADMIN_PASSWORD"])
    client = MlflowClient(tracking_uri=stack.mlflow, registry_uri=stack.mlflow)
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


# --------------------------------------------------------------------------- the tests
def test_every_service_is_healthy(stack: Stack) -> None:
    status, health = _request(stack.airflow + "/api/v2/monitor/health")
    assert status == 200, health
    for component in ("metadatabase", "scheduler", "dag_processor", "triggerer"):
        assert health[component]["status"] == "healthy", health
    assert _request(stack.mlflow + "/health")[0] == 200
    assert _request(stack.serving + "/health")[0] == 200  # through nginx
    assert stack.exec("postgres", "pg_isready", "-h", "127.0.0.1", "-U", "retrain").returncode == 0
    redis = subprocess.run(
        [stack.engine, "exec", "-e", f"REDISCLI_AUTH={stack.secrets['REDIS_PASSWORD']}",
         stack.container("redis"), "redis-cli", "ping"], capture_output=True, text=True,
    )  # fmt: skip
    assert redis.stdout.strip() == "PONG"
    for worker in WORKERS:
        assert stack.container(worker)
    print(f"\nmake stack: healthy after {stack.up_seconds:.0f}s")


def test_requests_without_credentials_are_refused(stack: Stack) -> None:
    # Airflow: REST without a token, a token for a wrong password
    assert _request(stack.airflow + f"/api/v2/dags/{DAG_ID}")[0] == 401
    wrong = {"username": "admin", "password": "not-" + stack.secrets["AIRFLOW_ADMIN_PASSWORD"]}
    assert _request(stack.airflow + "/auth/token", wrong)[0] == 401
    assert _request(stack.airflow + "/auth/token", {"username": "admin", "password": "admin"})[
        0
    ] == 401  # fmt: skip
    token = _airflow_token(stack)
    assert _request(stack.airflow + f"/api/v2/dags/{DAG_ID}", headers=_bearer(token))[0] == 200
    # MLflow: no credentials, wrong password, right one
    search = stack.mlflow + "/api/2.0/mlflow/experiments/search?max_results=1"
    password = stack.secrets["MLFLOW_ADMIN_PASSWORD"]
    assert _request(search)[0] == 401
    assert _request(search, headers=_basic("admin", "not-" + password))[0] == 401
    assert _request(search, headers=_basic("admin", password))[0] == 200
    # serving: /predict needs the bearer token; the probes stay open
    predict = stack.serving + "/predict"
    assert _request(predict, {"records": []})[0] == 401
    assert _request(predict, {"records": []}, headers=_bearer("wrong-token-1234567890"))[0] == 401
    assert _request(stack.serving + "/health")[0] == 200


def test_the_workspace_lock_holds_across_workers(stack: Stack) -> None:
    """A night holding the workspace on one worker refuses a second one on the other: the lock is
    a file lock on the shared volume, not a process-local one."""
    hold = (
        "import time; from pipelines.config import load_params; "
        "from pipelines.lock import night_lock; "
        "p = load_params('params.yaml'); "
        "cm = night_lock(p, timeout=0); cm.__enter__(); print('held', flush=True); time.sleep(20)"
    )
    holder = subprocess.Popen(
        [stack.engine, "exec", stack.container(WORKERS[0]), "python", "-c", hold],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        try_it = (
            "from pipelines.config import load_params; from pipelines.lock import "
            "night_lock, NightBusyError\n"
            "try:\n    night_lock(load_params('params.yaml'), timeout=0).__enter__()\n"
            "except NightBusyError as e:\n    print(e); raise SystemExit(3)\n"
        )
        other = stack.exec(WORKERS[1], "python", "-c", try_it, timeout=120)
        assert other.returncode == 3, other.stdout + other.stderr
        assert WORKERS[0] in other.stdout  # the message names the holder's host
    finally:
        holder.wait(timeout=120)


def test_retrain_run_against_the_mlflow_server(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = time.monotonic()
    proc = stack.exec(WORKERS[0], "retrain", "run", timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "gate       : PASS" in proc.stdout, proc.stdout[-2000:]
    assert _champion(stack, monkeypatch) == "1"
    assert _wait("v1 served behind nginx", lambda: _served_version(stack) == "1", 120)
    status, body = _request(
        stack.serving + "/predict", {"records": _records(stack)},
        headers=_bearer(stack.secrets["RETRAIN_SERVE_TOKEN"]),
    )  # fmt: skip
    assert status == 200, body
    assert str(body["model_version"]) == "1" and len(body["probabilities"]) == 5
    print(f"\nretrain run: {time.monotonic() - t0:.0f}s")


def test_a_night_through_the_rest_api_is_promoted_and_served(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = stack.exec(WORKERS[0], "retrain", "simulate", "--date", NIGHT, "--scenario", "stable")
    assert proc.returncode == 0, proc.stderr[-2000:]
    token = _airflow_token(stack)
    auth = _bearer(token)
    api = stack.airflow + f"/api/v2/dags/{DAG_ID}"
    status, dag = _request(api, {"is_paused": False}, method="PATCH", headers=auth)
    assert status == 200 and dag["is_paused"] is False, dag
    assert dag["max_active_runs"] == 1  # two nights never run at once
    form = {"date": NIGHT, "batch": None, "force_retrain": True, "skip_deploy": False}
    status, run = _request(api + "/dagRuns", {"logical_date": None, "conf": form}, headers=auth)
    assert status == 200, run
    run_id = run["dag_run_id"]
    t0 = time.monotonic()

    def finished() -> dict[str, Any] | None:
        _, r = _request(f"{api}/dagRuns/{run_id}", headers=_bearer(_airflow_token(stack)))
        return r if r.get("state") in ("success", "failed") else None

    run = _wait(f"night {NIGHT}", finished, timeout=1500, every=10)
    seconds = time.monotonic() - t0
    _, tis = _request(
        f"{api}/dagRuns/{run_id}/taskInstances", headers=_bearer(_airflow_token(stack))
    )
    states = {ti["task_id"]: ti["state"] for ti in tis["task_instances"]}
    hosts = {ti["hostname"] for ti in tis["task_instances"] if ti["state"] == "success"}
    assert run["state"] == "success", states
    assert states["register"] == "success" and states["deploy"] == "success", states
    assert hosts <= set(WORKERS), hosts  # every task ran on one of the Celery workers

    record = json.loads(
        stack.exec(WORKERS[0], "cat", f"reports/nights/{NIGHT}/summary.json").stdout
    )
    assert record["outcome"] == "promoted", record
    assert _champion(stack, monkeypatch) == str(record["promoted"]) == "2"
    # the new champion, behind nginx, with the token
    assert _wait("v2 served behind nginx", lambda: _served_version(stack) == "2", 120)
    status, body = _request(
        stack.serving + "/predict", {"records": _records(stack)},
        headers=_bearer(stack.secrets["RETRAIN_SERVE_TOKEN"]),
    )  # fmt: skip
    assert status == 200 and str(body["model_version"]) == "2", body
    print(f"\nnight {NIGHT} over REST: {seconds:.0f}s on {sorted(hosts)}")


def test_answers_and_outcomes_reach_postgres_and_the_monitor_reaches_prometheus(
    stack: Stack,
) -> None:
    """The live loop's plumbing in the stack: serving logs to PostgreSQL, outcomes come back
    through nginx, the monitor reads both and pushes its verdict, Prometheus scrapes it all
    (serving, the Pushgateway, MLflow)."""
    token = _bearer(stack.secrets["RETRAIN_SERVE_TOKEN"])
    records = _records(stack, 8)
    rid = f"stack-{secrets.token_hex(4)}"
    req = urllib.request.Request(
        stack.serving + "/predict", json.dumps(records).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-Request-ID": rid, **token},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.loads(r.read())
        assert r.headers["X-Request-ID"] == rid and body["request_id"] == rid
    outcomes = [
        {"request_id": rid, "row": i, "label": ">50K" if i % 2 else "<=50K"} for i in range(8)
    ]
    status, _ = _request(stack.serving + "/feedback", {"outcomes": outcomes})
    assert status == 401  # outcomes need a token too: their own, not the serving one
    status, _ = _request(stack.serving + "/feedback", {"outcomes": outcomes}, headers=token)
    assert status == 401
    feedback = _bearer(stack.secrets["RETRAIN_FEEDBACK_TOKEN"])
    status, ack = _request(stack.serving + "/feedback", {"outcomes": outcomes}, headers=feedback)
    assert status == 202 and ack == {"accepted": 8}, ack
    script = (
        "from pipelines.config import load_params; "
        "from pipelines.predlog import readers as predlog; "
        "p = load_params('params.yaml'); j = predlog.joined(p); "
        f"print(p.prediction_log.split('@')[-1], int((j.request_id == {rid!r}).sum()))"
    )

    def joined() -> str | None:
        out = stack.exec(WORKERS[1], "python", "-c", script, timeout=120).stdout.split()
        return " ".join(out[-2:]) if out and out[-1] == "8" else None

    where = _wait("8 joined rows in PostgreSQL", joined, timeout=60)
    assert where.startswith("postgres:5432/retrain"), where
    mon = stack.exec(WORKERS[0], "retrain", "monitor", "--no-land", timeout=600)
    assert mon.returncode == 0, mon.stdout[-2000:] + mon.stderr[-2000:]
    assert "pushgateway pushgateway:9091" in mon.stdout, mon.stdout

    def query(expr: str) -> list[Any]:
        q = urllib.parse.urlencode({"query": expr})
        _, res = _request(f"{stack.prometheus}/api/v1/query?{q}")
        return list(res.get("data", {}).get("result", [])) if isinstance(res, dict) else []

    _wait(
        "the monitor's verdict in Prometheus", lambda: query("retrain_live_labelled_rows >= 8"), 90
    )
    _wait("serving scraped", lambda: query('up{job="serving"} == 1'), 90)
    # MLflow's own /metrics (--expose-prometheus), behind its basic auth: the password file
    _wait("mlflow scraped", lambda: query('up{job="mlflow"} == 1'), 90)
    assert query('mlflow_http_request_duration_seconds_count{job="mlflow"}')
    assert query('retrain_champion_version{job="retrain_monitor"}')
