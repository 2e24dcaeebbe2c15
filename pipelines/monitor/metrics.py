"""What the monitor publishes to Prometheus: a text file in the reports (always) and the
Pushgateway (``monitor.pushgateway``), job ``retrain_monitor``. The dashboard and the alert rules
in ``docker/`` use these names; ``NAMES`` is the one list a test checks them against."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from pipelines.monitor.live import LiveVerdict

JOB = "retrain_monitor"
NAMES = (
    "retrain_live_rows",
    "retrain_live_labelled_rows",
    "retrain_live_drift_share",
    "retrain_live_drift_score",
    "retrain_live_drifted",
    "retrain_live_metric",
    "retrain_live_performance_drop",
    "retrain_live_estimated_metric",
    "retrain_live_estimated_drop",
    "retrain_live_concept_change",
    "retrain_monitor_retrain_triggered",
    "retrain_monitor_last_run_timestamp_seconds",
    "retrain_champion_version",
    "retrain_last_night_timestamp_seconds",
    "retrain_last_night_outcome",
    "retrain_canary_share",
)


def registry_of(
    verdict: LiveVerdict,
    last_night: dict[str, Any] | None = None,
    canary_share: float = 0.0,
    now: float | None = None,
) -> CollectorRegistry:
    reg = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        assert name in NAMES, name
        return Gauge(name, doc, labels, registry=reg)

    gauge("retrain_live_rows", "Answers in the monitor's window").set(verdict.rows)
    gauge("retrain_live_labelled_rows", "Answers with an outcome in the window").set(
        verdict.labelled_rows
    )
    if verdict.drift is not None:
        gauge("retrain_live_drift_share", "Share of drifted feature columns").set(
            verdict.drift_share or 0.0
        )
        score = gauge("retrain_live_drift_score", "Drift score per column", ("column",))
        drifted = gauge("retrain_live_drifted", "1 if the column drifted", ("column",))
        for c in verdict.drift["columns"]:
            if c.get("score") is not None:
                score.labels(c["column"]).set(c["score"])
            drifted.labels(c["column"]).set(1 if c.get("drifted") else 0)
    if verdict.live is not None:
        m = gauge("retrain_live_metric", "Live metric on labelled answers", ("metric", "bound"))
        for bound, key in (("estimate", "point"), ("low", "lower"), ("high", "upper")):
            m.labels(verdict.metric, bound).set(verdict.live[key])
    if verdict.drop is not None:
        gauge("retrain_live_performance_drop", "Evaluated metric minus the live interval top").set(
            verdict.drop
        )
    if verdict.estimated is not None:
        e = gauge(
            "retrain_live_estimated_metric",
            "Live metric estimated from calibrated probabilities, before outcomes",
            ("metric", "bound"),
        )
        for bound, key in (("estimate", "point"), ("low", "lower"), ("high", "upper")):
            e.labels(verdict.metric, bound).set(verdict.estimated[key])
    if verdict.estimated_drop is not None:
        gauge("retrain_live_estimated_drop", "Evaluated metric minus the estimate's top").set(
            verdict.estimated_drop
        )
    if verdict.concept_change is not None:
        gauge(
            "retrain_live_concept_change",
            "1 if the realised metric fell outside the estimate's interval",
        ).set(int(verdict.concept_change["outside"]))
    gauge("retrain_monitor_retrain_triggered", "1 if this pass asked for a retrain").set(
        int(verdict.retrain)
    )
    gauge("retrain_monitor_last_run_timestamp_seconds", "When the monitor last ran").set(
        now or time.time()
    )
    if verdict.champion_version is not None:
        gauge("retrain_champion_version", "The champion's registry version").set(
            float(verdict.champion_version)
        )
    if last_night:
        gauge("retrain_last_night_timestamp_seconds", "When the last night finished").set(
            last_night["timestamp"]
        )
        gauge("retrain_last_night_outcome", "1 for the last night's outcome", ("outcome",)).labels(
            last_night["outcome"]
        ).set(1)
    gauge("retrain_canary_share", "Share of traffic the canary answers").set(canary_share)
    return reg


def publish(reg: CollectorRegistry, textfile: Path, pushgateway: str | None) -> list[str]:
    """Write the text file; push when a gateway is configured. Returns where it went."""
    textfile.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(textfile), reg)  # atomic: a temp file, then a rename
    where = [str(textfile)]
    if pushgateway:
        push_to_gateway(pushgateway, job=JOB, registry=reg, timeout=10)
        where.append(f"pushgateway {pushgateway}")
    return where
