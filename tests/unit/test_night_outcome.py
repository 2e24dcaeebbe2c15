"""A night's outcome as the screens show it: the outcome task's name, the run's note and the
short message a rejected batch fails ``ingest`` with (``pipelines.night.outcome``)."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.night.outcome import (
    NOTE_LIMIT,
    OUTCOME_WORDS,
    WIDTH,
    night_note,
    outcome_word,
    rejected_batch_message,
)
from pipelines.records import (
    ApprovalSummary,
    BatchValidation,
    ChallengerSummary,
    GateSummary,
    HoldForApproval,
    HoldForRollout,
    NightRecord,
    Promote,
)

DAY = "2026-04-01"


def night(**kw: Any) -> NightRecord:
    base: dict[str, Any] = {"date": DAY, "started_at": f"{DAY}T02:00:00+00:00", "reports": "/r"}
    return NightRecord(**{**base, **kw})


def judged(verdict: str, outcome: str, **gate: Any) -> NightRecord:
    return night(
        outcome=outcome,
        retrained=True,
        challenger=ChallengerSummary(version="3"),
        gate=GateSummary(verdict=verdict, **gate),
        champion_before="2",
        serving="2",
    )


HELD_PLAN = HoldForApproval(then=Promote(reason="gate passed"), timeout_minutes=60)
CASES = [
    (
        night(outcome="promoted", promoted="3", champion_before="2", serving="3"),
        "promoted",
        f"{DAY}: promoted v3 (was v2)",
    ),
    (
        night(outcome="promoted", promoted="1", serving="1"),
        "promoted",
        f"{DAY}: promoted v1 (first champion)",
    ),
    (
        judged("fail", "not_promoted", reasons=["roc_auc below the champion's", "ece worse"]),
        "rejected",
        f"{DAY}: rejected v3: roc_auc below the champion's (+1 more); v2 serving",
    ),
    (
        judged(
            "pass",
            "not_promoted",
            plan=HELD_PLAN,
            approval=ApprovalSummary(version="3", decision="pending"),
        ),
        "held",
        f"{DAY}: held: v3 awaits approval; v2 serving",
    ),
    (
        judged(
            "pass",
            "not_promoted",
            plan=HELD_PLAN,
            approval=ApprovalSummary(version="3", decision="rejected", by="ana", reason="odd"),
        ),
        "rejected",
        f"{DAY}: rejected v3: approval rejected by ana: odd; v2 serving",
    ),
    (
        judged("pass", "not_promoted", plan=HoldForRollout(mode="canary", reason="rollout")),
        "held",
        f"{DAY}: held: v3 out as a canary beside the champion; v2 serving",
    ),
    (night(outcome="no_batch"), "no_batch", f"{DAY}: no batch"),
    (
        night(outcome="no_retrain", serving="2"),
        "no_retrain",
        f"{DAY}: no retrain (no drift, not scheduled, not forced); v2 serving",
    ),
    (
        night(
            outcome="batch_rejected",
            validation=BatchValidation(
                success=False, evaluated=24, failed=["expect_x: column 'age': 3 below 17"]
            ),
        ),
        "quarantined",
        f"{DAY}: quarantined: 1 failed expectation(s): column 'age': 3 below 17",
    ),
    (judged("pass", "dry_run"), "dry_run", f"{DAY}: dry run: gate pass; nothing registered"),
    (night(), "unfinished", f"{DAY}: did not finish"),
]


@pytest.mark.parametrize(("rec", "word", "note"), CASES)
def test_each_outcome_has_its_word_and_a_note_with_the_date(rec, word, note):
    assert outcome_word(rec) == word
    assert word in (*OUTCOME_WORDS, "unfinished")
    assert night_note(rec) == note


def test_a_note_is_cut_to_what_airflow_keeps():
    rec = judged("fail", "not_promoted", reasons=["x" * 3000])
    note = night_note(rec)
    assert len(note) == NOTE_LIMIT and note.startswith(f"{DAY}: rejected") and note[-3:] == "..."


def test_a_note_links_the_night_in_mlflow_only_where_a_browser_can_open_it():
    rec = night(outcome="no_batch")
    url = "https://mlflow.example.org/#/experiments/3/runs/abc"
    assert night_note(rec, url) == f"{DAY}: no batch ([the night in MLflow]({url}))"
    local = "`mlflow ui --backend-store-uri sqlite:///m.db`, then http://127.0.0.1:5000/#/x"
    assert night_note(rec, local) == night_note(rec) == f"{DAY}: no batch"
    long = judged("fail", "not_promoted", reasons=["x" * 3000])
    note = night_note(long, url)
    assert len(note) == NOTE_LIMIT and note.endswith(f"... ([the night in MLflow]({url}))")


def test_a_rejected_batch_fails_with_a_short_wrapped_message():
    failed = [f"expect_min: column 'age': {k} values below 17 " + "y" * 120 for k in range(6)]
    rec = night(
        outcome="batch_rejected",
        batch="/ws/data/landing/2026-04-01.csv",
        validation=BatchValidation(success=False, evaluated=24, failed=failed),
        quarantined_to="/ws/data/quarantine/2026-04-01",
    )
    msg = rejected_batch_message(rec, report="/ws/reports/v.html")
    lines = msg.splitlines()
    assert lines[0] == (
        "night 2026-04-01: batch /ws/data/landing/2026-04-01.csv REJECTED (6 failed expectation(s))"
    )
    assert all(len(line) <= WIDTH for line in lines[1:-2])  # the paths' lines are whole
    assert "  ... and 3 more (see the validation report)" in lines
    assert "  quarantined in /ws/data/quarantine/2026-04-01" in lines
    assert lines[-1] == "  report /ws/reports/v.html"
    assert "Traceback" not in msg and len(lines) < 15
