"""Where a night's outcome goes: Airflow notifications and the night's record in MLflow.

:class:`NightNotifier` is an Airflow notifier (``BaseNotifier``): the DAG hands it to
``on_failure_callback`` (every task) and to ``on_success_callback`` of ``register`` (a
promotion). It appends one JSON line per event to a local file and logs the message, so a
machine with no mail server or chat still keeps every alert:

- file: ``$RETRAIN_NOTIFICATIONS``, else ``<paths.reports>/notifications.jsonl`` of the params
  file in use (the one the tasks use: Airflow Variable / env ``RETRAIN_PARAMS``);
- line: ``{"at", "event", "dag_id", "run_id", "task_id", "try_number", "night", "message",
  "error", "details", "log_url"}``.

Sending them elsewhere uses Airflow's own notifiers next to this one (callbacks take a list);
connections come from the environment (``AIRFLOW_CONN_<ID>``), so nothing machine-specific is
committed. In ``dags/retrain_nightly.py``, extend ``ON_FAILURE`` / ``ON_PROMOTION``:

- e-mail (``apache-airflow-providers-smtp``, installed)::

      from airflow.providers.smtp.notifications.smtp import SmtpNotifier
      ON_FAILURE.append(SmtpNotifier(
          to="{{ var.value.retrain_alert_to }}", smtp_conn_id="smtp_default",
          subject="retrain_nightly: {{ ti.task_id }} failed",
          html_content="{{ exception }}<br>{{ ti.log_url }}"))
      # AIRFLOW_CONN_SMTP_DEFAULT='smtp://user:password@smtp.example.com:587'
      # AIRFLOW_VAR_RETRAIN_ALERT_TO='ml-oncall@example.com'

- Slack (``pip install apache-airflow-providers-slack``)::

      from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
      ON_PROMOTION.append(SlackWebhookNotifier(
          slack_webhook_conn_id="slack_retrain",
          text="retrain_nightly {{ run_id }}: new champion promoted"))
      # AIRFLOW_CONN_SLACK_RETRAIN='slackwebhook://:T000/B000/XXXX@hooks.slack.com'

- any webhook (``pip install apache-airflow-providers-http``)::

      from airflow.providers.http.notifications.http import HttpNotifier
      ON_FAILURE.append(HttpNotifier(
          http_conn_id="retrain_webhook", endpoint="/hooks/retrain",
          json={"dag": "{{ dag.dag_id }}", "run": "{{ run_id }}", "task": "{{ ti.task_id }}",
                "error": "{{ exception }}"}))
      # AIRFLOW_CONN_RETRAIN_WEBHOOK='https://alerts.example.com'

A provider notifier imported at the top of the DAG file costs parse time; the structure test
(``tests/dags/test_dag_structure.py``) tells you if it is too much.

:func:`publish_night` records a finished night in MLflow (one run per night in the experiment
``<mlflow.experiment>-nights``, with the night's summary and reports as artifacts, and a
``night`` tag on the challenger's training run), so a night is reachable from MLflow as well as
from the task logs.

Only ``airflow.sdk`` and the standard library are imported at module level. The DAG file
imports this module inside its callbacks, not at parse time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from pipelines.edges.airflow import PARAMS_VARIABLE, night_date, params_file

if TYPE_CHECKING:
    from pipelines.config import Params
    from pipelines.records import NightRecord

NOTIFICATIONS_ENV = "RETRAIN_NOTIFICATIONS"
EVENTS = ("failure", "promotion")


def _default_path(params_default: Path | None) -> Path:
    """``<paths.reports>/notifications.jsonl`` of the params file in use."""
    try:
        pfile = params_file(params_default or Path("params.yaml"))
    except Exception:  # no API to ask (e.g. called outside a task): the env, then the default
        value = os.environ.get(PARAMS_VARIABLE)
        pfile = Path(value) if value else (params_default or Path("params.yaml"))
    try:
        from pipelines.config import load_params

        return load_params(pfile).paths.notifications
    except Exception:  # a broken params file may be what failed: still keep the alert
        return pfile.resolve().parent / "reports" / "notifications.jsonl"


def _promotion_message(dag_id: str, night: str, details: Any) -> str:
    d = details if isinstance(details, Mapping) else {}
    model, version = d.get("model", "model"), d.get("version", "?")
    previous = (d.get("event") or {}).get("previous_champion")
    was = f" (was v{previous})" if previous else " (first champion)"
    return f"{dag_id} night {night}: {model} v{version} promoted to champion{was}"


class NightNotifier(BaseNotifier):
    """Append a night event to a JSON-lines file and log it.

    :param event: ``failure`` or ``promotion`` (names the line; picks the default message).
    :param message: optional Jinja template for the message (rendered with the task context).
    :param path: file to append to; default ``$RETRAIN_NOTIFICATIONS``, else
        ``<paths.reports>/notifications.jsonl`` of the params file in use.
    :param params_default: the params file when neither the Variable nor the env names one.
    """

    template_fields = ("message",)

    def __init__(
        self,
        event: str,
        message: str | None = None,
        path: str | Path | None = None,
        params_default: str | Path | None = None,
    ) -> None:
        super().__init__()
        if event not in EVENTS:
            raise ValueError(f"unknown notification event {event!r}; events are {list(EVENTS)}")
        self.event = event
        self.message = message
        self.path = path
        self.params_default = Path(params_default) if params_default else None

    def target(self) -> Path:
        if self.path:
            return Path(self.path)
        env = os.environ.get(NOTIFICATIONS_ENV)
        return Path(env) if env else _default_path(self.params_default)

    def entry(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON line for this event (pure apart from an XCom read of the task's result)."""
        ti = context.get("ti")
        dag = context.get("dag")
        dag_id = str(getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?"))
        task_id = getattr(ti, "task_id", None)
        exc = context.get("exception")
        night: str | None
        try:
            night = night_date(context)
        except Exception:  # a notifier must not fail on a context it did not expect
            night = None
        details = None
        if ti is not None and self.event == "promotion":
            try:
                details = ti.xcom_pull(task_ids=task_id)
            except Exception:
                details = None
        message = self.message
        if not message:
            if self.event == "promotion":
                message = _promotion_message(dag_id, str(night), details)
            else:
                message = f"{dag_id} night {night}: task {task_id} failed: {exc}"
        log_url = None
        try:
            log_url = ti.log_url if ti is not None else None
        except Exception:
            pass
        return {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "event": self.event,
            "dag_id": dag_id,
            "run_id": context.get("run_id") or getattr(ti, "run_id", None),
            "task_id": task_id,
            "try_number": getattr(ti, "try_number", None),
            "night": night,
            "message": message,
            "error": None if exc is None else type(exc).__name__,
            "details": details,
            "log_url": log_url,
        }

    def notify(self, context: Any) -> None:
        entry = self.entry(context)
        path = self.target()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(entry, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        level = self.log.error if self.event == "failure" else self.log.info
        level("notification (%s) %s [written to %s]", self.event, entry["message"], path)


def read_notifications(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- MLflow record
def mlflow_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A browser link to a run when the tracking server is HTTP, else how to open it."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return (
        f"experiment {experiment_id}, run {run_id} in {tracking_uri} "
        f"(`mlflow ui --backend-store-uri {tracking_uri}`, then "
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id})"
    )


