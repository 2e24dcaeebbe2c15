"""The night's record (``reports/nights/<date>/summary.json``) and the state across nights.

Each step of a night loads the record, adds its part and saves it (atomically), so a night
interrupted anywhere is continued from what it had done. ``state.json`` remembers the first
night seen and the last retraining, for the retraining schedule.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from pipelines.config import Params
from pipelines.files import write_json
from pipelines.records import NightFlags, NightRecord


def parse_day(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"--date: {value!r} is not a date (use YYYY-MM-DD)") from None


def load_record(params: Params, day: str) -> NightRecord:
    """The night's record so far (a new one when the night has not started)."""
    p = params.paths.night_record(day)
    if p.is_file():
        return NightRecord.from_dict(json.loads(p.read_text()))
    return NightRecord(
        date=day,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reports=str(p.parent),
    )


def rerun_flags(recorded: NightRecord | None, given: NightFlags) -> tuple[NightFlags, str | None]:
    """The flags a night runs with: those given, or, on a rerun given none of a night that did
    not finish, the ones recorded at its start (with a line saying so)."""
    if recorded is None or recorded.finished or recorded.flags is None:
        return given, None
    if given != NightFlags() or recorded.flags == given:
        return given, None
    return recorded.flags, (
        f"rerun of a night that did not finish: taking the flags recorded at its start "
        f"({recorded.flags.line()}, {recorded.started_at})"
    )


def start_night(params: Params, day: str, given: NightFlags) -> tuple[NightFlags, str | None]:
    """Record the night's flags at its start (:func:`rerun_flags` picks them)."""
    exists = params.paths.night_record(day).is_file()
    rec = load_record(params, day)
    flags, note = rerun_flags(rec if exists else None, given)
    rec.flags = flags
    save_record(params, rec)
    return flags, note


def claim_night(params: Params, day: str, run: str, only_if_new: bool) -> str | None:
    """Record ``run`` as the run that has the night, unless ``only_if_new`` and another run
    had it first: then that run, and the record is left as it is (a night nobody asked for,
    such as the scheduled one Airflow adds when a DAG is unpaused, does not run a date again)."""
    exists = params.paths.night_record(day).is_file()
    rec = load_record(params, day)
    if only_if_new and exists and rec.run and rec.run != run:
        return rec.run
    if rec.run != run:
        rec.run = run
        save_record(params, rec)
    return None


def save_record(params: Params, record: NightRecord) -> NightRecord:
    """The record, and its page for people (``summary.html``, linking the night's reports)."""
    from pipelines.night.page import write_page

    write_json(params.paths.night_record(record.date), record.to_dict(), strict=False)
    write_page(params, record)
    return record


def load_state(params: Params) -> dict[str, Any]:
    p = params.paths.night_state
    return json.loads(p.read_text()) if p.is_file() else {}


def save_state(params: Params, state: dict[str, Any]) -> None:
    write_json(params.paths.night_state, state)


def mark_retrained(params: Params, day: str) -> None:
    state = load_state(params)
    state["last_retrain"] = day
    save_state(params, state)
