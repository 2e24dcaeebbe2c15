"""The Airflow edge: everything the DAGs need of Airflow and of the pipeline, in one module.

It is over 400 lines on purpose: the whole adapter between Airflow and the domain, so that
``pipelines/night``, ``monitor``, ``release`` and ``stages`` import nothing of Airflow.

- the run's context: the params file (Variable ``RETRAIN_PARAMS``), the night's date, who
  triggered it, whether the monitor's asset event started it;
- :class:`Night`: one method per task of ``retrain_nightly``, each calling the same domain code
  as ``retrain nightly`` (:mod:`pipelines.night.run`) and returning a typed result; outcomes that
  end a run early become Airflow's skip / fail exceptions with a message that says what happened
  and where the evidence is;
- :class:`Approval`: Airflow's ApprovalOperator asking the night's question (the release plan
  held the version for a human, :mod:`pipelines.release.plan`);
- :class:`NightNotifier` and the callbacks: failures and promotions as lines in the
  notifications file (:mod:`pipelines.edges.notify`).

Only Airflow and the standard library are imported at module level (the DAG file imports this
module at parse time for :class:`Approval`): the pipeline's modules are imported inside the
methods.

Sending notifications elsewhere uses Airflow's own notifiers next to :class:`NightNotifier`
(callbacks take a list); connections come from the environment (``AIRFLOW_CONN_<ID>``), so
nothing machine-specific is committed. Extend :data:`ON_FAILURE` / :data:`ON_PROMOTION`:

- e-mail (``apache-airflow-providers-smtp``, installed)::

      from airflow.providers.smtp.notifications.smtp import SmtpNotifier
      ON_FAILURE.append(SmtpNotifier(
          to="{{ var.value.retrain_alert_to }}", smtp_conn_id="smtp_default",
          subject="retrain_nightly: {{ ti.task_id }} failed",
          html_content="{{ exception }}<br>{{ ti.log_url }}"))
      # AIRFLOW_CONN_SMTP_DEFAULT='smtp://user:password@smtp.example.com:587'

- Slack (``pip install apache-airflow-providers-slack``): ``SlackWebhookNotifier``; any
  webhook (``pip install apache-airflow-providers-http``): ``HttpNotifier``.

A provider notifier imported at module level costs parse time; the structure test
(``tests/dags/test_dag_structure.py``) tells you if it is too much.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.standard.operators.empty import EmptyOperator as EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator as ApprovalOperator
from airflow.sdk import Asset, BaseNotifier, BaseOperatorLink, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipelines.stages import NIGHT_STAGES as NIGHT_STAGES  # a tuple of names: imports nothing else

if TYPE_CHECKING:  # the pipeline's modules are imported inside the methods (parse time)
    from pipelines.config import Params
    from pipelines.records import Registration
    from pipelines.release.approval import Question

# --------------------------------------------------------------------------- context
PARAMS_VARIABLE = "RETRAIN_PARAMS"  # Airflow Variable (AIRFLOW_VAR_RETRAIN_PARAMS) or plain env


def quiet_library_deprecations() -> None:
    """Drop Airflow's DeprecatedImportWarning raised from other libraries' code, in a task's
    process: a library that looks an object up in every loaded module (a model loader finding
    a class's module) touches each of Airflow's moved names once, some thousand warnings in
    the task log. Warnings raised from our own code (``pipelines``, the DAG files) still show;
    the ruff AIR3 rules keep our imports off Airflow's deprecated paths."""
    import warnings

    from airflow.utils.deprecation_tools import DeprecatedImportWarning

    ours = r"(?!pipelines\b|dags\b|unusual_prefix_)"  # not ours (DAG files: unusual_prefix_)
    warnings.filterwarnings("ignore", category=DeprecatedImportWarning, module=ours)


def params_file(default: Path) -> Path:
    """The params file a task uses: Airflow Variable ``RETRAIN_PARAMS`` (from the environment
    as ``AIRFLOW_VAR_RETRAIN_PARAMS`` or from the metastore), else env ``RETRAIN_PARAMS``,
    else ``default``. Call it inside a task (a Variable lookup is a call to the API server)."""
    from airflow.sdk import Variable

    from pipelines.settings import settings

    value = Variable.get(PARAMS_VARIABLE, default=None)
    return Path(value).expanduser() if value else (settings().params or default)


def night_date(context: Mapping[str, Any]) -> str:
    """The night a run is for: the ``date`` param when given, else the date (UTC) of the run's
    logical date, or of when it was due to run for a manual run without one."""
    value = (context.get("params") or {}).get("date")
    if value:
        return str(value)
    dag_run = context["dag_run"]
    when = dag_run.logical_date or dag_run.run_after
    return cast(str, when.astimezone(UTC).date().isoformat())


def actor(context: Mapping[str, Any]) -> str:
    """Who acts for the registry: the DAG run, and the user who triggered it by hand."""
    dag_run = context["dag_run"]
    who = getattr(dag_run, "triggering_user_name", None)
    return f"airflow:{dag_run.dag_id}/{dag_run.run_id}" + (f" (triggered by {who})" if who else "")


def asked_by_monitor(context: Mapping[str, Any]) -> bool:
    """Whether the run was started by an asset event (``retrain_monitor`` asking for a retrain)."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(run_type, "value", run_type)) == "asset_triggered"


# --------------------------------------------------------------------------- tasks
log = logging.getLogger("retrain_nightly")
ACCEPTED_DATA = "retrain-accepted-data"  # Asset: a night accepted a batch (a new data version)
CHAMPION = "retrain-champion"  # Asset: a night made a new champion


class NightStops(SystemExit):
    """An expected end of a task that fails it: a SystemExit, so Airflow's task runner logs it
    as one line ("Task exited") instead of a traceback of its own frames. The message says what
    happened; the full story is logged just before."""


class BatchRejected(NightStops):
    """The night's batch failed validation: ``ingest`` fails, not retried (the DAG's retry
    policy names this class)."""


def skip(reason: str) -> AirflowSkipException:
    """A skip whose reason is the task log's last line of its own (Airflow logs a skip's reason
    only inside the collapsed "Post Execute" group)."""
    log.info("skipped: %s", reason)
    return AirflowSkipException(reason)


# the branch by the gate's verdict; what "not enough evidence" leads to is the release plan's
REGISTER = {"pass": "register", "fail": "register_rejected", "insufficient": "register_rejected"}
APPROVE, PROMOTE = "approve", "promote"  # the tasks needs_approval chooses between


class _Result:
    """A task's result (its XCom): :class:`pipelines.records.JsonRecord`'s JSON form, imported
    when a task runs, never when the DAG file is parsed."""

    def to_dict(self) -> dict[str, Any]:
        from pipelines.records import dump_record

        return dump_record(self)


@dataclass(frozen=True)
class Ingested(_Result):
    day: str
    outcome: str | None
    batch: str | None
    rows: int | None
    data_version: str | None


@dataclass(frozen=True)
class Assessed(_Result):
    day: str
    retrain: bool
    reasons: list[str]
    branch: list[str]  # the first stage to run, or nothing


@dataclass(frozen=True)
class Judged(_Result):
    day: str
    verdict: str
    reasons: list[str]
    report: str
    branch: list[str]  # register / register_rejected, or nothing on a dry run


@dataclass(frozen=True)
class Finished(_Result):
    day: str
    outcome: str | None
    summary: str
    failed: list[str]
    serving: str | None = None
    promoted: str | None = None
    gate: dict[str, Any] | None = None
    mlflow: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # the night's buttons (NightLink)


def moved_champion(result: Any) -> bool:
    """Whether a task's result (a registration) made its version the champion."""
    reg = result if isinstance(result, Mapping) else {}
    return reg.get("verdict") == "pass" and str(reg.get("champion")) == str(reg.get("version"))


