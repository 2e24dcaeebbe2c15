"""
# Nightly retraining: `retrain_nightly`

One night of the gated retraining cycle, one task per stage. Every task calls the same code as
the `retrain nightly` CLI and `dvc repro` (`pipelines.night.run`); nothing here computes anything.

- `ingest`: validate the night's batch (`data/landing/<date>.csv` or `.parquet`, or the `batch`
  param); accept and version it with DVC, or quarantine it and **fail**.
- `assess`: drift against the data trained on so far; retrain on drift, target drift, schedule
  or `force_retrain`, else stop.
- `window`, `validate`, `drift`, `train`, `evaluate`, `fairness`, `gate`: `dvc repro -s <stage>`.
- `register`: the gate passed: register the challenger, promote it to `champion`, notify.
- `register_rejected`: the gate failed: register the challenger, tagged `rejected` with reasons.
- `deploy`: roll the new champion out to serving (`pipelines.serve.deploy`); skipped with
  `skip_deploy` (or without a serving module). A failed deploy puts the champion alias back on
  the serving version and fails the task (not retried).
- `summary`: finish the night record, log it with its reports, record the night in MLflow.
- `watcher`: runs only when a task failed, and fails the run with it.

## How a night branches

- **Batch rejected**: `ingest` fails (red) with the failed expectations and the quarantine
  folder, a failure notification is sent, everything after it is skipped, `summary` still
  writes the night record, and the run ends *failed*. No retry: the batch will not improve.
- **No batch** for the date: `assess` is skipped and the rest with it; the run succeeds.
- **No drift, not scheduled, not forced**: `assess` succeeds and skips the retraining tasks
  (skipped, not failed); the run succeeds.
- **Gate rejection**: `register_rejected` keeps the challenger tagged `rejected`; `register`
  (the promotion) and `deploy` are skipped; the run succeeds: a rejection is an outcome.
- **Dry run**: stops after `gate`; nothing is registered or deployed.
- **An error** (DVC, MLflow, a busy workspace...): the task retries with exponential back-off,
  then fails and notifies; clearing the failed task resumes the night (every step is rerun-safe).

The night record is `reports/nights/<date>/summary.json` in the workspace; the `summary` task log
shows it, the report paths and the MLflow links (experiment `<mlflow.experiment>-nights`).

## Trigger a night by hand

*Trigger* (play button) opens a form: `date` (empty: the run's logical date), `batch` (a file;
default: the landing folder), `force_retrain`, `skip_deploy`, `dry_run`. Values that break the
schema are refused before the run starts.

## Settings (environment, nothing committed)

- `RETRAIN_PARAMS` (Airflow Variable or env): the params file / workspace; default
  `<repo>/params.yaml`.
- `RETRAIN_SCHEDULE`: cron for the nightly run (default `0 2 * * *`, UTC).
- `RETRAIN_RETRIES`: retries per task (default 2; back-off 2 min, x2, at most 30 min).
- `RETRAIN_NOTIFICATIONS`: notification file (default `<reports>/notifications.jsonl`); e-mail,
  Slack or a webhook: see `pipelines/edges/notify.py`.
- `MLFLOW_TRACKING_URI`, `RETRAIN_DATASET_MIRROR`: as for the CLI.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from pipelines.stages import NIGHT_STAGES  # a tuple of names: imports nothing else

DEFAULT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
SCHEDULE = os.environ.get("RETRAIN_SCHEDULE", "0 2 * * *")
RETRIES = int(os.environ.get("RETRAIN_RETRIES", "2"))


def _night() -> Any:
    from pipelines.night.tasks import Night

    return Night.of(get_current_context(), DEFAULT_PARAMS)


def _states() -> dict[str, Any]:
    ti = get_current_context()["ti"]
    return ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})


def _notify(event: str) -> Any:
    def callback(context: Any) -> None:
        from pipelines.edges.notify import NightNotifier

        NightNotifier(event, params_default=DEFAULT_PARAMS)(context)

    callback.__name__ = f"notify_{event}"
    return callback


# Add Airflow's own notifiers (e-mail, chat, webhook) here: see pipelines/edges/notify.py.
ON_FAILURE: list[Any] = [_notify("failure")]
ON_PROMOTION: list[Any] = [_notify("promotion")]


@dag(
    dag_id="retrain_nightly",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    doc_md=__doc__,
    tags=["ml", "retraining", "nightly"],
    default_args={
        "owner": "ml-platform",
        "retries": RETRIES,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": ON_FAILURE,
    },
    params={
        "date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Night",
            description="The night's date (YYYY-MM-DD). Empty: the run's logical date.",
        ),
        "batch": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Batch file",
            description="CSV or Parquet batch (absolute, or relative to the "
            "workspace). Empty: data/landing/<date>.csv|parquet.",
        ),
        "force_retrain": Param(
            False,
            type="boolean",
            title="Force retrain",
            description="Train a challenger even without drift.",
        ),
        "skip_deploy": Param(
            False,
            type="boolean",
            title="Skip deploy",
            description="Promote in the registry, but do not roll out to serving.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Train and judge a challenger; register and deploy nothing.",
        ),
    },
)
def retrain_nightly() -> None:
    @task(task_id="ingest")
    def ingest() -> dict[str, Any]:
        """Validate the night's batch; accept + version it, or quarantine it and fail."""
        return _night().ingest().to_dict()

    @task.branch(task_id="assess", trigger_rule=TriggerRule.ALL_DONE)
    def assess(ingested: dict[str, Any] | None) -> list[str]:
        """Drift and the retrain decision; skips the rest when there is nothing to retrain."""
        return _night().assess(ingested).branch

    def stage(name: str) -> Any:
        @task(task_id=name, doc_md=f"`dvc repro -s {name}` under the workspace lock.")
        def run_stage() -> None:
            _night().stage(name)

        return run_stage()

    @task.branch(task_id="gate")
    def gate() -> list[str]:
        """The promotion gate (`dvc repro -s gate`); branches on its verdict."""
        return _night().gate().branch

    @task(task_id="register", on_success_callback=ON_PROMOTION)
    def register() -> dict[str, Any]:
        """Gate passed: register the challenger and promote it to champion."""
        return _night().register("pass").to_dict()

    @task(task_id="register_rejected")
    def register_rejected() -> dict[str, Any]:
        """Gate failed: register the challenger, tagged rejected with the reasons."""
        return _night().register("fail").to_dict()

    @task(task_id="deploy", retries=0)
    def deploy(registration: dict[str, Any]) -> dict[str, Any]:
        """Roll the promoted version out to serving. Not retried: a failed deploy has put the
        champion alias back on the serving version; a retry would serve one it no longer names."""
        return _night().deploy(registration)

    @task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE)
    def summary() -> dict[str, Any]:
        """Finish the night record; log it, its reports and its MLflow links."""
        ti = get_current_context()["ti"]
        tags = {"airflow.dag_id": ti.dag_id, "airflow.run_id": ti.run_id}
        return _night().summary(_states(), tags).to_dict()

    @task(
        task_id="watcher", trigger_rule=TriggerRule.ONE_FAILED, retries=0, on_failure_callback=None
    )
    def watcher() -> None:
        """Runs only when a task failed, and fails the run with it (the summary still ran)."""
        from pipelines.night.tasks import watch

        watch(_states(), me="watcher")

    ingested = ingest()
    steps = [
        ingested,
        assess(ingested),
        *(stage(s) for s in NIGHT_STAGES[: NIGHT_STAGES.index("gate")]),
        gate(),
    ]
    for upstream, downstream in zip(steps, steps[1:], strict=False):
        upstream >> downstream
    promote, reject = register(), register_rejected()
    roll_out, finish = deploy(promote), summary()
    steps[-1] >> [promote, reject]
    [roll_out, reject] >> finish
    [*steps, promote, reject, roll_out, finish] >> watcher()


retrain_nightly()