def publish_night(
    params: Params, night: NightRecord, tags: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Record a finished night in MLflow; return links to the night's run and its challenger.

    One run per night (tag ``night=<date>``; a rerun of the night updates the same run) in the
    experiment ``<mlflow.experiment>-nights``: tags for the outcome, serving version, gate
    verdict and retrain reasons; the night's folder (summary.json, validation and drift
    reports) and, when a challenger was judged, the gate report as artifacts. The challenger's
    training run gets a ``night`` tag and the summary too.
    """
    from mlflow import MlflowClient

    from pipelines.edges import tracking

    tracking.setup(params)
    uri = params.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp_id = tracking.side_experiment(params, client, "nights")
    day = night.date
    gate = night.gate or {}
    run_tags = {
        "night": day,
        "outcome": str(night.outcome),
        "serving": str(night.serving),
        "promoted": str(night.promoted),
        "gate": str(gate.get("verdict")),
        "retrain_reasons": ", ".join(night.retrain_reasons),
        **(tags or {}),
    }
    found = client.search_runs([exp_id], filter_string=f"tags.night = '{day}'", max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = client.create_run(exp_id, run_name=f"night-{day}", tags=run_tags).info.run_id
    for k, v in run_tags.items():
        client.set_tag(run_id, k, v)
    night_dir = Path(night.reports)
    if night_dir.is_dir():
        client.log_artifacts(run_id, str(night_dir), artifact_path="night")
    links = {"night_run": mlflow_link(uri, exp_id, run_id)}
    challenger = (night.challenger or {}).get("run_id")
    if night.retrained and challenger:
        gate_report = params.paths.gate_report
        if gate_report.is_file():
            client.log_artifact(run_id, str(gate_report), artifact_path="gate")
        client.set_tag(run_id, "challenger_run_id", challenger)
        client.set_tag(challenger, "night", day)
        summary = night_dir / "summary.json"
        if summary.is_file():
            client.log_artifact(challenger, str(summary), artifact_path="night")
        exp = client.get_run(challenger).info.experiment_id
        links["challenger_run"] = mlflow_link(uri, exp, challenger)
    client.set_terminated(run_id, status="FINISHED")
    return links
