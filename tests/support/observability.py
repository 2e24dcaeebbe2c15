"""The observability files read as Prometheus and Grafana read them: the rules, the dashboard's
expressions, the monitor's metric registry (the file checks and the live Prometheus test)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "docker" / "prometheus"
GRAFANA = ROOT / "docker" / "grafana"


PROMETHEUS_YML = PROM_DIR / "prometheus.yml"


ALERTS_YML = PROM_DIR / "alerts.yml"


DASHBOARD = GRAFANA / "dashboards" / "retrain.json"


def dashboard_expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every panel target, nested rows included."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    for p in walk(dashboard["panels"]):
        for t in p.get("targets", []):
            yield p["title"], t["expr"]


def template_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(variable, metric, label) of every ``label_values(metric, label)`` variable."""
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)", q.strip())
        assert m, f"variable {var['name']}: only label_values(metric, label) is checked: {q}"
        yield var["name"], m.group(1), m.group(2)


def alert_rules(rules: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for group in rules["groups"]:
        yield from group["rules"]


def substitute(expr: str) -> str:
    """The expression as Grafana sends it, its variables replaced by GRAFANA_VARIABLES."""
    for var, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + var[1:] + "}", value).replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def monitor_registry(now: float | None = None) -> Any:
    """The monitor job's own registry (pipelines.monitor.metrics.registry_of) for a pass with
    every part present: drift (one column drifted, share 0.4), a live interval and a drop of 0.05
    (both above params.yaml's monitor thresholds), an estimate without outcomes and its
    comparison with the realised metric, a champion, last night's outcome, a canary."""
    from pipelines.monitor.live import LiveVerdict
    from pipelines.monitor.metrics import registry_of

    now = time.time() if now is None else now
    columns = [("age", 0.21, True), ("education", 0.04, False), ("sex", 0.02, False)]
    verdict = LiveVerdict(
        at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), window_hours=24,
        rows=5000, labelled_rows=1200, champion_version="3", versions={"3": 5000},
        metric="roc_auc",
        drift={"columns": [{"column": c, "score": s, "drifted": d} for c, s, d in columns]},
        drift_share=0.4, drifted_columns=["age"],
        live={"point": 0.861, "lower": 0.842, "upper": 0.879}, baseline=0.929, drop=0.05,
        estimated={"point": 0.872, "lower": 0.858, "upper": 0.886, "rows": 5000.0},
        estimated_drop=0.043,
        concept_change={"rows": 1200, "estimated": 0.874, "lower": 0.851, "upper": 0.896,
                        "realised": 0.861, "gap": -0.013, "outside": False},
        retrain=True, reasons=["test sample"],
    )  # fmt: skip
    last_night = {"timestamp": now - 5 * 3600, "outcome": "promoted"}
    return registry_of(verdict, last_night=last_night, canary_share=0.2, now=now - 60)


GRAFANA_VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "15s",
    "$__range": "5m",
    "$version": ".*",
}
