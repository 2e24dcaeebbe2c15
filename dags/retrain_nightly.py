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

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipelines.edges.notify import NightNotifier, night_date, params_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PARAMS = REPO / "params.yaml"
SCHEDULE = os.environ.get("RETRAIN_SCHEDULE", "0 2 * * *")
RETRIES = int(os.environ.get("RETRAIN_RETRIES", "2"))
STOPPED_EARLY = ("no_batch", "batch_rejected", "no_retrain")
SERVING = "pipelines.serve.deploy"  # deploy(params, version) -> DeployResult (ok, reason, ...)

ON_FAILURE: list[Any] = [NightNotifier("failure", params_default=DEFAULT_PARAMS)]
ON_PROMOTION: list[Any] = [NightNotifier("promotion", params_default=DEFAULT_PARAMS)]

log = logging.getLogger("retrain_nightly")


# --------------------------------------------------------------------------- helpers (run in tasks)
def _night() -> tuple[Any, str]:
    """The params (typed, loaded once per task) and the night's date for the running task."""
    from pipelines.config import ConfigError, load_params
    from pipelines.night.run import parse_day

    ctx = get_current_context()
    path = params_file(DEFAULT_PARAMS)
    try:
        params = load_params(path)
    except ConfigError as err:  # a broken params file does not heal with retries
        raise AirflowFailException(str(err)) from None
    os.environ["RETRAIN_PARAMS"] = str(path.resolve())  # the DVC stages read the same file
    try:
        day = parse_day(night_date(ctx))
    except ValueError as err:
        raise AirflowFailException(str(err)) from None
    dag_run = ctx["dag_run"]
    who = getattr(dag_run, "triggering_user_name", None)
    os.environ["RETRAIN_ACTOR"] = f"airflow:{dag_run.dag_id}/{dag_run.run_id}" + (
        f" (triggered by {who})" if who else ""
    )
    return params, day


def _flag(name: str) -> Any:
    return get_current_context()["params"].get(name)


def _batch(params: Any, day: str) -> Path | None:
    """The ``batch`` param as a path (relative to the workspace), or None for the landing folder."""
    value = _flag("batch")
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else params.root / path
    if path.is_file():
        return path
    from pipelines.night.run import NightPaths

    if (NightPaths.of(params, day).accepted / f"{day}.parquet").is_file():
        log.info("batch %s is gone but night %s was accepted earlier: continuing", path, day)
        return None
    raise AirflowFailException(f"batch {path}: no such file")


def _run_stage(stage: str) -> tuple[Any, str]:
    """`dvc repro -s <stage>` under the workspace lock; returns (params, day)."""
    params, day = _night()
    from pipelines.night import run as nightly

    with nightly.night_lock(params):
        nightly.run_stage(params, stage)
    return params, day


def _register(expected: str) -> dict[str, Any]:
    params, day = _run_stage("register")

    reg = json.loads(params.paths.registration.read_text())
    if reg["verdict"] != expected:
        raise AirflowFailException(
            f"register acted on a gate verdict {reg['verdict']!r}, this branch is for "
            f"{expected!r}: the gate decision changed during the run; clear `gate` to redo it"
        )
    log.info(
        "night %s: %s v%s %s; champion is v%s",
        day,
        reg["model"],
        reg["version"],
        "promoted to champion" if expected == "pass" else "kept, tagged rejected",
        reg["champion"],
    )
    return {
        "model": reg["model"],
        "version": reg["version"],
        "verdict": reg["verdict"],
        "champion": reg["champion"],
        "previous_champion": (reg.get("event") or {}).get("previous_champion"),
        "run_id": reg["run_id"],
    }


def _serving() -> Any:
    """The serving module, or None when this installation has none (no error hidden: a
    module that exists but fails to import raises)."""
    import importlib
    import importlib.util

    try:
        spec = importlib.util.find_spec(SERVING)
    except ModuleNotFoundError:  # not even the package
        spec = None
    return importlib.import_module(SERVING) if spec is not None else None


