"""MLflow Model Registry edge: register, promote (aliases), reject, roll back, with an audit trail.

Aliases, not the deprecated stages: ``champion`` is the serving model, ``previous`` the one
before it, ``pending`` a gate-passed version held for a human's approval, ``rollout`` one held
to go out beside the champion as a canary or shadow (the release plan,
:mod:`pipelines.release.plan`, says which), while the champion keeps serving. Every event
(promotion, rejection, override, rollback, registration for approval, approval answer) is
recorded with who, why and when as version tags in the registry and as a line in the history
file.

A promotion's alias moves are one recoverable step: its intent (version, the champion and
``previous`` before it, who, why) is written as the registered model's tag ``promotion.intent``
before ``previous`` and then ``champion`` move, and taken off when all is done. A process killed
in between leaves the intent; the next promotion, rollback or night start completes it
(:func:`repair_promotion`), so ``previous == champion`` with rollback refused never stays.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pipelines import seams
from pipelines.config import Params
from pipelines.records import HoldForApproval, HoldForRollout, JsonRecord, Registration
from pipelines.settings import settings

CHAMPION = "champion"
PREVIOUS = "previous"
PENDING = "pending"  # gate passed, awaiting a human's approval; the champion is untouched
ROLLOUT = "rollout"  # gate passed, to go out beside the champion (canary/shadow) when it can
INTENT = "promotion.intent"  # registered-model tag: a promotion under way (its alias moves)
EVALUATED = "evaluated."  # version tags: its metrics on the held-out rows, set at registration
ACTOR_ENV = "RETRAIN_ACTOR"  # who acts, set for the stages by the night (e.g. the DAG run)
EventKind = Literal[
    "promotion",
    "rejection",
    "override",
    "rollback",
    "registration",
    "approval",
    "canary",
    "canary_abort",
    "signature",
]
Decision = Literal["approved", "rejected", "timed_out"]
DECISIONS: tuple[Decision, ...] = ("approved", "rejected", "timed_out")


log = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class Event(JsonRecord):
    kind: EventKind
    model: str
    version: str
    previous_champion: str | None
    actor: str
    reason: str
    at: str


def actor() -> str:
    """Who acts: $RETRAIN_ACTOR (set by the night for its stages), else the OS user."""
    return settings().actor or getpass.getuser()


def client(params: Params) -> Any:
    from mlflow import MlflowClient

    from pipelines.edges import tracking

    tracking.setup(params)
    return MlflowClient(tracking_uri=params.tracking_uri, registry_uri=params.tracking_uri)


def alias_version(c: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def champion_version(params: Params) -> str | None:
    return alias_version(client(params), params.mlflow.registered_model, CHAMPION)


def _record(params: Params, c: Any, ev: Event) -> Event:
    c.set_model_version_tag(ev.model, ev.version, f"{ev.kind}.at", ev.at)
    c.set_model_version_tag(ev.model, ev.version, f"{ev.kind}.by", ev.actor)
    c.set_model_version_tag(ev.model, ev.version, f"{ev.kind}.reason", ev.reason[:4900])
    path = params.paths.registry_history
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(ev.to_dict()) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return ev


def _event(
    params: Params, c: Any, kind: EventKind, version: str, reason: str, by: str | None = None
) -> Event:
    name = params.mlflow.registered_model
    return Event(
        kind=kind,
        model=name,
        version=str(version),
        previous_champion=alias_version(c, name, CHAMPION),
        actor=by or actor(),
        reason=reason,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def record_event(
    params: Params, kind: EventKind, version: str, reason: str, by: str | None = None
) -> Event:
    """Record an event on a version (its tags and a line of the registry history)."""
    c = client(params)
    return _record(params, c, _event(params, c, kind, version, reason, by=by))


def register(params: Params, run_id: str, model_uri: str, tags: dict[str, str]) -> str:
    """Register the run's model once; a rerun for the same run returns the same version.
    Through the client, not ``mlflow.register_model``, whose "already exists" lines on stderr
    read as errors in a task's log."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    c = client(params)
    name = params.mlflow.registered_model
    try:
        c.get_registered_model(name)
    except MlflowException:
        try:
            c.create_registered_model(name, description=f"Gated models for {params.dataset.name}")
        except MlflowException as err:  # created meanwhile by another process
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    existing = c.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if existing:
        version = str(max(int(v.version) for v in existing))
    else:
        model_id, source = None, model_uri
        if model_uri.startswith("models:/m-"):  # a logged model (MLflow 3)
            model_id = model_uri.removeprefix("models:/")
        elif model_uri.startswith("runs:/"):
            source = RunsArtifactRepository.get_underlying_uri(model_uri)
        mv = c.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
        version = str(mv.version)
    for k, v in tags.items():
        c.set_model_version_tag(name, version, k, v)
    return version


