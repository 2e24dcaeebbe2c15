"""Human approval of a held version: the question ``approve`` asks, the answer it gets (a
human's, or the timeout's default, Reject), and how long it may wait inside the run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipelines.records import JsonRecord

APPROVAL_RESERVE = timedelta(minutes=30)  # of the run's dagrun_timeout, kept for deploy + summary


@dataclass(frozen=True)
class Question:  # what ``approve`` asks a human (Markdown body), and how long it waits
    subject: str
    body: str
    timeout: timedelta


@dataclass(frozen=True)
class Answer(JsonRecord):  # to ``approve``: a human's, or the timeout's default (Reject)
    decision: str  # approved | rejected | timed_out
    by: str | None  # the responder's name (None: nobody answered)
    at: str | None
    reason: str


def answer_of(event: Mapping[str, Any], timeout_minutes: float | None = None) -> Answer:
    """The answer in an ApprovalOperator's resume event; a timeout (the scheduler answers the
    default, Reject) has ``timedout`` set and no ``responded_by_user``."""
    chosen = list(event.get("chosen_options") or [])
    user = event.get("responded_by_user") or {}
    by = (user.get("name") or user.get("id")) if isinstance(user, Mapping) else str(user)
    at = event.get("responded_at")
    at = at.isoformat() if isinstance(at, datetime) else (str(at) if at else None)
    given = str((event.get("params_input") or {}).get("reason") or "").strip()
    if event.get("timedout") or not by:
        after = f" within {timeout_minutes:g} minutes" if timeout_minutes else ""
        return Answer("timed_out", None, at, f"no answer{after}: rejected by default")
    if chosen == ["Approve"]:
        return Answer("approved", str(by), at, given or "Approve chosen in Airflow")
    return Answer("rejected", str(by), at, given or f"{'/'.join(chosen) or 'Reject'} chosen")


def approval_timeout(
    minutes: float, now: datetime, deadline: datetime | None
) -> tuple[timedelta, bool]:
    """How long ``approve`` waits: ``deploy.approval_timeout_minutes``, cut (True) to what the
    run's ``dagrun_timeout`` leaves, less :data:`APPROVAL_RESERVE`: no run fails waiting."""
    wanted = timedelta(minutes=minutes)
    if deadline is None:
        return wanted, False
    left = max(deadline - now - APPROVAL_RESERVE, timedelta(seconds=1))
    return (left, True) if left < wanted else (wanted, False)


def run_deadline(context: Mapping[str, Any]) -> datetime | None:
    """When the scheduler fails this run (its start + the DAG's ``dagrun_timeout``)."""
    start = getattr(context.get("dag_run"), "start_date", None)
    limit = getattr(context.get("dag"), "dagrun_timeout", None)
    return start + limit if start is not None and isinstance(limit, timedelta) else None
