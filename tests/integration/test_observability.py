"""Monitoring for real: Debian's Prometheus and Pushgateway run the repository's files against a
real serving process, real traffic and a real push of the monitor job's metrics.

* promtool checks docker/prometheus/prometheus.yml and alerts.yml;
* a Prometheus (free port, throwaway storage) runs docker/prometheus/prometheus.yml with only the
  targets' addresses swapped for local ones and 1 s scrape/evaluation intervals: the serving app
  (`retrain serve` of a real model in a throwaway registry), a Pushgateway, Prometheus itself,
  and MLflow's server with the basic-auth app and --expose-prometheus, as the stack runs it
  (requirements.lock pins its Flask-WTF and prometheus-flask-exporter);
* traffic: one-record POST /predict, half of them records the schema refuses (422); the monitor
  job's metrics for one pass with every part present, written and pushed by its own code
  (pipelines.monitor.metrics.publish, job="retrain_monitor");
* through Prometheus' HTTP API: every target up, every rule of alerts.yml loaded and evaluated
  without error, every expression of the Grafana dashboard returning data (Grafana's variables
  replaced), and the error-rate alert pending or firing with its annotations rendered.

Not run here: Grafana (not installable on this machine: neither Debian nor PyPI/npm has it) and
the StatsD exporter for Airflow (not in Debian; no image registry): their jobs are left out of
the generated config. Debian's packages are installed by scripts/install-observability.sh when
missing (root or sudo), else the module is skipped with the reason.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.observability import (
    ALERTS_YML,
    DASHBOARD,
    PROMETHEUS_YML,
    alert_rules,
    dashboard_expressions,
    monitor_registry,
    substitute,
    template_queries,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOOLS = ("prometheus", "promtool", "prometheus-pushgateway")
INTERVAL = "1s"  # scrape and rule evaluation, instead of 15 s


# --------------------------------------------------------------------------- tools and helpers
@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """Debian's prometheus, promtool and pushgateway; installed when missing."""
    if not all(shutil.which(t) for t in TOOLS) and (os.geteuid() == 0 or shutil.which("sudo")):
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-observability.sh")],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.skip(f"scripts/install-observability.sh failed: {proc.stderr.strip()[-300:]}")
    found = {t: shutil.which(t) for t in TOOLS}
    missing = [t for t, path in found.items() if path is None]
    if missing:
        pytest.skip(f"{missing} missing: run scripts/install-observability.sh (root or sudo)")
    return {t: str(path) for t, path in found.items()}


def _free_port() -> int:
    from pipelines.release import deploy

    return deploy._free_port()


