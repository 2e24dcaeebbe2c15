"""Where a night's outcome goes: the notifications file and the night's record in MLflow.

Every alert (a failed task, a promotion, a canary's decision) is one JSON line appended to a
local file and logged, so a machine with no mail server or chat still keeps every alert:

- file: ``$RETRAIN_NOTIFICATIONS``, else ``<paths.reports>/notifications.jsonl`` of the params
  file in use;
- line: ``{"at", "event", "dag_id", "run_id", "task_id", "try_number", "night", "message",
  "error", "details", "log_url"}``.

The Airflow side (the ``NightNotifier`` the DAG hands to its callbacks, and how to add e-mail,
chat or webhook notifiers beside it) lives in :mod:`pipelines.airflow_adapter`.

:func:`publish_night` records a finished night in MLflow (one run per night in the experiment
``<mlflow.experiment>-nights``, with the night's summary and reports as artifacts, and a
``night`` tag on the challenger's training run), so a night is reachable from MLflow as well as
from the task logs.

Only the standard library is imported at module level.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.settings import settings

if TYPE_CHECKING:
    from pipelines.config import Params
    from pipelines.records import NightRecord

EVENTS = ("failure", "promotion", "held")  # held: data kept aside for a person to review


def notifications_path(params: Params) -> Path:
    """``$RETRAIN_NOTIFICATIONS``, else ``paths.notifications`` of ``params``."""
    return settings().notifications or params.paths.notifications


def append_notification(path: Path, entry: Mapping[str, Any]) -> Path:
    """Append one notification line (flushed to disk: an alert must survive a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(dict(entry), default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def notification(
    event: str,
    message: str,
    *,
    dag_id: str,
    run_id: str | None,
    task_id: str | None = None,
    try_number: int | None = None,
    night: str | None = None,
    error: str | None = None,
    details: Any = None,
    log_url: str | None = None,
) -> dict[str, Any]:
    """One notification line (``event``: failure | promotion | held)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; events are {list(EVENTS)}")
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "event": event,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "try_number": try_number,
        "night": night,
        "message": message,
        "error": error,
        "details": details,
        "log_url": log_url,
    }


def read_notifications(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- MLflow record
def mlflow_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A browser link to a run: on ``RETRAIN_MLFLOW_UI_URL`` when set, else on the tracking
    server when it is HTTP, else how to open it (the location masked: a notification never
    carries a password)."""
    from pipelines.settings import mask_url

    tail = f"#/experiments/{experiment_id}/runs/{run_id}"
    base = mask_url(settings().mlflow_ui_url or tracking_uri) or ""
    if base.startswith(("http://", "https://")):
        return f"{base.rstrip('/')}/{tail}"
    tracking_uri = mask_url(tracking_uri) or ""
    return (
        f"experiment {experiment_id}, run {run_id} in {tracking_uri} "
        f"(`mlflow ui --backend-store-uri {tracking_uri}`, then http://127.0.0.1:5000/{tail})"
    )


def night_metrics(night: NightRecord) -> dict[str, float]:
    """A night's numbers for its MLflow run: rows landed, drift, the gate, what it promoted."""
    out: dict[str, float] = {}
    if night.rows is not None:
        out["rows"] = float(night.rows)
    if night.validation is not None:
        out["failed_expectations"] = float(len(night.validation.failed))
        out["warned_expectations"] = float(len(night.validation.warned))
    if night.drift is not None:
        out["drift_share"] = float(night.drift.share)
        out["drifted_columns"] = float(len(night.drift.drifted_columns))
        out["dataset_drift"] = float(night.drift.dataset_drift)
    out["retrained"] = float(night.retrained)
    if night.gate is not None:
        out["gate_passed"] = float(night.gate.verdict == "pass")
    out["promoted"] = float(night.promoted is not None)
    if night.seconds is not None:
        out["seconds"] = float(night.seconds)
    return out


def publish_night(
    params: Params, night: NightRecord, tags: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Record a finished night in MLflow; return links to the night's run and its challenger.

    One run per night (``night <date>``, tag ``night=<date>``; a rerun of the night updates the
    same run) in the experiment ``<mlflow.experiment>-nights``: tags for the outcome, serving
    version, gate verdict and retrain reasons; :func:`night_metrics` as metrics; the night's
    folder (summary.json, validation and drift reports) and, when a challenger was judged, the
    gate report as artifacts. The challenger's training run gets a ``night`` tag and the
    summary too.
    """
    from mlflow import MlflowClient

    from pipelines.edges import tracking

    tracking.setup(params)
    uri = params.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp_id = tracking.side_experiment(params, client, "nights")
    day = night.date
    gate = night.gate
    run_tags = {
        "night": day,
        "outcome": str(night.outcome),
        "serving": str(night.serving),
        "promoted": str(night.promoted),
        "gate": str(gate.verdict if gate else None),
        "retrain_reasons": ", ".join(night.retrain_reasons),
        **(tags or {}),
    }
    found = client.search_runs([exp_id], filter_string=f"tags.night = '{day}'", max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = client.create_run(exp_id, run_name=f"night {day}", tags=run_tags).info.run_id
    for k, v in run_tags.items():
        client.set_tag(run_id, k, v)
    for k, value in night_metrics(night).items():
        client.log_metric(run_id, k, value)
    night_dir = Path(night.reports)
    if night_dir.is_dir():
        client.log_artifacts(run_id, str(night_dir), artifact_path="night")
    links = {"night_run": mlflow_link(uri, exp_id, run_id)}
    challenger = night.challenger.run_id if night.challenger else None
    if night.retrained and challenger:
        gate_report = params.paths.gate_report
        if gate_report.is_file():
            client.log_artifact(run_id, str(gate_report), artifact_path="gate")
        client.set_tag(run_id, "challenger_run_id", challenger)
        client.set_tag(challenger, "night", day)
        summary = params.paths.night_record(day)
        if summary.is_file():
            client.log_artifact(challenger, str(summary), artifact_path="night")
        exp = client.get_run(challenger).info.experiment_id
        links["challenger_run"] = mlflow_link(uri, exp, challenger)
    client.set_terminated(run_id, status="FINISHED")
    return links
