"""The monitoring files: Prometheus' config and alert rules, Grafana's provisioning and dashboard.

They parse; every PromQL expression of the dashboard and the rules names only metrics that exist,
with labels they have: the serving app's from a real ServingMetrics render, the monitor job's
from a real render of pipelines.monitor.metrics.registry_of (its NAMES is the one list of them);
the dashboard shows every metric of both; the rules' thresholds are the ones params.yaml decides
on; the compose services run what these files expect. The same files run for real, against real
servers, in tests/integration/test_observability.py.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from tests.support.observability import (  # noqa: F401
    ALERTS_YML,
    DASHBOARD,
    GRAFANA_VARIABLES,  # noqa: F401
    PROMETHEUS_YML,
    alert_rules,
    dashboard_expressions,
    monitor_registry,
    substitute,
    template_queries,
)

ROOT = Path(__file__).resolve().parents[2]
STACK_SH = ROOT / "scripts" / "stack.sh"
PROM_DIR = ROOT / "docker" / "prometheus"
GRAFANA = ROOT / "docker" / "grafana"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER = GRAFANA / "provisioning" / "dashboards" / "retrain.yml"
COMPOSE = ROOT / "docker-compose.yml"

# Series Prometheus makes itself: a target's health, and the rules' alert states.
BUILTIN_METRICS: dict[str, tuple[str, ...]] = {
    "up": (),
    "ALERTS": ("alertname", "alertstate", "severity"),
}
TARGET_LABELS = {"job", "instance"}  # added to every scraped or pushed series

# Grafana's variables, replaced by values Prometheus accepts (the rate window must hold at least
# two scrapes of tests/integration/test_observability.py's 1 s interval).

_PROMQL_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
    "group_right", "inf", "nan", "atan2",
}  # fmt: skip
_GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"


# --------------------------------------------------------------------------- the expressions


def parse_expression(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """Metric names, label names matched per metric, and grouping labels of a PromQL expression.

    A lexical reading, enough for the expressions kept here: strings, label matchers, ranges and
    grouping clauses are taken out, then every identifier that is not a function call, a keyword
    or a number is a metric name. promtool and a real Prometheus check the syntax itself.
    """
    expr = substitute(expr)
    matched: dict[str, set[str]] = {}
    for m in re.finditer(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", expr):
        labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", m.group(2)))
        matched.setdefault(m.group(1) or "", set()).update(labels)
    grouping: set[str] = set()
    for m in re.finditer(_GROUPING, expr):
        grouping.update(w.strip() for w in m.group(1).split(",") if w.strip())
    bare = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(_GROUPING, " ", bare)
    bare = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?\b", " ", bare)
    names = {
        m.group(1)
        for m in re.finditer(r"(?<![\w:])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()", bare)
        if m.group(1).lower() not in _PROMQL_KEYWORDS
    }
    assert "" not in matched, f"a selector without a metric name: {expr}"
    return names, matched, grouping


# --------------------------------------------------------------------------- the metrics
def serving_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, from a real ServingMetrics render with every family fed."""
    from prometheus_client.parser import text_string_to_metric_families

    from pipelines.serve.metrics import ServingMetrics
    from pipelines.serve.model import ServingSpec

    spec = ServingSpec(
        model_name="adult-income", numeric=("age",), categorical=("sex",),
        positive_label=">50K", negative_label="<=50K",
    )  # fmt: skip
    # what the metrics read from the model holder at scrape time: the served model, the swaps
    holder = SimpleNamespace(
        current=SimpleNamespace(version="1", scorer=SimpleNamespace(mode="compiled")),
        reloads={"ok": 1, "failed": 0},
    )
    metrics = ServingMetrics(spec, holder)  # type: ignore[arg-type]
    metrics.request("/predict", 200)
    metrics.error("invalid")
    metrics.observe_latency(0.004)
    metrics.observe_batch("1", np.array([0.2, 0.7]))
    body, _ = metrics.render()
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


