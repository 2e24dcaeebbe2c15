"""The canary's edge: the registry alias and tags serving routes by, the prediction log it is
judged on, and the reports and notifications of a decision.

State lives in the registry, nowhere else: the alias ``canary`` names the challenger version and
its tags say ``canary.mode`` (canary | shadow), ``canary.share`` and ``canary.started``. The tags
are set before the alias, so serving never sees the alias without them; a promotion moves
``champion`` (keeping ``previous``) before it drops ``canary``, so a process killed in between
leaves a state the next call finishes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pandas as pd

from pipelines.config import Params
from pipelines.edges import registry
from pipelines.files import write_json, write_text
from pipelines.records import HoldForRollout, IsoSeconds, JsonRecord
from pipelines.release.canary.decide import MODES, CanaryDecision, Mode, decide
from pipelines.release.canary.report import render_markdown, summary_line

log = logging.getLogger("pipelines.release.canary")
CANARY = "canary"
TAG_MODE, TAG_SHARE, TAG_STARTED = "canary.mode", "canary.share", "canary.started"
TAG_RESULT = "canary.result"  # promoted | rolled_back
# Registry events of the canary (tags <kind>.at/.by/.reason and a line in the history file).
STARTED_EVENT, ABORTED_EVENT = "canary", "canary_abort"


@dataclass(frozen=True)
class Canary(JsonRecord):
    """The running canary, as the registry says."""

    model: str
    version: str
    mode: Mode
    share: float
    started: IsoSeconds


def current(params: Params) -> Canary | None:
    """The canary the alias names, or None."""
    c = registry.client(params)
    name = params.mlflow.registered_model
    version = registry.alias_version(c, name, CANARY)
    if version is None:
        return None
    tags = dict(c.get_model_version(name, version).tags)
    mode = tags.get(TAG_MODE, "canary")
    if mode not in MODES:
        raise registry.RegistryError(f"{name} v{version}: tag {TAG_MODE}={mode!r} is not a mode")
    started = tags.get(TAG_STARTED)
    if started is None:
        raise registry.RegistryError(f"{name} v{version}: alias {CANARY!r} without {TAG_STARTED}")
    share = float(tags.get(TAG_SHARE, params.deploy.canary.share))
    at = datetime.fromisoformat(started)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)  # a tag set by hand: UTC
    return Canary(name, version, cast(Mode, mode), share, at)


def start(params: Params, version: str, mode: Mode = "canary") -> Canary:
    """Put ``version`` beside the champion as ``mode`` (canary or shadow; the night passes its
    release plan's). Starting the running canary again changes nothing."""
    from mlflow.exceptions import MlflowException

    if mode not in MODES:
        raise ValueError(f"unknown canary mode {mode!r}; modes are {list(MODES)}")
    c = registry.client(params)
    name, version = params.mlflow.registered_model, str(version)
    try:
        c.get_model_version(name, version)
    except MlflowException:
        raise registry.RegistryError(f"{name}: no version {version}") from None
    champion = registry.alias_version(c, name, registry.CHAMPION)
    if champion is None:
        raise registry.RegistryError(f"{name}: no champion to compare a canary with")
    if champion == version:
        raise registry.RegistryError(f"{name}: v{version} is already the champion")
    running = current(params)
    if running is not None:
        if running.version == version and running.mode == mode:
            return running
        raise registry.RegistryError(
            f"{name}: canary v{running.version} ({running.mode}) is running since "
            f"{running.started.isoformat(timespec='seconds')}: promote or abort it first"
        )
    share = params.deploy.canary.share if mode == "canary" else 1.0  # shadow mirrors every request
    started = datetime.now(UTC).replace(microsecond=0)
    c.delete_model_version_tag(name, version, TAG_RESULT)  # a version canaried before
    c.set_model_version_tag(name, version, TAG_MODE, mode)
    c.set_model_version_tag(name, version, TAG_SHARE, f"{share:g}")
    c.set_model_version_tag(name, version, TAG_STARTED, started.isoformat())
    where = f"share {share:g} of requests" if mode == "canary" else "every request mirrored"
    _event(params, c, STARTED_EVENT, version, f"{mode} beside champion v{champion} ({where})")
    c.set_registered_model_alias(name, CANARY, version)
    return Canary(name, version, mode, share, started)


def release_held(params: Params, version: str, step: HoldForRollout) -> Canary | None:
    """The version the release plan held for a rollout goes out beside the champion in the
    plan's mode; its hold (alias ``rollout``, or ``pending`` after an approval) is lifted. None
    while another canary is out: the version stays held."""
    running = current(params)
    if running is not None and running.version != str(version):
        log.warning(
            "v%s stays held for the rollout: canary v%s is still out (decide, promote or "
            "abort it first)",
            version,
            running.version,
        )
        return None
    out = start(params, str(version), step.mode)
    c = registry.client(params)
    name = params.mlflow.registered_model
    for hold in (registry.ROLLOUT, registry.PENDING):
        if registry.alias_version(c, name, hold) == out.version:
            c.delete_registered_model_alias(name, hold)
    c.set_model_version_tag(name, out.version, "status", f"out_as_{out.mode}")
    return out


def status(
    params: Params, now: datetime | None = None, rows: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The canary, labelled rows per arm and the current decision. ``rows``: the labelled
    answers to judge (default: the prediction log joined with outcomes since the start)."""
    assessed = _assess(params, now, rows)
    if assessed is None:
        champion = registry.champion_version(params)
        line = f"no canary running (champion v{champion or '-'})"
        return {
            "model": params.mlflow.registered_model,
            "champion": champion,
            "canary": None,
            "summary": line,
        }
    canary, champion, d = assessed
    return {
        **canary.to_dict(),
        "canary": canary.version,
        "champion": champion,
        "hours": round(d.hours, 2),
        "rows": {d.champion.name: d.champion.rows, d.canary.name: d.canary.rows},
        "verdict": d.verdict,
        "summary": summary_line(d, canary.version, champion),
        "decision": d.to_dict(),
    }


def promote(params: Params, reason: str) -> registry.Event:
    """Make the canary the champion (the old one stays as ``previous``); drop the alias."""
    canary = _running(params)
    c = registry.client(params)
    ev = registry.promote(params, canary.version, reason)
    c.set_model_version_tag(canary.model, canary.version, TAG_RESULT, "promoted")
    c.delete_registered_model_alias(canary.model, CANARY)
    return ev


def abort(params: Params, reason: str) -> registry.Event:
    """Take the canary out of traffic (the alias goes first) and record why."""
    canary = _running(params)
    c = registry.client(params)
    if registry.alias_version(c, canary.model, registry.CHAMPION) == canary.version:
        raise registry.RegistryError(
            f"{canary.model}: canary v{canary.version} is already the champion (a promotion "
            "was interrupted): `retrain canary promote` finishes it"
        )
    c.delete_registered_model_alias(canary.model, CANARY)
    c.set_model_version_tag(canary.model, canary.version, TAG_RESULT, "rolled_back")
    return _event(params, c, ABORTED_EVENT, canary.version, reason)


def decide_and_act(
    params: Params,
    now: datetime | None = None,
    rows: pd.DataFrame | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Decide; on promote or rollback act on the registry, write the report (``decision.json``
    and ``report.md`` under ``paths.canary``) and notify. Returns what happened as plain JSON
    (the monitor DAG's task returns it): ``verdict`` (None without a canary), ``reasons``,
    ``summary``, ``acted``, ``canary``, ``champion`` (after acting), ``event``, ``reports``,
    ``decision``. ``context``: the Airflow task context when a task runs this (it names the
    run in the notification)."""
    assessed = _assess(params, now, rows)
    if assessed is None:
        champion = registry.champion_version(params)
        line = f"no canary running (champion v{champion or '-'})"
        return {
            "verdict": None,
            "reasons": [line],
            "summary": line,
            "acted": False,
            "canary": None,
            "champion": champion,
        }
    canary, champion, d = assessed
    line = summary_line(d, canary.version, champion)
    out: dict[str, Any] = {
        "verdict": d.verdict,
        "reasons": list(d.reasons),
        "summary": line,
        "acted": d.acts,
        **canary.to_dict(),
        "canary": canary.version,
        "champion": champion,
        "decision": d.to_dict(),
    }
    if not d.acts:
        return out
    reason = f"canary {d.verdict}: " + "; ".join(d.reasons)
    ev = promote(params, reason) if d.verdict == "promote" else abort(params, reason)
    run = params.paths.canary_run(_run_name(canary))
    record = {**out, "event": ev.to_dict()}
    reports = [
        write_json(run.decision, record, strict=False),
        write_text(run.markdown, render_markdown(d, canary.version, champion)),
    ]
    out |= {
        "event": ev.to_dict(),
        "champion": registry.champion_version(params),
        "reports": [str(p) for p in reports],
    }
    _notify(params, canary, d.verdict, f"{line} (report: {reports[-1]})", context)
    return out


# --------------------------------------------------------------------------- helpers
def _run_name(canary: Canary) -> str:
    """One canary run: the version and when it started (a version may be canaried again)."""
    return f"v{canary.version}-{canary.started:%Y%m%dT%H%M%SZ}"


def _running(params: Params) -> Canary:
    canary = current(params)
    if canary is None:
        raise registry.RegistryError(f"{params.mlflow.registered_model}: no canary is running")
    return canary


def _assess(
    params: Params, now: datetime | None, rows: pd.DataFrame | None
) -> tuple[Canary, str | None, CanaryDecision] | None:
    canary = current(params)
    if canary is None:
        return None
    champion = registry.champion_version(params)
    if rows is None:
        from pipelines.predlog.readers import joined

        rows = joined(params, since=canary.started)
    d = decide(
        rows,
        params,
        mode=canary.mode,
        started=canary.started,
        now=now or datetime.now(UTC),
        canary_version=canary.version,
    )
    return canary, champion, d


def _event(params: Params, c: Any, kind: str, version: str, reason: str) -> registry.Event:
    """A registry event (version tags and a history line) through the registry's own record."""
    return registry.record_event(params, cast(registry.EventKind, kind), version, reason)


def _notify(
    params: Params,
    canary: Canary,
    verdict: str,
    message: str,
    context: Mapping[str, Any] | None,
) -> None:
    """A line in the notifications file, as the night's alerts (``$RETRAIN_NOTIFICATIONS`` or
    ``paths.notifications``), logged too: a promotion, or a failure for a rolled-back canary.
    ``context``: the orchestrator's run, when one ran the decision (``dag_id``, ``run_id``)."""
    from pipelines.edges import notify

    event = "promotion" if verdict == "promote" else "failure"
    ctx = context or {}
    entry = notify.notification(
        event,
        message,
        dag_id=str(ctx.get("dag_id") or "retrain canary"),
        run_id=str(ctx.get("run_id") or f"canary-{_run_name(canary)}"),
    )
    path = notify.append_notification(notify.notifications_path(params), entry)
    (log.info if event == "promotion" else log.error)(
        "notification (%s) %s [written to %s]", event, message, path
    )