def describe(params: Params, version: str, description: str) -> None:
    """Set a version's description (what its page opens with)."""
    c = client(params)
    c.update_model_version(params.mlflow.registered_model, str(version), description=description)


def promote(
    params: Params,
    version: str,
    reason: str,
    kind: EventKind = "promotion",
    by: str | None = None,
) -> Event:
    """Make ``version`` the champion; the old champion stays reachable as ``previous``.
    ``by``: who acts (default :func:`actor`). A promotion a crash left half done is completed
    first."""
    c = client(params)
    name = params.mlflow.registered_model
    c.get_model_version(name, version)  # raises if it does not exist
    repair_promotion(params)
    ev = _event(params, c, kind, version, reason, by=by)
    if ev.previous_champion == str(version):
        return ev  # already champion: nothing to move, nothing to record twice
    c.set_registered_model_tag(name, INTENT, json.dumps(ev.to_dict()))
    return _move_aliases(params, c, ev)


def _move_aliases(params: Params, c: Any, ev: Event) -> Event:
    """The alias moves of a promotion whose intent is written; every step can be redone."""
    name, version, old = ev.model, ev.version, ev.previous_champion
    if old is not None:
        c.set_registered_model_alias(name, PREVIOUS, old)
    seams.point("registry.promotion")
    c.set_registered_model_alias(name, CHAMPION, version)
    c.set_model_version_tag(name, version, "status", "champion")
    if old is not None:
        c.set_model_version_tag(name, old, "status", "previous")
    if alias_version(c, name, PENDING) == version:  # held for approval: no longer waiting
        if ev.kind == "override":  # `retrain promote VERSION`: a human approving from the shell
            decide(params, version, "approved", ev.actor, ev.reason)
        c.delete_registered_model_alias(name, PENDING)
    if alias_version(c, name, ROLLOUT) == version:  # promoted by hand before it went out
        c.delete_registered_model_alias(name, ROLLOUT)
    _record(params, c, ev)
    c.delete_registered_model_tag(name, INTENT)
    return ev


def repair_promotion(params: Params) -> str | None:
    """Complete a promotion a crash left between its alias moves (its intent tag is still
    there); a line saying what was repaired, or None when nothing was half done. An intent
    whose champion was since moved by other means is dropped, nothing moved."""
    from mlflow.exceptions import MlflowException

    c = client(params)
    name = params.mlflow.registered_model
    try:
        raw = c.get_registered_model(name).tags.get(INTENT)
    except MlflowException:
        return None  # no registered model yet
    if not raw:
        return None
    ev = Event(**json.loads(raw))
    now = alias_version(c, name, CHAMPION)
    if now not in (ev.previous_champion, ev.version):
        c.delete_registered_model_tag(name, INTENT)
        line = (
            f"{name}: dropped an interrupted {ev.kind} of v{ev.version} ({ev.at}): the champion "
            f"is v{now} since, moved by other means"
        )
    else:
        _move_aliases(params, c, ev)
        before = f"v{ev.previous_champion}" if ev.previous_champion else "none"
        line = (
            f"{name}: completed an interrupted {ev.kind} ({ev.at}, by {ev.actor}): v{ev.version}"
            f" is champion, {before} previous"
        )
    log.warning("%s", line)
    return line


def hold(params: Params, version: str, reason: str) -> Event:
    """Register a gate-passed version for a human's approval: alias ``pending``, tag
    ``approval=pending``; ``champion`` (and serving) stay where they are. A rerun for the same
    version records nothing twice; a version already answered is left alone."""
    c = client(params)
    name = params.mlflow.registered_model
    tags = dict(c.get_model_version(name, version).tags)  # raises if it does not exist
    ev = _event(params, c, "registration", version, reason)
    if tags.get("approval") in DECISIONS or ev.previous_champion == str(version):
        return ev
    if alias_version(c, name, PENDING) == str(version) and tags.get("approval") == "pending":
        return ev
    c.set_registered_model_alias(name, PENDING, str(version))
    c.set_model_version_tag(name, str(version), "status", "awaiting_approval")
    c.set_model_version_tag(name, str(version), "approval", "pending")
    return _record(params, c, ev)