def _get(url: str, timeout: float = 5, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as err:  # not listening yet
            last = repr(err)
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Processes:
    """Servers started by this module, stopped (and their logs shown on failure) at the end."""

    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.procs[name] = proc
        return proc

    def log(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def alive(self, name: str) -> bool:
        if self.procs[name].poll() is not None:
            raise AssertionError(f"{name} exited:\n{self.log(name)}")
        return True

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Traffic(threading.Thread):
    """One-record POST /predict back to back: every other one a record the schema refuses."""

    def __init__(self, address: str, record: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.bodies = [json.dumps(record), json.dumps({"age": 1})]  # the second: 422
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        conn, i = None, 0
        while not self._halt.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request(
                    "POST", "/predict", self.bodies[i % 2], {"Content-Type": "application/json"}
                )
                r = conn.getresponse()
                r.read()
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
            except Exception as err:  # noqa: BLE001 - every failure counts
                self.failures.append(f"{type(err).__name__}: {err}")
                conn = None
            i += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(15)


# --------------------------------------------------------------------------- the servers
@dataclass
class Observed:
    prometheus: str  # base URL
    serving: str  # host:port
    pushgateway: str  # host:port
    mlflow: str  # host:port
    traffic: Traffic
    procs: Processes

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = self.prometheus + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = _get(url)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{expr}: {answer}"
        return list(answer["data"]["result"])

    def api(self, path: str) -> Any:
        status, body = _get(self.prometheus + path)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", f"{path}: {answer}"
        return answer["data"]


def _serving_model(root: Path, adult_reference: Any, adult_current: Any) -> Any:
    """A real model, registered and champion, in a throwaway SQLite registry under ``root``."""
    from tests.support.registry import registry_params

    params = registry_params(
        root, adult_reference.sample(4000, random_state=1), [{"max_iter": 30}],
        "observability-test",
    )  # fmt: skip
    adult_current.head(200).to_parquet(params.paths.window_eval)
    return params


def _start_mlflow(procs: Processes, tmp: Path, password: str) -> str:
    """MLflow's server as the stack runs it (basic-auth app), with --expose-prometheus."""
    ini = (ROOT / "docker" / "mlflow-basic-auth.ini").read_text()
    ini = "\n".join(
        f"database_uri = sqlite:///{tmp / 'basic_auth.db'}"
        if line.startswith("database_uri")
        else line
        for line in ini.splitlines()
    )
    (tmp / "basic-auth.ini").write_text(ini + "\n")
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp / "basic-auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(16),
    }
    procs.start(
        "mlflow",
        [str(BIN / "mlflow"), "server", "--app-name", "basic-auth", "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp / 'mlflow-server.db'}",
         "--host", "127.0.0.1", "--port", str(port),
         "--expose-prometheus", str(tmp / "mlflow-prometheus")],
        cwd=tmp, env=env,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    _wait(
        "mlflow /health",
        lambda: procs.alive("mlflow") and _get(f"http://{address}/health")[0] == 200,
        120,
    )
    return address


def prometheus_config(
    targets: dict[str, str], mlflow_password_file: Path | None
) -> tuple[dict[str, Any], list[str]]:
    """docker/prometheus/prometheus.yml with local addresses (job -> host:port) and 1 s intervals;
    the jobs without an address are left out (returned, for the report)."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(
        scrape_interval=INTERVAL, scrape_timeout=INTERVAL, evaluation_interval=INTERVAL
    )
    config["rule_files"] = [str(PROMETHEUS_YML.parent / f) for f in config["rule_files"]]
    kept, dropped = [], []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name not in targets:
            dropped.append(name)
            continue
        job.pop("dns_sd_configs", None)  # the replicas' name: one local server here
        job["static_configs"] = [{"targets": [targets[name]]}]
        if "basic_auth" in job and mlflow_password_file is not None:
            job["basic_auth"]["password_file"] = str(mlflow_password_file)
        kept.append(job)
    config["scrape_configs"] = kept
    return config, dropped


@pytest.fixture(scope="module")
def observed(tools, tmp_path_factory, adult_reference, adult_current) -> Iterator[Observed]:
    from pipelines.monitor.metrics import publish
    from pipelines.release import deploy
    from pipelines.serve.app import smoke_records

    tmp = tmp_path_factory.mktemp("observability")
    procs = Processes(tmp)
    traffic: Traffic | None = None
    t0 = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        mp.delenv("RETRAIN_SERVE_TOKEN", raising=False)
        try:
            params = _serving_model(tmp, adult_reference, adult_current)
            serving = f"127.0.0.1:{_free_port()}"
            procs.start(
                "serving",
                [sys.executable, "-m", "pipelines.cli", "serve", "--host", "127.0.0.1",
                 "--port", serving.rsplit(":", 1)[1], "--poll", "1",
                 "--params", str(params.root / "params.yaml")],
                cwd=params.root, env={**os.environ},
            )  # fmt: skip
            ok, detail = deploy.wait_ready(f"http://{serving}", 120, "1")
            assert ok, detail + procs.log("serving")

            pushgateway = f"127.0.0.1:{_free_port()}"
            procs.start(
                "pushgateway",
                [tools["prometheus-pushgateway"], f"--web.listen-address={pushgateway}",
                 f"--persistence.file={tmp / 'pushgateway.store'}"],
            )  # fmt: skip
            _wait("pushgateway /-/ready", lambda: procs.alive("pushgateway")
                  and _get(f"http://{pushgateway}/-/ready")[0] == 200, 30)  # fmt: skip

            password = secrets.token_urlsafe(16)
            mlflow = _start_mlflow(procs, tmp, password)
            # what docker/prometheus/entrypoint.sh writes in the image
            password_file = tmp / "mlflow-password"
            password_file.write_text(password)
            password_file.chmod(0o600)

            port = _free_port()
            targets = {
                "serving": serving,
                "pushgateway": pushgateway,
                "prometheus": f"127.0.0.1:{port}",
                "mlflow": mlflow,
            }
            config, dropped = prometheus_config(targets, password_file)
            (tmp / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
            procs.start(
                "prometheus",
                [tools["prometheus"], f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                 "--web.enable-lifecycle"],
            )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            _wait("prometheus /-/ready", lambda: procs.alive("prometheus")
                  and _get(base + "/-/ready")[0] == 200, 60)  # fmt: skip

            # what the monitor job does at the end of a pass: its text file, then the push
            where = publish(monitor_registry(), tmp / "monitor.prom", pushgateway)
            assert len(where) == 2, where
            record = smoke_records(params, 1)
            assert record, "no smoke records"
            traffic = Traffic(serving, record[0])
            traffic.start()
            up_s = time.monotonic() - t0
            print(f"\nobservability servers up in {up_s:.0f}s (jobs left out: {dropped})")
            yield Observed(base, serving, pushgateway, mlflow, traffic, procs)
        finally:
            if traffic is not None:
                traffic.stop()
            procs.stop()


# --------------------------------------------------------------------------- the tests
def test_promtool_checks_the_repository_files(tools) -> None:
    for args in (["check", "config", str(PROMETHEUS_YML)], ["check", "rules", str(ALERTS_YML)]):
        proc = subprocess.run(
            [tools["promtool"], *args], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "SUCCESS" in proc.stdout + proc.stderr


def test_every_target_is_scraped(observed: Observed) -> None:
    def all_up() -> Any:
        active = observed.api("/api/v1/targets?state=active")["activeTargets"]
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in active}
        return health if all(h == "up" for h, _ in health.values()) and len(health) >= 3 else None

    health = _wait("every target up", all_up, 30)
    assert {"serving", "pushgateway", "prometheus"} <= set(health), health


def test_alert_rules_load_and_evaluate(observed: Observed) -> None:
    want = {r["alert"] for r in alert_rules(yaml.safe_load(ALERTS_YML.read_text()))}

    def evaluated() -> Any:
        groups = observed.api("/api/v1/rules?type=alert")["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        done = set(rules) == want and all(
            r.get("lastEvaluation", "0001").startswith("20") for r in rules.values()
        )
        return rules if done else None

    rules = _wait("every rule evaluated", evaluated, 30)
    for name, rule in rules.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"
        assert rule["type"] == "alerting"


def test_every_dashboard_panel_gets_data(observed: Observed) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = list(dashboard_expressions(dashboard))
    empty: dict[str, str] = {}

    def all_answer() -> bool:
        empty.clear()
        for title, expr in panels:
            if not observed.query(substitute(expr)):
                empty[title] = substitute(expr)
        return not empty

    try:
        _wait("every panel's expression to return data", all_answer, 60, every=2)
    except AssertionError:
        raise AssertionError(f"panels without data: {json.dumps(empty, indent=1)}") from None
    for name, metric, label in template_queries(dashboard):
        values = observed.api(
            f"/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric})
        )
        assert values == ["1"], f"variable {name}: {values}"
    print(f"\n{len(panels)} panel expressions answered")


def test_panels_show_what_happened(observed: Observed) -> None:
    """The numbers behind the panels are the traffic sent and the monitor pass pushed."""
    from pipelines.monitor.metrics import JOB

    dashboard = json.loads(DASHBOARD.read_text())
    by_title: dict[str, list[str]] = {}
    for title, expr in dashboard_expressions(dashboard):
        by_title.setdefault(title, []).append(substitute(expr))

    def value(expr: str) -> dict[str, float]:
        return {
            json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
            for r in observed.query(expr)
        }

    error_share = _wait("an error share", lambda: value(by_title["Error rate"][0]), 30)
    assert 0.3 < next(iter(error_share.values())) < 0.7, error_share  # every other request is a 422
    assert list(value(by_title["Error rate"][1]).values()) == [0.0]  # no 5xx
    kinds = value(by_title["Errors/s by kind"][0])
    assert any('"kind": "missing_field"' in k for k in kinds), kinds
    outcome = observed.query(by_title["Last night's outcome"][0])
    assert [r["metric"]["outcome"] for r in outcome] == ["promoted"]
    drifted = observed.query(by_title["Drifted columns"][0])
    assert [r["metric"]["column"] for r in drifted] == ["age"]
    assert list(value(by_title["Champion version over time"][0]).values()) == [3.0]
    served = observed.query(by_title["Model being served"][0])
    assert [r["metric"]["version"] for r in served] == ["1"]
    for r in observed.query("retrain_live_rows"):  # pushed labels kept (honor_labels)
        assert r["metric"]["job"] == JOB


def test_bad_requests_set_off_the_error_rate_alert(observed: Observed) -> None:
    """Half the requests are refused: RetrainServingErrorRate goes pending (then firing after its
    `for:`), with its annotations rendered; the live drift and performance rules go pending on
    the pushed sample; nothing else (no 5xx, fresh timestamps, fast answers)."""

    expected = {"RetrainServingErrorRate", "RetrainLiveDrift", "RetrainLivePerformanceDrop"}

    def alerts() -> Any:
        # the live rules need the pushed sample scraped and a rule evaluation after it: wait for
        # all three rather than read the live ones at the moment the serving one first shows
        got = {a["labels"]["alertname"]: a for a in observed.api("/api/v1/alerts")["alerts"]}
        return got if expected <= set(got) else None

    got = _wait(f"{sorted(expected)} in /api/v1/alerts", alerts, 90, every=1)
    alert = got["RetrainServingErrorRate"]
    assert alert["state"] in ("pending", "firing"), alert
    assert alert["labels"]["instance"] == observed.serving
    assert alert["labels"]["severity"] == "warning"
    summary = alert["annotations"]["summary"]
    assert (
        "%" in summary and observed.serving in summary and "error" not in summary.split("%")[0]
    ), summary
    for a in got.values():
        for text in a["annotations"].values():
            assert "error expanding template" not in text, a
    assert {"RetrainLiveDrift", "RetrainLivePerformanceDrop"} <= set(got), sorted(got)
    assert not {"RetrainServingServerErrors", "RetrainMonitorStale", "RetrainNightStale",
                "RetrainServingDown", "RetrainServingNoModel"} & set(got), sorted(got)  # fmt: skip
    states = sorted((n, a["state"]) for n, a in got.items())
    print(f"\nalerts: {states}; traffic {observed.traffic.statuses}")
    assert observed.traffic.failures == []


def test_mlflow_server_metrics_are_scraped_with_its_login(observed: Observed) -> None:
    assert observed.mlflow
    assert _get(f"http://{observed.mlflow}/metrics")[0] == 401  # the basic-auth app guards it
    _wait("up{job=mlflow} == 1", lambda: [r for r in observed.query('up{job="mlflow"} == 1')], 30)
    series = _wait(
        "mlflow_http_request_duration_seconds_count",
        lambda: observed.query('mlflow_http_request_duration_seconds_count{job="mlflow"}'),
        30,
    )
    assert series[0]["metric"]["mlflow_version"]