def _stage_task(stage: str, doc: str) -> Any:
    @task(task_id=stage, doc_md=doc)
    def stage_task() -> None:
        _run_stage(stage)

    return stage_task()


# --------------------------------------------------------------------------- the DAG
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
            description="CSV or Parquet batch (absolute, or relative to the workspace). "
            "Empty: data/landing/<date>.csv|parquet.",
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
        params, day = _night()
        from pipelines.night import run as nightly

        batch = _batch(params, day)
        with nightly.night_lock(params):
            rec = nightly.ingest(params, day, batch, progress=log.info)
        if rec["outcome"] == "batch_rejected":
            v = rec["validation"]
            raise AirflowFailException(
                f"night {day}: batch {rec['batch']} REJECTED, {len(v['failed'])} failed "
                f"expectation(s): {'; '.join(v['failed'][:5])}. Quarantined in "
                f"{rec['quarantined_to']} (report {v['report']})."
            )
        return {
            "day": day,
            "outcome": rec["outcome"],
            "batch": rec["batch"],
            "rows": rec["rows"],
            "data_version": rec["data_version"],
        }

    @task.branch(task_id="assess", trigger_rule=TriggerRule.ALL_DONE)
    def assess() -> str | list[str]:
        """Drift and the retrain decision; skips the rest when there is nothing to retrain."""
        ingested = get_current_context()["ti"].xcom_pull(task_ids="ingest")
        if not ingested:
            raise AirflowSkipException("ingest did not accept a batch (see ingest): stopping")
        if ingested["outcome"] == "no_batch":
            raise AirflowSkipException(f"no batch landed for {ingested['day']}: nothing to do")
        params, day = _night()
        from pipelines.night import run as nightly

        with nightly.night_lock(params):
            rec = nightly.assess(params, day, bool(_flag("force_retrain")), progress=log.info)
        if rec["outcome"] == "no_retrain":
            log.info("night %s: no drift, not scheduled, not forced: retraining skipped", day)
            return []
        log.info("night %s: retraining (%s)", day, ", ".join(rec["retrain_reasons"]))
        return "window"

    @task.branch(task_id="gate")
    def gate() -> str | list[str]:
        """The promotion gate (`dvc repro -s gate`); branches on its verdict."""
        params, day = _run_stage("gate")

        decision = json.loads((params.paths.gate_decision).read_text())
        verdict = decision["verdict"]
        log.info("night %s: gate %s", day, verdict.upper())
        for reason in decision["reasons"]:
            log.info("  - %s", reason)
        log.info("gate report: %s", params.paths.stage("gate") / "report.md")
        if _flag("dry_run"):
            log.info("dry run: the challenger was judged; nothing is registered or deployed")
            return []
        return "register" if verdict == "pass" else "register_rejected"

    @task(task_id="register", on_success_callback=ON_PROMOTION)
    def register() -> dict[str, Any]:
        """Gate passed: register the challenger and promote it to champion."""
        return _register("pass")

    @task(task_id="register_rejected")
    def register_rejected() -> dict[str, Any]:
        """Gate failed: register the challenger, tagged rejected with the reasons."""
        return _register("fail")

    @task(task_id="deploy", retries=0)
    def deploy() -> dict[str, Any]:
        """Roll the promoted version out to serving (`pipelines.serve.deploy.deploy`).

        Not retried: a failed deploy has already put the champion alias back on the version
        that is serving, and a retry would serve a version the registry no longer names.
        """
        if _flag("skip_deploy"):
            raise AirflowSkipException("skip_deploy: champion promoted, serving left as it is")
        params, day = _night()
        serving = _serving()
        if serving is None:
            raise AirflowSkipException(
                f"serving not configured ({SERVING} does not exist): champion promoted in the "
                "registry, nothing deployed"
            )
        version = str(get_current_context()["ti"].xcom_pull(task_ids="register")["version"])
        result = serving.deploy(params, version=version)
        out: dict[str, Any] = json.loads(json.dumps(result.to_dict(), default=str))
        if not result.ok:
            raise AirflowFailException(
                f"night {day}: deploy of v{version} ({out.get('mode')}) failed: {result.reason}"
                + (f" ({'; '.join(out.get('checks') or [])})" if out.get("checks") else "")
            )
        log.info("night %s: v%s serving at %s (%s)", day, version, out.get("address"), out)
        return out

    @task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE)
    def summary() -> dict[str, Any]:
        """Finish the night record; log it, its reports and its MLflow links."""
        params, day = _night()
        ti = get_current_context()["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        from pipelines.edges import notify
        from pipelines.night import run as nightly
        from pipelines.night.summary import night_line

        dry_run = bool(_flag("dry_run"))
        registered = "success" in (states.get("register"), states.get("register_rejected"))
        judged = states.get("gate") == "success" and (dry_run or registered)
        rec = nightly.load_record(params, day)
        failed = sorted(
            t
            for t, s in states.items()
            if s in ("failed", "upstream_failed") and t not in ("summary", "watcher")
        )
        path = params.paths.night_record(day)
        if not (judged or rec.get("outcome") in STOPPED_EARLY):
            log.error(
                "night %s did not finish (failed: %s); its record so far: %s. Clear the failed "
                "task to resume the night.",
                day,
                ", ".join(failed) or "-",
                path,
            )
            return {"day": day, "outcome": None, "failed": failed, "summary": str(path)}
        with nightly.night_lock(params):
            if judged:
                nightly.mark_retrained(params, day)
            rec = nightly.finish(params, day, dry_run=dry_run)
        links = notify.publish_night(
            params, rec, tags={"airflow.dag_id": ti.dag_id, "airflow.run_id": ti.run_id}
        )
        log.info("%s", night_line(rec))
        log.info("night summary: %s", path)
        log.info("night reports: %s", rec.get("reports"))
        for key in ("validation", "drift"):
            report = (rec.get(key) or {}).get("report")
            if report:
                log.info("  %s report: %s", key, report)
        if rec.get("retrained"):
            log.info("  gate report: %s", params.paths.gate_report)
        for name, link in links.items():
            log.info("MLflow %s: %s", name.replace("_", " "), link)
        log.info("summary.json:\n%s", json.dumps(rec, indent=2, default=str))
        return {
            "day": day,
            "outcome": rec.get("outcome"),
            "serving": rec.get("serving"),
            "promoted": rec.get("promoted"),
            "gate": rec.get("gate"),
            "failed": failed,
            "summary": str(path),
            "mlflow": links,
        }

    @task(
        task_id="watcher",
        trigger_rule=TriggerRule.ONE_FAILED,
        retries=0,
        on_failure_callback=None,
    )
    def watcher() -> None:
        """Runs only when a task failed, and fails the run with it (the summary still ran)."""
        ti = get_current_context()["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        failed = sorted(t for t, s in states.items() if s == "failed" and t != ti.task_id)
        raise AirflowFailException(f"the night failed at: {', '.join(failed) or 'a task'}")

    steps = [
        ingest(),
        assess(),
        _stage_task("window", "Training window and fresh held-out rows (`dvc repro -s window`)."),
        _stage_task("validate", "Expectation suite on the evaluation rows."),
        _stage_task("drift", "Drift between the window's training and evaluation rows."),
        _stage_task("train", "Fit the challenger; MLflow run with lineage."),
        _stage_task("evaluate", "Metrics with bootstrap confidence intervals; plots."),
        _stage_task("fairness", "Per-group metrics and disparities."),
        gate(),
    ]
    for upstream, downstream in zip(steps, steps[1:], strict=False):
        upstream >> downstream
    promote, reject, roll_out = register(), register_rejected(), deploy()
    finish = summary()
    steps[-1] >> [promote, reject]
    promote >> roll_out
    [roll_out, reject] >> finish
    [*steps, promote, reject, roll_out, finish] >> watcher()


retrain_nightly()