def monitor_metrics() -> dict[str, set[str]]:
    """Sample name -> label names of the monitor's render; every name of its NAMES is there."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from pipelines.monitor.metrics import NAMES

    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(generate_latest(monitor_registry()).decode()):
        for s in fam.samples:
            out.setdefault(s.name, set()).update(s.labels)
    assert set(out) == set(NAMES), "the sample pass must publish every monitor metric"
    return out


@pytest.fixture(scope="module")
def known_metrics() -> dict[str, set[str]]:
    known = serving_metrics()
    assert "retrain_serve_requests_total" in known  # the render is the real one
    known.update(monitor_metrics())
    for name, labels in BUILTIN_METRICS.items():
        known[name] = set(labels)
    return known


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    return yaml.safe_load(ALERTS_YML.read_text())


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_YML.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _check_expression(where: str, expr: str, known: dict[str, set[str]]) -> set[str]:
    names, matched, grouping = parse_expression(expr)
    assert names, f"{where}: no metric in {expr}"
    unknown = names - set(known)
    assert not unknown, f"{where}: unknown metrics {sorted(unknown)} in {expr}"
    for name, labels in matched.items():
        allowed = known[name] | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
        assert labels <= allowed, f"{where}: {name} has no label {sorted(labels - allowed)}"
    allowed = set().union(*(known[n] for n in names)) | TARGET_LABELS | {"le"}
    assert grouping <= allowed, f"{where}: grouping by unknown labels {sorted(grouping - allowed)}"
    return names


# --------------------------------------------------------------------------- tests
def test_the_files_parse() -> None:
    for path in (PROMETHEUS_YML, ALERTS_YML, DATASOURCE, PROVIDER):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
    assert json.loads(DASHBOARD.read_text())["panels"]


def test_the_expression_reader_on_known_cases() -> None:
    names, matched, grouping = parse_expression(
        'histogram_quantile(0.95, sum by (le, version) (rate(a_bucket{version=~"$version"}'
        "[$__rate_interval]))) / ignoring(version) group_left sum(b_total) > 1e3 and up == 0"
    )
    assert names == {"a_bucket", "b_total", "up"}
    assert matched == {"a_bucket": {"version"}}
    assert grouping == {"le", "version"}
    assert parse_expression("time() - c_seconds > 3 * 3600")[0] == {"c_seconds"}
    with pytest.raises(AssertionError, match="unknown Grafana variable"):
        parse_expression("rate(x[$__unknown])")


def test_the_check_refuses_unknown_metrics_and_labels(known_metrics) -> None:
    _check_expression("ok", "sum by (kind) (rate(retrain_serve_errors_total[5m]))", known_metrics)
    for bad, why in (
        ("rate(retrain_serve_request_total[5m])", "unknown metrics"),  # requests_total
        ('retrain_live_metric{bound="estimate",column="age"}', "has no label"),
        ("sum by (column) (retrain_live_metric)", "grouping by unknown labels"),
    ):
        with pytest.raises(AssertionError, match=why):
            _check_expression("bad", bad, known_metrics)


def test_every_dashboard_expression_names_existing_metrics(dashboard, known_metrics) -> None:
    exprs = list(dashboard_expressions(dashboard))
    assert len(exprs) >= 20
    for title, expr in exprs:
        _check_expression(f"panel {title!r}", expr, known_metrics)
    for name, metric, label in template_queries(dashboard):
        assert label in known_metrics[metric], f"variable {name}: {metric} has no label {label}"


def test_every_alert_expression_names_existing_metrics(rules, known_metrics) -> None:
    for rule in alert_rules(rules):
        _check_expression(f"alert {rule['alert']}", rule["expr"], known_metrics)


def test_the_dashboard_shows_every_serving_and_monitor_metric(dashboard, known_metrics) -> None:
    used: set[str] = set()
    for _, expr in dashboard_expressions(dashboard):
        used |= parse_expression(expr)[0]
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in used}
    serving = {
        re.sub(r"_(total|bucket|sum|count|created)$", "", n)
        for n in known_metrics
        if n.startswith("retrain_serve_")
    }
    assert serving - families == set(), "serving metrics no panel shows"
    from pipelines.monitor.metrics import NAMES

    assert set(NAMES) - used == set(), "monitor metrics no panel shows"


def test_panels_use_the_provisioned_data_source_and_fit_the_grid(dashboard) -> None:
    ds = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    uids = {d["uid"] for d in ds}
    ids, cells = set(), set()
    for p in dashboard["panels"]:
        assert p["id"] not in ids, f"duplicate panel id {p['id']}"
        ids.add(p["id"])
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another"
                cells.add((x, y))
        if p["type"] == "row":
            continue
        assert p["targets"] and p.get("description"), p["title"]
        assert p["datasource"]["uid"] in uids, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] in uids, p["title"]
    for var in dashboard["templating"]["list"]:
        assert var["datasource"]["uid"] in uids


def test_alert_rules_are_complete(rules) -> None:
    names = [r["alert"] for r in alert_rules(rules)]
    assert len(names) == len(set(names))
    for rule in alert_rules(rules):
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    exprs = " ".join(r["expr"] for r in alert_rules(rules))
    for needed in (
        "retrain_serve_requests_total",  # error rate
        "retrain_serve_request_duration_seconds_bucket",  # p95 latency
        "retrain_live_drift_share",
        "retrain_live_performance_drop",
    ):
        assert needed in exprs, needed
    assert "histogram_quantile(0.95" in exprs


def test_alert_thresholds_are_params_yaml_monitor_settings(rules) -> None:
    """The live drift and performance rules fire where the monitor job decides to retrain."""
    monitor = yaml.safe_load((ROOT / "params.yaml").read_text()).get("monitor")
    if not monitor:
        pytest.skip("params.yaml has no monitor: section yet")
    by_name = {r["alert"]: r["expr"] for r in alert_rules(rules)}
    # pipelines/monitor/live.py: drift share >= max_drift_share, drop > max_performance_drop
    for alert, op, key in (
        ("RetrainLiveDrift", ">=", "max_drift_share"),
        ("RetrainLivePerformanceDrop", ">", "max_performance_drop"),
    ):
        m = re.search(r"(>=?)\s*([\d.]+)\s*$", by_name[alert].strip())
        assert m and m.group(1) == op, f"{alert}: the comparison must be {op}: {by_name[alert]}"
        assert float(m.group(2)) == float(monitor[key]), f"{alert}: params.yaml monitor.{key}"


def test_scrape_jobs_match_the_compose_services(prometheus, compose) -> None:
    services = compose["services"]
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    assert {"serving", "pushgateway", "mlflow"} <= set(jobs)
    assert jobs["pushgateway"]["honor_labels"] is True
    assert jobs["serving"]["metrics_path"] == "/metrics"
    for job, service, port in (
        ("serving", "serving", _flag(services["serving"], "--port")),
        ("pushgateway", "pushgateway", _flag(services["pushgateway"], "--web.listen-address")),
        ("mlflow", "mlflow", _flag(services["mlflow"], "--port")),
    ):
        targets = [t for sc in jobs[job].get("static_configs", []) for t in sc["targets"]]
        # a replicated service: one target per address of its name
        targets += [
            f"{n}:{sd['port']}" for sd in jobs[job].get("dns_sd_configs", []) for n in sd["names"]
        ]
        assert targets == [f"{service}:{port.rsplit(':', 1)[-1]}"], job
    serving_sd = jobs["serving"]["dns_sd_configs"]
    assert [sd["type"] for sd in serving_sd] == ["A"]  # every replica, not one per scrape
    assert (PROM_DIR / prometheus["rule_files"][0]).is_file()
    # the mlflow job's password file is the one the image's entrypoint writes
    entrypoint = (PROM_DIR / "entrypoint.sh").read_text()
    assert jobs["mlflow"]["basic_auth"]["password_file"] in entrypoint
    assert "MLFLOW_ADMIN_PASSWORD" in services["prometheus"]["environment"]


def test_every_scrape_target_is_a_service_the_stack_always_starts(prometheus, compose) -> None:
    """A configured target that cannot be up is an alert nobody can clear: every job scrapes
    Prometheus itself or a compose service that scripts/stack.sh starts unconditionally (not
    one of its upstream-only images, which it skips when absent)."""
    stack = STACK_SH.read_text()
    listed = re.search(r"^SERVICES=\((.*?)\)$", stack, re.M | re.S)
    upstream = re.search(r"^declare -A UPSTREAM_ONLY=\((.*?)\)$", stack, re.M | re.S)
    assert listed and upstream, "scripts/stack.sh: SERVICES or UPSTREAM_ONLY not found"
    always = set(listed.group(1).split()) - set(re.findall(r"\[([\w-]+)\]=", upstream.group(1)))
    for job in prometheus["scrape_configs"]:
        hosts = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        hosts += [n for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
        for host in (h.split(":")[0] for h in hosts):
            if job["job_name"] == "prometheus":
                assert host == "localhost", job
                continue
            assert host in compose["services"], f"{job['job_name']}: no service {host}"
            assert host in always, f"{job['job_name']}: {host} is not always started"
    assert "airflow" not in {j["job_name"] for j in prometheus["scrape_configs"]}


def _flag(service: dict[str, Any], flag: str) -> str:
    cmd = shlex.split(service["command"])
    for i, word in enumerate(cmd):
        if word == flag:
            return cmd[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"no {flag} in {cmd}")


def test_compose_mounts_what_prometheus_and_grafana_read(prometheus, compose) -> None:
    services = compose["services"]
    mounts = {
        name: {v.split(":")[1]: v.split(":")[0] for v in svc.get("volumes", [])}
        for name, svc in services.items()
    }
    config = _flag(services["prometheus"], "--config.file")
    folder = str(Path(config).parent)
    assert mounts["prometheus"][folder] == "./docker/prometheus"
    assert (ROOT / "docker/prometheus" / Path(config).name).is_file()
    assert mounts["grafana"]["/etc/grafana/provisioning"] == "./docker/grafana/provisioning"
    provider = yaml.safe_load(PROVIDER.read_text())["providers"][0]
    assert mounts["grafana"][provider["options"]["path"]] == "./docker/grafana/dashboards"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/" + DASHBOARD.name
    ds = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]
    listen = _flag(services["prometheus"], "--web.listen-address").rsplit(":", 1)[-1]
    assert ds["url"] == f"http://prometheus:{listen}"


@pytest.mark.parametrize(
    "service, binary", [("prometheus", "prometheus"), ("pushgateway", "prometheus-pushgateway")]
)
def test_compose_flags_exist_in_the_debian_binaries(compose, service, binary) -> None:
    """The images run Debian's binaries with compose's `command:` as their flags."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (scripts/install-observability.sh installs it)")
    proc = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
    help_text = proc.stdout + proc.stderr
    for word in shlex.split(compose["services"][service]["command"]):
        flag = word.split("=", 1)[0]
        assert flag.startswith("--"), word
        assert f"{flag}=" in help_text or f"{flag} " in help_text, f"{binary}: no {flag}"
