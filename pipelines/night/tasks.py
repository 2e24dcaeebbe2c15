"""The night as the Airflow DAG runs it: one method per task, each returning a typed result.

``dags/retrain_nightly.py`` only wires: each task builds a :class:`Night` from its context and
calls one method here; results travel between tasks as TaskFlow return values (``to_dict()``),
and a branching task's result names the branch. The steps are the ones ``retrain nightly``
runs (:mod:`pipelines.night.run`), each under the workspace lock. Outcomes that end a run
early raise Airflow's skip / fail exceptions with a message that says what happened and where
the evidence is.

With ``deploy.approval: required``, ``register`` holds the version as ``pending`` and
``approve`` (an ApprovalOperator) asks a :class:`Question`; its :class:`Answer` is recorded by
``promote`` (approved: then the champion moves) or by ``summary`` (rejected, timed out).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipelines.config import ConfigError, Params, load_params
from pipelines.edges import airflow as af
from pipelines.night.approval import (  # noqa: F401 - Question/Answer: Night's types
    APPROVAL_RESERVE,
    Answer,
    Question,
    answer_of,
    approval_timeout,
    run_deadline,
)
from pipelines.night.lock import night_lock
from pipelines.night.record import load_record, mark_retrained, parse_day
from pipelines.records import Registration
from pipelines.stages import NIGHT_STAGES

log = logging.getLogger("retrain_nightly")
SERVING = "pipelines.serve.deploy"  # deploy(params, version) -> DeployResult (ok, reason, ...)
REGISTER = {"pass": "register", "fail": "register_rejected"}
APPROVE, PROMOTE = "approve", "promote"  # the tasks needs_approval chooses between


class _Result:
    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))  # type: ignore[call-overload]


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

    @classmethod
    def of(cls, context: Mapping[str, Any], default_params: Path) -> Night:
        path = af.params_file(default_params)
        try:
            params = load_params(path)
            day = parse_day(af.night_date(context))
        except (ConfigError, ValueError) as err:  # neither heals with retries
            raise AirflowFailException(str(err)) from None
        form = dict(context.get("params") or {})
        if af.asked_by_monitor(context) and not form.get("date"):
            # retrain_monitor's asset event (live drift or a drop): the night its outcomes
            # landed for, retrained whatever the batch's own drift says
            from pipelines.monitor.run import open_day

            day = open_day(params, date.fromisoformat(day))
            form["force_retrain"] = True
        return cls(params, day, form, af.actor(context))

    def _batch(self) -> Path | None:
        """The ``batch`` param as a path (relative to the workspace), or None: the landing."""
        value = self.form.get("batch")
        if not value:
            return None
        path = Path(value).expanduser()
        path = path if path.is_absolute() else self.params.root / path
        if path.is_file():
            return path
        if self.params.paths.accepted_batch(self.day).is_file():
            log.info(
                "batch %s is gone but night %s was accepted earlier: continuing", path, self.day
            )
            return None
        raise AirflowFailException(f"batch {path}: no such file")

    # ------------------------------------------------------------------ tasks
    def ingest(self) -> Ingested:
        """Validate the batch; accept + version it, or quarantine it and fail the task."""
        from pipelines.night.ingest import ingest

        batch = self._batch()
        with night_lock(self.params):
            rec = ingest(self.params, self.day, batch, progress=log.info)
        if rec.outcome == "batch_rejected":
            failed = rec.failed_expectations
            raise AirflowFailException(
                f"night {self.day}: batch {rec.batch} REJECTED, {len(failed)} failed "
                f"expectation(s): {'; '.join(failed[:5])}. Quarantined in "
                f"{rec.quarantined_to} (report {(rec.validation or {}).get('report')})."
            )
        return Ingested(self.day, rec.outcome, rec.batch, rec.rows, rec.data_version)

    def assess(self, ingested: Mapping[str, Any] | None) -> Assessed:
        """Drift and the retrain decision; skips the rest when there is nothing to retrain."""
        from pipelines.night.assess import assess

        if not ingested:
            raise AirflowSkipException("ingest did not accept a batch (see ingest): stopping")
        if ingested["outcome"] == "no_batch":
            raise AirflowSkipException(f"no batch landed for {self.day}: nothing to do")
        with night_lock(self.params):
            rec = assess(self.params, self.day, bool(self.form.get("force_retrain")), log.info)
        if rec.outcome == "no_retrain":
            log.info("night %s: no drift, not scheduled, not forced: retraining skipped", self.day)
            return Assessed(self.day, False, [], [])
        log.info("night %s: retraining (%s)", self.day, ", ".join(rec.retrain_reasons))
        return Assessed(self.day, True, rec.retrain_reasons, [NIGHT_STAGES[0]])

    def stage(self, name: str) -> None:
        """`dvc repro -s <stage>` under the workspace lock."""
        from pipelines.night.run import run_stage

        with night_lock(self.params):
            run_stage(self.params, name, actor=self.actor)

    def gate(self) -> Judged:
        """The promotion gate; its verdict picks the registration branch."""
        from pipelines.files import read_json

        self.stage("gate")
        paths = self.params.paths
        decision = read_json(paths.gate_decision)
        verdict = decision["verdict"]
        log.info("night %s: gate %s", self.day, verdict.upper())
        for reason in decision["reasons"]:
            log.info("  - %s", reason)
        log.info("gate report: %s", paths.gate_report)
        branch = [REGISTER[verdict]]
        if self.form.get("dry_run"):
            log.info("dry run: the challenger was judged; nothing is registered or deployed")
            branch = []
        return Judged(self.day, verdict, decision["reasons"], str(paths.gate_report), branch)

    def register(self, expected: str) -> Registration:
        """Register the challenger: promoted (``pass``) or kept, tagged rejected (``fail``)."""
        from pipelines.night.summary import registration_line

        self.stage("register")
        reg = Registration.read(self.params.paths.registration)
        if reg.verdict != expected:
            raise AirflowFailException(
                f"register acted on a gate verdict {reg.verdict!r}, this branch is for "
                f"{expected!r}: the gate decision changed during the run; clear `gate` to redo it"
            )
        log.info("night %s: %s", self.day, registration_line(reg))
        return reg

    def needs_approval(self, registration: Mapping[str, Any]) -> list[str]:
        """``approve`` when ``register`` held the version for a human, else ``promote``."""
        from pipelines.edges import registry

        reg = Registration.from_dict(registration)
        if registry.awaiting_approval(reg) and self.params.deploy.approval == "required":
            log.info("v%s awaits approval; v%s keeps serving", reg.version, reg.champion)
            return [APPROVE]
        return [PROMOTE]

    def ask(self, registration: Mapping[str, Any], deadline: datetime | None) -> Question:
        """The question ``approve`` puts to a human, and how long it waits for the answer."""
        from pipelines.night.summary import approval_question

        reg = Registration.from_dict(registration)
        minutes = self.params.deploy.approval_timeout_minutes
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
        """After an approval: record it, make the version the champion. Without approval asked,
        ``register`` promoted already: nothing to do (None: no promotion callbacks)."""
        from pipelines.edges import registry

        reg = Registration.from_dict(registration)
        if not registry.awaiting_approval(reg):
            log.info("night %s: no approval asked; register promoted v%s", self.day, reg.version)
            return None
        asked = self.params.deploy.approval == "required"
        if asked and (not answer or answer.get("decision") != "approved"):
            raise AirflowFailException(f"v{reg.version} was not approved ({answer}): not promoted")
        with night_lock(self.params):
            if asked:
                self.record_answer(answer or {}, reg.version)
            if self.params.deploy.rollout != "direct":  # beside the champion first
                from pipelines.canary.control import release_held

                log.info(
                    "v%s out beside the champion: %s", reg.version, release_held(self.params, reg)
                )
                return None
            why = f"approved by {answer['by']}: {answer['reason']}" if answer else "gate passed"
            ev = registry.promote(self.params, reg.version, reason=why, by=self.actor)
        log.info("v%s promoted to champion (was v%s)", reg.version, ev.previous_champion)
        out = Registration(reg.model, reg.version, "pass", reg.version, reg.run_id, ev.to_dict())
        return out.to_dict()

    def deploy(self, registration: Mapping[str, Any]) -> dict[str, Any]:
        """Roll the promoted version out to serving. Not retried (see the DAG): a failed deploy
        has already put the champion alias back on the version that is serving."""
        if self.form.get("skip_deploy"):
            raise AirflowSkipException("skip_deploy: champion promoted, serving left as it is")
        if self.params.deploy.rollout != "direct":
            raise AirflowSkipException("a canary/shadow is out: serving follows the alias itself")
        serving = _serving()
        if serving is None:
            raise AirflowSkipException(
                f"serving not configured ({SERVING} does not exist): champion promoted in the "
                "registry, nothing deployed"
            )
        version = str(registration["version"])
        result = serving.deploy(self.params, version=version)
        out: dict[str, Any] = json.loads(json.dumps(result.to_dict(), default=str))
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
        from pipelines.night.run import finish
        from pipelines.night.summary import night_line

        path = self.params.paths.night_record(self.day)
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
        for key in ("validation", "drift"):
            report = (getattr(rec, key) or {}).get("report")
            if report:
                log.info("  %s report: %s", key, report)
        if rec.retrained:
            log.info("  gate report: %s", self.params.paths.gate_report)
        for name, link in links.items():
            log.info("MLflow %s: %s", name.replace("_", " "), link)
        log.info("summary.json:\n%s", json.dumps(rec.to_dict(), indent=2, default=str))
        return Finished(
            self.day, rec.outcome, str(path), failed, rec.serving, rec.promoted, rec.gate, links
        )


def failed_tasks(states: Mapping[str, str | None]) -> list[str]:
    """The tasks of a run that failed (or could not run because one did)."""
    skip = {"summary", "watcher"}
    return sorted(
        t for t, s in states.items() if s in ("failed", "upstream_failed") and t not in skip
    )


def watch(states: Mapping[str, str | None], me: str) -> None:
    """The watcher runs only when a task failed, and fails the run with it."""
    failed = sorted(t for t, s in states.items() if s == "failed" and t != me)
    raise AirflowFailException(f"the night failed at: {', '.join(failed) or 'a task'}")


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
