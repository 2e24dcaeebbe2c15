"""What a night came to, in the words the screens show: one word (the name of the DAG's outcome
task, so a rejected or held night is not the same green as a promotion), one note (the night's
date and outcome, on the run), and the short message a rejected batch fails ``ingest`` with.

Pure: made from the night record (:class:`pipelines.records.NightRecord`) only. The standard
library only at import time: the DAG file reads :data:`OUTCOME_WORDS` when it is parsed.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.records import NightRecord

# one task per word in the DAG (``night_<word>``); ``unfinished``: the record has no outcome
OUTCOME_WORDS = ("promoted", "rejected", "held", "no_retrain", "no_batch", "quarantined", "dry_run")
NOTE_LIMIT = 1000  # what Airflow keeps of a run's note
WIDTH = 100


def outcome_word(rec: NightRecord) -> str:
    """One of :data:`OUTCOME_WORDS`, or ``unfinished`` when the night has no outcome yet."""
    from pipelines.records import HoldForApproval, HoldForRollout

    if rec.outcome is None:
        return "unfinished"
    if rec.outcome == "batch_rejected":
        return "quarantined"
    if rec.outcome != "not_promoted":
        return rec.outcome
    gate = rec.gate
    answer = gate.approval if gate else None
    if answer is not None and answer.decision == "pending":
        return "held"
    if gate is not None and isinstance(gate.plan, HoldForRollout | HoldForApproval):
        return "held" if answer is None else "rejected"  # a human answered: not approved
    return "rejected"


def _first(items: list[str], what: str) -> str:
    if not items:
        return what
    more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
    return f"{items[0]}{more}"


def _rejected_why(rec: NightRecord) -> str:
    gate = rec.gate
    answer = gate.approval if gate else None
    if answer is not None and answer.decision in ("rejected", "timed_out"):
        by = f" by {answer.by}" if answer.by and answer.decision == "rejected" else ""
        why = f": {answer.reason}" if answer.reason else ""
        return f"approval {answer.decision.replace('_', ' ')}{by}{why}"
    return _first(list(gate.reasons) if gate else [], "the gate did not pass")


def night_note(rec: NightRecord, link: str | None = None) -> str:
    """The run's note: ``<date>: <outcome>`` and the one thing a reader wants next to it;
    ``link``: the night's run in MLflow (its reports are its artifacts), added as a Markdown
    link when it is an address a browser opens (``RETRAIN_MLFLOW_UI_URL``)."""
    from pipelines.records import HoldForRollout

    word = outcome_word(rec)
    serving = f"v{rec.serving} serving" if rec.serving else "nothing serving"
    version = rec.challenger.version if rec.challenger else None
    if word == "promoted":
        was = f"was v{rec.champion_before}" if rec.champion_before else "first champion"
        text = f"promoted v{rec.promoted} ({was})"
    elif word == "rejected":
        text = f"rejected{' v' + version if version else ''}: {_rejected_why(rec)}; {serving}"
    elif word == "held":
        plan = rec.gate.plan if rec.gate else None
        waits = (
            f"out as a {plan.mode} beside the champion"
            if isinstance(plan, HoldForRollout)
            else "awaits approval"
        )
        text = f"held: v{version} {waits}; {serving}"
    elif word == "quarantined":
        failed = rec.failed_expectations
        first = failed[0].split(": ", 1)[-1] if failed else "validation failed"
        text = f"quarantined: {len(failed)} failed expectation(s): {first}"
    elif word == "no_batch":
        text = "no batch"
    elif word == "no_retrain":
        text = f"no retrain (no drift, not scheduled, not forced); {serving}"
    elif word == "dry_run":
        verdict = rec.gate.verdict if rec.gate else "not judged"
        text = f"dry run: gate {verdict}; nothing registered"
    else:
        text = "did not finish"
    note = f"{rec.date}: {text}"
    web = link is not None and link.startswith(("http://", "https://"))
    tail = f" ([the night in MLflow]({link}))" if web else ""
    room = NOTE_LIMIT - len(tail)
    return (note if len(note) <= room else note[: room - 3] + "...") + tail


def rejected_batch_message(rec: NightRecord, report: str | None = None, first: int = 3) -> str:
    """A rejected batch, for the failed ``ingest``: a head line, the first failed expectations
    in plain words (wrapped at :data:`WIDTH`), where the batch went and its report (paths
    are never broken)."""
    from pipelines.night.summary import rejection_lines

    n = len(rec.failed_expectations)
    head = f"night {rec.date}: batch {rec.batch} REJECTED ({n} failed expectation(s))"
    lines = [head, *rejection_lines(rec, first=first)]
    if report:
        lines.append(f"  report {report}")
    wrapped = [
        textwrap.fill(line, WIDTH, subsequent_indent="      ", break_on_hyphens=False)
        if line.startswith("  - ")
        else line
        for line in lines
    ]
    return "\n".join(wrapped)