@dataclass(frozen=True)
class Night:
    """One run of the DAG: the params (typed, loaded once per task), the night, the form."""

    params: Params
    day: str
    form: Mapping[str, Any]
    actor: str
    run: str = ""  # the DAG run's id
    scheduled: bool = False  # created by the schedule, not asked for by a person or an asset
    dag_id: str = "retrain_nightly"

    @classmethod
    def of(cls, context: Mapping[str, Any], default_params: Path) -> Night:
        from pipelines.config import ConfigError, load_params
        from pipelines.night.record import parse_day

        quiet_library_deprecations()
        path = params_file(default_params)
        try:
            params = load_params(path)
            day = parse_day(night_date(context))
        except (ConfigError, ValueError) as err:  # neither heals with retries
            raise AirflowFailException(str(err)) from None
        form = dict(context.get("params") or {})
        if asked_by_monitor(context) and not form.get("date"):
            # retrain_monitor's asset event (live drift or a drop): the night its outcomes
            # landed for, retrained whatever the batch's own drift says
            from pipelines.monitor.run import open_day

            day = open_day(params, date.fromisoformat(day))
            form["force_retrain"] = True
        dag_run = context["dag_run"]
        run_type = getattr(dag_run, "run_type", None)
        scheduled = str(getattr(run_type, "value", run_type)) == "scheduled"
        run, dag_id = str(dag_run.run_id), str(dag_run.dag_id)
        return cls(params, day, form, actor(context), run, scheduled, dag_id)

    def taken_by(self) -> str | None:
        """For a scheduled run: the run that has its night instead, a run triggered by hand for
        the same date (waiting or running: unpausing on trigger adds this scheduled run too,
        and it may start first) or the run in the night's record; None: the night is its own."""
        from pipelines.night.record import load_record

        if not self.scheduled:
            return None
        other = triggered_night(self.dag_id, self.day, self.run)
        if other is None and self.params.paths.night_record(self.day).is_file():
            held = load_record(self.params, self.day).run
            other = held if held and held != self.run else None
        return other

    def _batch(self) -> Path | None:
        """The ``batch`` param as a path (relative to the workspace), or None: the landing."""
        value = self.form.get("batch")
        if not value:
            return None
        from pipelines.night.ingest import confine_batch

        path = Path(value).expanduser()
        path = path if path.is_absolute() else self.params.root / path
        if path.is_file() or path.is_symlink():
            try:  # inside the landing (or nightly.batch_folders), no symlink
                return confine_batch(self.params, path)
            except ValueError as err:
                raise AirflowFailException(str(err)) from None
        if self.params.paths.accepted_batch(self.day).is_file():
            log.info(
                "batch %s is gone but night %s was accepted earlier: continuing", path, self.day
            )
            return None
        raise AirflowFailException(f"batch {path}: no such file")

    # ------------------------------------------------------------------ tasks
    def ingest(self) -> Ingested:
        """Validate the batch; accept + version it, or quarantine it and fail the task."""
        from pipelines.lock import night_lock
        from pipelines.night.ingest import ingest
        from pipelines.night.record import claim_night

        batch = self._batch()
        with night_lock(self.params):
            other = self.taken_by() or claim_night(
                self.params, self.day, self.run, only_if_new=self.scheduled
            )
            if other:
                raise skip(
                    f"night {self.day} is run by {other}: this scheduled run leaves it to that "
                    f"one (trigger a run with date {self.day} to run the night again)"
                )
            rec = ingest(self.params, self.day, batch, progress=log.info)
        if rec.outcome == "batch_rejected":
            from pipelines.night.outcome import rejected_batch_message

            report = rec.validation.report if rec.validation else None
            log.error("%s", rejected_batch_message(rec, report))
            raise BatchRejected(
                f"night {self.day}: batch REJECTED, quarantined in {rec.quarantined_to} "
                "(the failed expectations are above)"
            )
        return Ingested(self.day, rec.outcome, rec.batch, rec.rows, rec.data_version)

    def assess(self, ingested: Mapping[str, Any] | None, events: Any = None) -> Assessed:
        """Drift and the retrain decision; skips the rest when there is nothing to retrain.
        Runs only past an accepted batch: its Asset event (``events``, the task's outlet
        events) is the night's accepted data version."""
        from pipelines.lock import night_lock
        from pipelines.night.assess import assess

        if not ingested:
            raise skip("ingest did not accept a batch (see ingest): stopping")
        if ingested["outcome"] == "no_batch":
            raise skip(f"no batch landed for {self.day}: nothing to do")
        if events is not None:
            keys = ("batch", "rows", "data_version")
            events[Asset(ACCEPTED_DATA)].extra = {"night": self.day} | {
                k: ingested[k] for k in keys
            }
        with night_lock(self.params):
            rec = assess(self.params, self.day, bool(self.form.get("force_retrain")), log.info)
        if rec.outcome == "no_retrain":
            log.info("night %s: no drift, not scheduled, not forced: retraining skipped", self.day)
            return Assessed(self.day, False, [], [])
        log.info("night %s: retraining (%s)", self.day, ", ".join(rec.retrain_reasons))
        return Assessed(self.day, True, rec.retrain_reasons, [NIGHT_STAGES[0]])

    def stage(self, name: str) -> None:
        """`dvc repro -s <stage>` under the workspace lock."""
        from pipelines.lock import night_lock
        from pipelines.night.run import run_stage

        approval = self.form.get("approval")  # the form's "params": as params.yaml
        with night_lock(self.params):
            run_stage(self.params, name, self.actor, None if approval == "params" else approval)

    def gate(self) -> Judged:
        """The promotion gate; its verdict picks the registration branch."""
        from pipelines.files import read_json

        self.stage("gate")
        paths = self.params.paths
        decision = read_json(paths.gate_decision)
        verdict = decision["verdict"]
        # the stage printed the verdict and its reasons above: said once, not repeated here
        log.info("night %s: gate %s; report: %s", self.day, verdict.upper(), paths.gate_report)
        branch = [REGISTER[verdict]]
        if self.form.get("dry_run"):
            log.info("dry run: the challenger was judged; nothing is registered or deployed")
            branch = []
        return Judged(self.day, verdict, decision["reasons"], str(paths.gate_report), branch)

    def register(self, expected: str) -> Registration:
        """Register the challenger: promoted (``pass``) or kept, tagged rejected (``fail``)."""
        from pipelines.edges.registry import registration_line
        from pipelines.records import Registration

        self.stage("register")
        reg = Registration.read(self.params.paths.registration)
        if reg.verdict != expected:
            raise AirflowFailException(
                f"register acted on a gate verdict {reg.verdict!r}, this branch is for "
                f"{expected!r}: the gate decision changed during the run; clear `gate` to redo it"
            )
        log.info("night %s: %s", self.day, registration_line(reg))
        push_links(self.registration_links(reg))
        return reg

    def registration_links(self, reg: Registration) -> dict[str, str]:
        """The registered version's page and its training run in the MLflow UI, on the
        address a user's browser reaches (``RETRAIN_MLFLOW_UI_URL``); none without one."""
        from pipelines.edges import tracking

        base = tracking.ui_base(self.params)
        if base is None:
            return {}
        links = {VERSION_LINK.key: version_url(base, reg.model, reg.version)}
        try:
            from mlflow import MlflowClient

            uri = self.params.tracking_uri
            experiment = MlflowClient(uri, uri).get_run(reg.run_id).info.experiment_id
        except Exception as err:  # a link is no reason to fail a registration
            log.warning("no link to run %s: %s", reg.run_id, err)
            return links
        return links | {RUN_LINK.key: tracking.run_url(self.params, experiment, reg.run_id)}

    def needs_approval(self, registration: Mapping[str, Any]) -> list[str]:
        """``approve`` when the release plan held the version for a human, else ``promote``."""
        from pipelines.records import Registration

        reg = Registration.from_dict(registration)
        if reg.held_for_approval:
            log.info("v%s awaits approval; v%s keeps serving", reg.version, reg.champion)
            return [APPROVE]
        return [PROMOTE]

    def ask(self, registration: Mapping[str, Any], deadline: datetime | None) -> Question:
        """The question ``approve`` puts to a human, and how long it waits for the answer."""
        from pipelines.night.summary import approval_question
        from pipelines.records import HoldForApproval, Registration
        from pipelines.release.approval import Question, approval_timeout

        reg = Registration.from_dict(registration)
        held = reg.plan if isinstance(reg.plan, HoldForApproval) else None
        minutes = held.timeout_minutes if held else self.params.deploy.approval_timeout_minutes
        now = datetime.now(UTC)
        timeout, cut = approval_timeout(minutes, now, deadline)
        if cut:
            msg = "approval_timeout_minutes %g: the run times out at %s; waiting %s only (%s)"
            log.warning(msg, minutes, deadline, timeout, "RETRAIN_APPROVAL_WINDOW_HOURS")
        subject, body = approval_question(self.params, reg, self.day, now + timeout)
        return Question(subject, body, timeout)

    def record_answer(self, answer: Mapping[str, Any], version: str) -> None:
        """The human's answer on the version's tags and in the registry history (idempotent)."""
        from pipelines.edges import registry

        by = answer.get("by") or f"nobody (no answer: {self.actor})"
        registry.decide(self.params, version, answer["decision"], by, answer["reason"])
        log.info("v%s %s by %s: %s", version, answer["decision"].upper(), by, answer["reason"])

    def promote(
        self, registration: Mapping[str, Any], answer: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """Carry out what the release plan left for after ``register``: a human's answer to a
        held version (approved: the plan's next step; else fail), or a version held for a
        rollout going out beside the champion. A plain promotion happened in ``register``:
        nothing to do (None: no promotion callbacks)."""
        from pipelines.edges import registry
        from pipelines.lock import night_lock
        from pipelines.records import HoldForApproval, HoldForRollout, Promote, Registration
        from pipelines.release.approval import Answer
        from pipelines.release.plan import answered

        reg = Registration.from_dict(registration)
        step = reg.plan
        if isinstance(step, HoldForApproval):
            if not answer or answer.get("decision") != "approved":
                raise AirflowFailException(
                    f"v{reg.version} was not approved ({answer}): not promoted"
                )
            step = answered(step, Answer(**answer))
            with night_lock(self.params):
                self.record_answer(answer, reg.version)
        if isinstance(step, HoldForRollout):
            from pipelines.release.canary.control import release_held

            with night_lock(self.params):
                out = release_held(self.params, reg.version, step)
            log.info("v%s out beside the champion: %s", reg.version, out)
            return None
        if not isinstance(step, Promote) or not reg.held_for_approval:
            log.info("night %s: register carried out the plan (%s)", self.day, reg.plan)
            return None
        with night_lock(self.params):
            ev = registry.promote(self.params, reg.version, reason=step.reason, by=self.actor)
        log.info("v%s promoted to champion (was v%s)", reg.version, ev.previous_champion)
        update = {"champion": reg.version, "event": ev.to_dict(), "plan": step}
        return reg.model_copy(update=update).to_dict()

    def deploy(self, registration: Mapping[str, Any]) -> dict[str, Any]:
        """Roll the promoted version out to serving. Not retried (see the DAG): a failed deploy
        has already put the champion alias back on the version that is serving."""
        from pipelines.lock import night_lock
        from pipelines.night.deploy import deploy_decision, record_deploy
        from pipelines.records import NightDeploy, Registration
        from pipelines.release import deploy

        reg = Registration.from_dict(registration)
        version = str(registration["version"])
        decision = deploy_decision(version, reg.plan, bool(self.form.get("skip_deploy")))
        if decision.version is None:  # the night's one policy: skip_deploy, or a rollout is out
            reason = decision.reason or "nothing to deploy"
            with night_lock(self.params):
                record_deploy(
                    self.params,
                    self.day,
                    NightDeploy(status="skipped", version=version, reason=reason),
                )
            raise skip(f"v{version} promoted; {reason}")
        result = deploy.deploy(self.params, version=decision.version)
        out: dict[str, Any] = result.to_dict()  # plain JSON (records.dump_record)
        done = NightDeploy(
            status="deployed" if result.ok else "failed",
            version=version,
            reason=result.reason,
            mode=result.mode,
            address=result.address,
        )
        with night_lock(self.params):
            record_deploy(self.params, self.day, done)
        if not result.ok:
            checks = out.get("checks") or []
            raise AirflowFailException(
                f"night {self.day}: deploy of v{version} ({out.get('mode')}) failed: "
                f"{result.reason}" + (f" ({'; '.join(checks)})" if checks else "")
            )
        log.info("night %s: v%s serving at %s (%s)", self.day, version, out.get("address"), out)
        return out

    def summary(
        self,
        states: Mapping[str, str | None],
        tags: Mapping[str, str],
        answer: Mapping[str, Any] | None = None,
    ) -> Finished:
        """Finish the night record (with a rejected or timed-out approval recorded first: the
        operator skipped ``promote``); record it in MLflow; log where everything is."""
        from pipelines.edges import notify
        from pipelines.lock import night_lock
        from pipelines.night.record import load_record, mark_retrained
        from pipelines.night.run import finish
        from pipelines.night.summary import night_line
        from pipelines.records import Registration

        path = self.params.paths.night_record(self.day)
        if self.scheduled and states.get("ingest") == "skipped":  # another run's night
            log.info("night %s belongs to another run (see ingest): nothing to sum up", self.day)
            return Finished(self.day, None, str(path), [])
        dry_run = bool(self.form.get("dry_run"))
        registered = "success" in (states.get("register"), states.get("register_rejected"))
        judged = states.get("gate") == "success" and (dry_run or registered)
        failed = failed_tasks(states)
        rec = load_record(self.params, self.day)
        if not (judged or rec.stopped_early):
            log.error(
                "night %s did not finish (failed: %s); its record so far: %s. Clear the failed "
                "task to resume the night.",
                self.day,
                ", ".join(failed) or "-",
                path,
            )
            return Finished(self.day, None, str(path), failed)
        with night_lock(self.params):
            if answer and answer.get("decision") != "approved":  # promote was skipped
                held = Registration.read(self.params.paths.registration)
                self.record_answer(answer, held.version)
            if judged:
                mark_retrained(self.params, self.day)
            rec = finish(self.params, self.day, dry_run=dry_run)
        links = notify.publish_night(self.params, rec, tags=tags)
        log.info("%s", night_line(rec))
        log.info("night summary: %s", path)
        for key, section in (("validation", rec.validation), ("drift", rec.drift)):
            if section is not None and section.report:
                log.info("  %s report: %s", key, section.report)
        if rec.retrained:
            log.info("  gate report: %s", self.params.paths.gate_report)
        for name, link in links.items():
            log.info("MLflow %s: %s", name.replace("_", " "), link)
        log.info("summary.json:\n%s", json.dumps(rec.to_dict(), indent=2, default=str))
        version = rec.challenger.version if rec.challenger else None
        night_links = self.night_links(links, version)
        push_links(night_links)
        return Finished(
            self.day,
            rec.outcome,
            str(path),
            failed,
            rec.serving,
            rec.promoted,
            rec.gate.model_dump(mode="json") if rec.gate else None,
            links,
            night_links,
        )

    def night_links(self, mlflow: Mapping[str, str], version: str | None) -> dict[str, str]:
        """The night's buttons: its HTML summary (an artifact of the night's MLflow run),
        that run, the challenger's run and version; only addresses a browser opens (the links
        ``publish_night`` made are instructions when no MLflow UI address is configured)."""
        from pipelines.edges import tracking

        web = {k: v for k, v in mlflow.items() if v.startswith(("http://", "https://"))}
        links = {}
        if "night_run" in web:
            links[SUMMARY_LINK.key] = f"{web['night_run']}/artifacts/{SUMMARY_ARTIFACT}"
            links[NIGHT_RUN_LINK.key] = web["night_run"]
        if "challenger_run" in web:
            links[RUN_LINK.key] = web["challenger_run"]
        base = tracking.ui_base(self.params)
        if base and version:
            model = self.params.mlflow.registered_model
            links[VERSION_LINK.key] = version_url(base, model, version)
        return links

    def outcome(self, finished: Mapping[str, Any] | None, run: tuple[str, str]) -> list[str]:
        """What the night came to, on the screens: the outcome task to run (``night_<word>``:
        a rejected or held night is not the same green as a promotion) and the run's note
        (the night's date and outcome; see :func:`set_run_note`)."""
        from pipelines.night.outcome import OUTCOME_WORDS, night_note, outcome_word
        from pipelines.night.record import load_record

        rec = load_record(self.params, self.day)
        other = None if finished and finished.get("outcome") else self.taken_by()
        if other:
            word, note = "not_run", f"{self.day}: not run by this scheduled run (run by {other})"
        elif finished and finished.get("outcome"):
            link = (finished.get("mlflow") or {}).get("night_run")
            word, note = outcome_word(rec), night_note(rec, link)
        else:
            failed = ", ".join((finished or {}).get("failed") or []) or "see the failed task"
            word, note = "unfinished", f"{self.day}: did not finish ({failed})"
        log.info("note: %s", note)
        set_run_note(*run, note)
        if finished and finished.get("outcome"):
            push_links(finished.get("links") or {})
        return [f"night_{word}"] if word in OUTCOME_WORDS else []


def promoted_event(finished: Mapping[str, Any], events: Any) -> None:
    """The Asset event of a night that made a new champion: its version and night (and the
    night's buttons on this task too)."""
    push_links(finished.get("links") or {})
    extra = {"night": finished["day"], "version": finished["promoted"], "outcome": "promoted"}
    log.info("champion v%s: Asset event %r", finished["promoted"], CHAMPION)
    if events is not None:
        events[Asset(CHAMPION)].extra = extra


def failed_tasks(states: Mapping[str, str | None]) -> list[str]:
    """The tasks of a run that failed (or could not run because one did)."""
    skip = {"summary", "watcher"}
    return sorted(
        t for t, s in states.items() if s in ("failed", "upstream_failed") and t not in skip
    )


def watch(states: Mapping[str, str | None], me: str) -> None:
    """The watcher runs only when a task failed, and fails the run with it."""
    failed = sorted(t for t, s in states.items() if s == "failed" and t != me)
    raise NightStops(f"the night failed at: {', '.join(failed) or 'a task'}")  # retries=0


# --------------------------------------------------------------------------- extra links
LINKS_XCOM = "links"  # a task's buttons: {NightLink.key: address}, pushed by the task itself
SUMMARY_ARTIFACT = "night/summary.html"  # the night's page among its MLflow run's artifacts


class NightLink(BaseOperatorLink):
    """A button on a night's task (an operator extra link, on the task instance's page): an
    address the task put in its XCom ``links`` under :attr:`key`; greyed out when it put none
    (no MLflow UI address a browser reaches, ``RETRAIN_MLFLOW_UI_URL``, or nothing to link).

    Airflow asks :meth:`get_link` on the worker as the task ends and keeps the answer as an
    XCom of its own (``_link_<class>``), which the UI shows: one class per button."""

    name = "link"
    key = "link"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # on the worker, ``ti_key`` is the running task instance (the Task SDK passes it)
        pull = getattr(ti_key, "xcom_pull", None)
        if pull is None:
            return ""
        links = pull(task_ids=ti_key.task_id, key=LINKS_XCOM) or {}
        link = links.get(self.key) if isinstance(links, Mapping) else None
        return link if isinstance(link, str) and link.startswith(("http://", "https://")) else ""


class NightSummaryLink(NightLink):
    name, key = "Night summary (HTML)", "summary"


class NightRunLink(NightLink):
    name, key = "MLflow: the night's run", "night_run"


class ChallengerRunLink(NightLink):
    name, key = "MLflow: the challenger's run", "run"


class ModelVersionLink(NightLink):
    name, key = "MLflow: the model version", "version"


SUMMARY_LINK, NIGHT_RUN_LINK = NightSummaryLink(), NightRunLink()
RUN_LINK, VERSION_LINK = ChallengerRunLink(), ModelVersionLink()
REGISTRATION_LINKS = (VERSION_LINK, RUN_LINK)  # register, register_rejected
NIGHT_LINKS = (SUMMARY_LINK, VERSION_LINK, RUN_LINK, NIGHT_RUN_LINK)  # summary, outcome, ...


def version_url(base: str, model: str, version: str) -> str:
    """A model version's page in the MLflow UI at ``base``."""
    import urllib.parse

    return f"{base}/#/models/{urllib.parse.quote(model, safe='')}/versions/{version}"


def push_links(links: Mapping[str, str]) -> None:
    """The running task's buttons (:class:`NightLink`), logged too (a log is read where the
    buttons are not)."""
    ti = get_current_context()["ti"]
    ti.xcom_push(key=LINKS_XCOM, value=dict(links))
    for key, link in links.items():
        log.info("link %s: %s", key, link)


def with_links(task: Any, links: tuple[NightLink, ...]) -> Any:
    """``task`` (a TaskFlow call's result, or an operator) showing ``links`` as buttons."""
    operator = getattr(task, "operator", task)
    operator.operator_extra_links = links
    return task


# --------------------------------------------------------------------------- the run's note
API_CONNECTION = (
    "retrain_airflow_api"  # AIRFLOW_CONN_RETRAIN_AIRFLOW_API='http://user:pw@host:port'
)


class AirflowApi:
    """Airflow's REST API as the user of the connection :data:`API_CONNECTION` (the Task SDK
    can neither put a run's note nor read other runs' forms)."""

    def __init__(self, base: str, login: str, password: str) -> None:
        self.base, self._auth, self._token = base, {"username": login, "password": password}, ""

    @classmethod
    def connect(cls) -> AirflowApi | None:
        """The API, or None when the connection is not configured (said in the log)."""
        from airflow.sdk import Connection

        try:
            conn = Connection.get(API_CONNECTION)
        except Exception:  # not configured
            log.info("no connection %r (see docs/operations.md)", API_CONNECTION)
            return None
        scheme = "https" if conn.conn_type == "https" else "http"
        base = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
        return cls(base, conn.login or "", conn.password or "")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; urllib's errors (OSError) are the caller's to handle."""
        import urllib.request

        if not self._token and path != "/auth/token":
            self._token = self.call("POST", "/auth/token", self._auth)["access_token"]
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")


def _run_path(dag_id: str, run_id: str) -> str:
    import urllib.parse

    return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def set_run_note(dag_id: str, run_id: str, note: str) -> bool:
    """Put ``note`` on the run through the REST API (:class:`AirflowApi`); without the
    connection the note is only logged. An API that refuses is logged, never fatal: the
    night's outcome does not depend on its note."""
    api = AirflowApi.connect()
    if api is None:
        return False
    try:
        api.call("PATCH", _run_path(dag_id, run_id), {"note": note})
    except (OSError, KeyError, ValueError) as err:  # urllib's errors are OSErrors
        log.warning("the run's note was not set: %s: %s", api.base, err)
        return False
    return True


def triggered_night(dag_id: str, day: str, me: str) -> str | None:
    """A run triggered by hand, queued or running, for the night ``day`` (its form's date, else
    the date it was due), other than ``me``; None when there is none or no API to ask."""
    api = AirflowApi.connect()
    if api is None:
        return None
    try:
        runs = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?state=queued&state=running")
    except (OSError, KeyError, ValueError) as err:
        log.warning("could not list the runs of %s: %s", dag_id, err)
        return None
    for run in runs.get("dag_runs", []):
        when = str(run.get("logical_date") or run.get("run_after") or "")[:10]
        night = (run.get("conf") or {}).get("date") or when
        if run["dag_run_id"] != me and run.get("run_type") == "manual" and night == day:
            return str(run["dag_run_id"])
    return None


# --------------------------------------------------------------------------- the DAG's parts
def night(default_params: Path) -> Night:
    """The running task's :class:`Night`."""
    return Night.of(get_current_context(), default_params)


def task_states() -> dict[str, Any]:
    """The states of the running DAG run's tasks."""
    ti = get_current_context()["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    return cast(dict[str, Any], states)


class Approval(ApprovalOperator):
    """Airflow's ApprovalOperator, asking the night's question with the plan's timeout (both
    known at run time only); its answer is kept as XCom ``answer``, also when Reject skips on.
    ``default_params``: the params file when no Variable names one."""

    def __init__(self, *, default_params: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_params = default_params

    def execute(self, context: Any) -> Any:
        from pipelines.release.approval import run_deadline

        registration = context["ti"].xcom_pull(task_ids="register")
        question = Night.of(context, self.default_params).ask(registration, run_deadline(context))
        self.subject, self.body = question.subject, question.body
        self.response_timeout = question.timeout
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from pipelines.records import HoldForApproval, Registration
        from pipelines.release.approval import answer_of

        if "error" not in event:
            registration = context["ti"].xcom_pull(task_ids="register") or {}
            held = Registration.from_dict(registration).plan if registration else None
            minutes = held.timeout_minutes if isinstance(held, HoldForApproval) else None
            context["ti"].xcom_push(key="answer", value=answer_of(event, minutes).to_dict())
        return super().execute_complete(context, event)


# --------------------------------------------------------------------------- notifications
def _default_path(params_default: Path | None) -> Path:
    """``<paths.reports>/notifications.jsonl`` of the params file in use."""
    try:
        pfile = params_file(params_default or Path("params.yaml"))
    except Exception:  # no API to ask (e.g. called outside a task): the env, then the default
        from pipelines.settings import settings

        pfile = settings().params or params_default or Path("params.yaml")
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
        from pipelines.edges.notify import EVENTS

        if event not in EVENTS:
            raise ValueError(f"unknown notification event {event!r}; events are {list(EVENTS)}")
        self.event = event
        self.message = message
        self.path = path
        self.params_default = Path(params_default) if params_default else None

    def target(self) -> Path:
        if self.path:
            return Path(self.path)
        from pipelines.settings import settings

        return settings().notifications or _default_path(self.params_default)

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
        from pipelines.edges.notify import notification

        return notification(
            self.event,
            message,
            dag_id=dag_id,
            run_id=context.get("run_id") or getattr(ti, "run_id", None),
            task_id=task_id,
            try_number=getattr(ti, "try_number", None),
            night=night,
            error=None if exc is None else type(exc).__name__,
            details=details,
            log_url=log_url,
        )

    def notify(self, context: Any) -> None:
        from pipelines.edges.notify import append_notification

        entry = self.entry(context)
        path = append_notification(self.target(), entry)
        level = self.log.error if self.event == "failure" else self.log.info
        level("notification (%s) %s [written to %s]", self.event, entry["message"], path)


def notifier(event: str, default_params: Path) -> Any:
    """A task callback that writes ``event`` (failure | promotion) to the notifications file."""

    def callback(context: Any) -> None:
        NightNotifier(event, params_default=default_params)(context)

    callback.__name__ = f"notify_{event}"
    return callback


def promotion_callback(callbacks: list[Any]) -> Any:
    """A success callback that runs ``callbacks`` when the task made a new champion (not a
    held ``register``)."""

    def on_promotion(context: Any) -> None:
        ti = context["ti"]
        if moved_champion(ti.xcom_pull(task_ids=ti.task_id)):
            for callback in callbacks:
                callback(context)

    return on_promotion