def hold_for_rollout(params: Params, version: str, mode: str, reason: str) -> Event:
    """Register a gate-passed version to go out beside the champion (``mode`` canary|shadow):
    alias ``rollout``, tag ``status=held_for_<mode>``; ``champion`` stays where it is until the
    canary decision. A rerun for the same version records nothing twice."""
    c = client(params)
    name = params.mlflow.registered_model
    c.get_model_version(name, version)  # raises if it does not exist
    ev = _event(params, c, "registration", version, f"held for a {mode} rollout: {reason}")
    if alias_version(c, name, ROLLOUT) == str(version) or ev.previous_champion == str(version):
        return ev
    c.set_registered_model_alias(name, ROLLOUT, str(version))
    c.set_model_version_tag(name, str(version), "status", f"held_for_{mode}")
    return _record(params, c, ev)


def decide(params: Params, version: str, decision: Decision, by: str, reason: str) -> Event:
    """Record a human's answer on a version held for approval (tags ``approval``,
    ``approval.by|at|reason``; the history). Approval does not promote (see :func:`promote`);
    a rejection or a timeout takes the ``pending`` alias off it. Recording the same answer twice
    (a rerun) writes nothing the second time."""
    if decision not in DECISIONS:
        raise RegistryError(f"unknown approval decision {decision!r}; one of {list(DECISIONS)}")
    c = client(params)
    name = params.mlflow.registered_model
    tags = dict(c.get_model_version(name, version).tags)
    ev = _event(params, c, "approval", version, f"{decision}: {reason}", by=by)
    if tags.get("approval") == decision:
        return ev
    c.set_model_version_tag(name, str(version), "approval", decision)
    if decision != "approved":
        c.set_model_version_tag(name, str(version), "status", "not_approved")
        before = c.get_model_version(name, str(version)).description or ""
        head = f"NOT APPROVED ({decision.replace('_', ' ')} by {by}): {reason}"
        describe(params, version, f"{head}\n\n{before}"[:4900])
        if alias_version(c, name, PENDING) == str(version):
            c.delete_registered_model_alias(name, PENDING)
    return _record(params, c, ev)


def approval(params: Params, version: str) -> dict[str, str] | None:
    """The approval tags of a version (``decision``, ``by``, ``at``, ``reason``), or None when it
    was never held for approval."""
    tags = dict(client(params).get_model_version(params.mlflow.registered_model, version).tags)
    if "approval" not in tags:
        return None
    out = {"decision": tags["approval"]}
    for key in ("by", "at", "reason"):
        if f"approval.{key}" in tags:
            out[key] = tags[f"approval.{key}"]
    return out


def reject(params: Params, version: str, reasons: list[str]) -> Event:
    """Keep a version that failed the gate, tagged as rejected with the reasons."""
    c = client(params)
    name = params.mlflow.registered_model
    c.set_model_version_tag(name, str(version), "status", "rejected")
    ev = _event(params, c, "rejection", version, "; ".join(reasons))
    return _record(params, c, ev)


def rollback(params: Params, to: str | None = None, reason: str = "rollback") -> Event:
    """Restore ``to`` (default: the ``previous`` alias) as champion."""
    repair_promotion(params)
    c = client(params)
    name = params.mlflow.registered_model
    target = to or alias_version(c, name, PREVIOUS)
    if target is None:
        raise RegistryError(f"{name}: no previous champion to roll back to (alias '{PREVIOUS}')")
    current = alias_version(c, name, CHAMPION)
    if current == str(target):
        raise RegistryError(f"{name}: version {target} is already the champion")
    return promote(params, str(target), reason, kind="rollback")


def evaluated_metric(params: Params, version: str, metric: str) -> float | None:
    """A version's metric as the gate measured it on held-out rows (tag ``evaluated.<metric>``,
    set when it was registered), or None for a version registered without it."""
    c = client(params)
    tags = c.get_model_version(params.mlflow.registered_model, str(version)).tags
    value = tags.get(f"{EVALUATED}{metric}")
    return None if value is None else float(value)


def registration_line(reg: Registration) -> str:
    """What the ``register`` stage did (its plan), in one line; how to approve a held version."""
    champion = f"v{reg.champion}" if reg.champion else "none yet"
    now = f"champion v{reg.champion} keeps serving" if reg.champion else "no champion yet"
    step = reg.plan
    if isinstance(step, HoldForApproval):
        return (
            f"{reg.model} v{reg.version} registered as '{PENDING}', AWAITING APPROVAL; {now} "
            f"(approve: retrain promote {reg.version} --reason '...')"
        )
    if isinstance(step, HoldForRollout):
        return (
            f"{reg.model} v{reg.version} registered, to go out in {step.mode} mode beside "
            f"the champion; {now}"
        )
    action = "promoted to champion" if reg.promoted else "kept, tagged rejected"
    return f"{reg.model} v{reg.version} {action}; champion is {champion}"


def read_history(params: Params) -> list[dict[str, Any]]:
    path = params.paths.registry_history
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
