"""
# Nightly retraining: `retrain_nightly`

One night of the gated retraining cycle, one task per stage. Every task calls the same code as
the `retrain nightly` CLI and `dvc repro` (`pipelines.night.run`); nothing here computes anything.

- `ingest`: validate the night's batch (`data/landing/<date>.csv` or `.parquet`, or the `batch`
  param); accept and version it with DVC, or quarantine it and **fail**.
- `assess`: drift against the data trained on so far; retrain on drift, target drift, schedule
  or `force_retrain`, else stop.
- `window`, `validate`, `drift`, `train`, `evaluate`, `fairness`, `gate` (the task group
  `stages`): `dvc repro -s <stage>`.
- `register`: the gate passed: register the challenger and carry out the release plan
  (`pipelines.release.plan`, from `deploy.rollout` and `deploy.approval` in params): promote it
  to `champion` and notify, or hold it for a human (alias `pending`) or for a canary/shadow
  rollout (alias `rollout`) while the champion keeps serving.
- `register_rejected`: the gate failed: register the challenger, tagged `rejected` with reasons.
- `needs_approval`: `approve` when `register` held the version for a human, else `promote`.
- `approve`: waits for a human (*Required actions* in the UI, or the REST API) to **Approve** or
  **Reject** the version; no answer within `deploy.approval_timeout_minutes`: Reject. Reject
  skips `promote` and `deploy`: the champion keeps its alias and keeps serving.
- `promote`: what the plan left after `register`: approved, record who approved and move
  `champion` to the version (notify), or put a version held for a rollout out beside the
  champion as a canary or shadow. After a plain promotion it has nothing to do.
- `deploy`: roll the new champion out to serving (`pipelines.release.deploy`); skipped with
  `skip_deploy`, or when the plan put the version out as a canary/shadow. A failed deploy
  puts the champion alias back on the serving version and fails the task (not retried).
- `summary`: finish the night record, log it with its reports, record the night in MLflow.
- `outcome`: what the night came to. It runs the one task named after it, so the grid tells
  nights apart at a glance: `night_promoted`, `night_rejected` (the gate or a human said no),
  `night_held` (waiting for approval, or out as a canary/shadow), `night_no_retrain`,
  `night_no_batch`, `night_quarantined`, `night_dry_run` (none: the night did not finish).
  It puts the run's **note**: the night's date and outcome (`2026-04-01: promoted v3 (was
  v2)`, `2026-04-02: rejected v4: <first reason>; v3 serving`, `... no batch`,
  `... quarantined: 2 failed expectation(s): ...`), through the REST API as the user of the
  connection `retrain_airflow_api` (the Task SDK cannot set a note); without that connection
  the note is only logged. Airflow 3.3 has no display name for a run: a manual run's id is
  `manual__<when it was triggered>`, so the note is where the night's date shows.
- `watcher`: runs only when a task failed, and fails the run with it.

Asset events: `assess` emits `retrain-accepted-data` when a batch was accepted (extra: night,
batch, rows, data_version); `night_promoted` emits `retrain-champion` (extra: night, version).

## How a night branches

- **Batch rejected**: `ingest` fails (red); its log ends with a short message (the first
  failed expectations, the quarantine folder, the report) and no traceback; a failure
  notification is sent, everything after it is skipped, `summary` still writes the night
  record, `night_quarantined` runs, and the run ends *failed*. No retry: the batch will not
  improve.
- **No batch** for the date: `assess` is skipped and the rest with it; the run succeeds.
- **No drift, not scheduled, not forced**: `assess` succeeds and skips the retraining tasks
  (skipped, not failed); the run succeeds.
- **Gate rejection**: `register_rejected` keeps the challenger tagged `rejected`; `register`
  (the promotion) and `deploy` are skipped; the run succeeds: a rejection is an outcome.
- **Approval required** (`deploy.approval: required`): the run waits at `approve`. Approved:
  `promote`, then `deploy`. Rejected, or no answer in time: `promote` and `deploy` are skipped,
  `summary` records the answer; the run succeeds. Either way the version is tagged
  `approval=approved|rejected|timed_out`, `approval.by`, `approval.reason`, the registry history
  has the event and the night record has it under `gate.approval`. While a run waits, the next
  night's run waits behind it (one run at a time).
- **Dry run**: stops after `gate`; nothing is registered or deployed.
- **An error** (DVC, MLflow, a busy workspace...): the task retries with exponential back-off,
  then fails and notifies; clearing the failed task resumes the night (every step is rerun-safe).

The night record is `reports/nights/<date>/summary.json` in the workspace; the `summary` task log
shows it, the report paths and the MLflow links (experiment `<mlflow.experiment>-nights`).

## Trigger a night by hand

*Trigger* (play button) opens a form: `date` (empty: the run's logical date), `batch` (a file;
default: the landing folder), `force_retrain`, `skip_deploy`, `dry_run`, `approval` (as
params.yaml, or required / not required for this night only). Values that break the schema
are refused before the run starts.

**Uncheck "Unpause on trigger"** when the DAG is paused and you want this one night only. The
box is checked by default; unpausing starts the schedule, and Airflow then creates the latest
missed 02:00 night at once (`catchup=False` still keeps that one), a night nobody asked for
(its date is today's: with the `date` left empty, the same night twice; due earlier, it
even starts first). A scheduled night whose date a triggered run has (waiting or running,
asked through the REST API as the note's user; or run already, as the night record says)
stops at `ingest` (skipped; the log and the note say which run) and leaves the night to it;
unpause deliberately, from the DAG's toggle, when the nights should start.

## Settings (environment, nothing committed)

- `RETRAIN_PARAMS` (Airflow Variable or env): the params file / workspace; default
  `<repo>/params.yaml`.
- `RETRAIN_SCHEDULE`: cron for the nightly run (default `0 2 * * *`, UTC). The DAG also runs
  when `retrain_monitor` emits the asset `retrain-live-trigger` (live drift or a live
  performance drop): the landed outcomes are that run's batch.
- `RETRAIN_RETRIES`: retries per task (default 2; back-off 2 min, x2, at most 30 min).
- `RETRAIN_APPROVAL_WINDOW_HOURS`: room for a human's answer in the run's `dagrun_timeout`
  (6 h + this, default 24); a longer `deploy.approval_timeout_minutes` is cut to fit, with a
  warning in the `approve` log.
- `RETRAIN_NOTIFICATIONS`: notification file (default `<reports>/notifications.jsonl`); e-mail,
  Slack or a webhook: see `pipelines/edges/notify.py`.
- `MLFLOW_TRACKING_URI`, `RETRAIN_DATASET_MIRROR`: as for the CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    ExceptionRetryPolicy,
    Param,
    RetryAction,
    RetryRule,
    TaskGroup,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

from pipelines import airflow_adapter as af  # Airflow + the standard library at import time
from pipelines.night.outcome import OUTCOME_WORDS  # the standard library only
from pipelines.settings import settings  # the standard library only

DEFAULT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
SETTINGS = settings()  # the RETRAIN_* environment (docs/operations.md#settings)
SCHEDULE = SETTINGS.schedule
RETRIES = SETTINGS.retries
NIGHT_TIMEOUT = timedelta(hours=6)
APPROVAL_WINDOW = timedelta(hours=SETTINGS.approval_window_hours)

# Add Airflow's own notifiers (e-mail, chat, webhook) here: see pipelines/airflow_adapter.py.
ON_FAILURE: list[Any] = [af.notifier("failure", DEFAULT_PARAMS)]
ON_PROMOTION: list[Any] = [af.notifier("promotion", DEFAULT_PARAMS)]
on_promotion = af.promotion_callback(ON_PROMOTION)


ACCEPTED_DATA, CHAMPION = Asset(af.ACCEPTED_DATA), Asset(af.CHAMPION)
# a rejected batch will not improve: no retry (other errors of ingest are retried)
NO_RETRY_ON_REJECTION = ExceptionRetryPolicy(
    rules=[RetryRule(exception=af.BatchRejected, action=RetryAction.FAIL, reason="batch rejected")]
)


def _night() -> af.Night:
    return af.night(DEFAULT_PARAMS)


@dag(
    dag_id="retrain_nightly",
    # the nightly cron, or at once when `retrain_monitor` asks for a retrain (live drift or a
    # live performance drop): the asset is emitted by its `request_retrain` task
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
        assets=[Asset("retrain-live-trigger")],
    ),
    # Airflow 3.3's schedule column draws a schedule with an asset as that asset alone: the
    # cron shows in this description (the DAG name's tooltip in the list, the Details tab),
    # in the timetable's summary and description (REST API) and as "Next Run" once unpaused
    description=f"Nightly on cron {SCHEDULE} (UTC), or at once when retrain_monitor emits "
    "the asset retrain-live-trigger (live drift or a performance drop).",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=NIGHT_TIMEOUT + APPROVAL_WINDOW,  # a night, and room for an approval
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
        "approval": Param(
            "params",
            type="string",
            enum=["params", "required", "none"],
            values_display={
                "params": "As params.yaml (deploy.approval)",
                "required": "Required for this night",
                "none": "Not required for this night",
            },
            title="Approval",
            description="Whether a human approves this night's challenger before it is "
            "promoted (the approve task waits for the answer).",
        ),
    },
)
def retrain_nightly() -> None:
    @task(task_id="ingest", retry_policy=NO_RETRY_ON_REJECTION)
    def ingest() -> dict[str, Any]:
        """Validate the night's batch; accept + version it, or quarantine it and fail."""
        return _night().ingest().to_dict()

    @task.branch(task_id="assess", trigger_rule=TriggerRule.ALL_DONE, outlets=[ACCEPTED_DATA])
    def assess(ingested: dict[str, Any] | None, *, outlet_events: Any = None) -> list[str]:
        """Drift and the retrain decision; skips the rest when there is nothing to retrain.
        Emits the accepted data version (Asset `retrain-accepted-data`)."""
        return _night().assess(ingested, outlet_events).branch

    def stage(name: str) -> Any:
        @task(task_id=name, doc_md=f"`dvc repro -s {name}` under the workspace lock.")
        def run_stage() -> None:
            _night().stage(name)

        return run_stage()

    @task.branch(task_id="gate")
    def gate() -> list[str]:
        """The promotion gate (`dvc repro -s gate`); branches on its verdict."""
        return _night().gate().branch

    @task(task_id="register", on_success_callback=on_promotion)
    def register() -> dict[str, Any]:
        """Gate passed: register the challenger and promote it to champion (or hold it as
        `pending` when `deploy.approval` is `required`)."""
        return _night().register("pass").to_dict()

    @task(task_id="register_rejected")
    def register_rejected() -> dict[str, Any]:
        """Gate failed: register the challenger, tagged rejected with the reasons."""
        return _night().register("fail").to_dict()

    @task.branch(task_id="needs_approval")
    def needs_approval(registration: dict[str, Any]) -> list[str]:
        """`approve` when `register` held the version for a human, else `promote`."""
        return _night().needs_approval(registration)

    approve = af.Approval(
        task_id="approve",
        default_params=DEFAULT_PARAMS,
        subject="Promote the night's challenger to champion?",  # the night's, at run time
        defaults=af.ApprovalOperator.REJECT,
        params={
            "reason": Param(
                None,
                type=["null", "string"],
                title="Reason",
                description="Why (recorded in the registry with your name).",
            )
        },
        response_timeout=APPROVAL_WINDOW,  # deploy.approval_timeout_minutes, at run time
        execution_timeout=timedelta(minutes=10),  # asking; the wait is not execution
        doc_md="A human approves the held version, or rejects it (the default on timeout).",
    )

    @task(
        task_id="promote",
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        on_success_callback=on_promotion,
    )
    def promote(registration: dict[str, Any]) -> dict[str, Any] | None:
        """Approved: record who approved it and make the version the champion."""
        answer = get_current_context()["ti"].xcom_pull(task_ids="approve", key="answer")
        return _night().promote(registration, answer)

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
        answer = ti.xcom_pull(task_ids="approve", key="answer")
        return _night().summary(af.task_states(), tags, answer).to_dict()

    @task.branch(task_id="outcome", trigger_rule=TriggerRule.ALL_DONE)
    def outcome(finished: dict[str, Any] | None) -> list[str]:
        """The night's outcome task (`night_<outcome>`) and the run's note."""
        ti = get_current_context()["ti"]
        return _night().outcome(finished, (ti.dag_id, ti.run_id))

    @task(task_id="night_promoted", outlets=[CHAMPION])
    def night_promoted(finished: dict[str, Any], *, outlet_events: Any = None) -> None:
        """A new champion: its Asset event (`retrain-champion`)."""
        af.promoted_event(finished, outlet_events)

    @task(
        task_id="watcher", trigger_rule=TriggerRule.ONE_FAILED, retries=0, on_failure_callback=None
    )
    def watcher() -> None:
        """Runs only when a task failed, and fails the run with it (the summary still ran)."""
        af.watch(af.task_states(), me="watcher")

    ingested = ingest()
    assessed = assess(ingested)
    # the pipeline's stages (`dvc repro -s`), as one group in the UI; task ids stay the stages'
    with TaskGroup("stages", prefix_group_id=False, tooltip="dvc repro, one task per stage"):
        stages = [*(stage(s) for s in af.NIGHT_STAGES[: af.NIGHT_STAGES.index("gate")]), gate()]
    steps = [ingested, assessed, *stages]
    for upstream, downstream in zip(steps, steps[1:], strict=False):
        upstream >> downstream
    # their buttons on the task's page: the version in MLflow, its run, the night's summary
    registered = af.with_links(register(), af.REGISTRATION_LINKS)
    rejected = af.with_links(register_rejected(), af.REGISTRATION_LINKS)
    asked, promoted = needs_approval(registered), promote(registered)
    roll_out, finish = deploy(registered), af.with_links(summary(), af.NIGHT_LINKS)
    steps[-1] >> [registered, rejected]
    asked >> [approve, promoted]
    approve >> promoted >> roll_out
    [roll_out, rejected] >> finish
    # what the night came to, as a task of its own: only the one that happened runs
    chosen = af.with_links(outcome(finish), af.NIGHT_LINKS)
    chosen >> af.with_links(night_promoted(finish), af.NIGHT_LINKS)
    for word in OUTCOME_WORDS[1:]:
        chosen >> af.EmptyOperator(task_id=f"night_{word}", doc_md=f"The night's outcome: {word}.")
    # not approve: Reject skips every task right after it (a failure of approve reaches the
    # watcher through promote, upstream_failed)
    [*steps, registered, rejected, asked, promoted, roll_out, finish] >> watcher()


retrain_nightly()
