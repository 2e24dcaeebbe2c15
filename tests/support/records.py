"""One sample of each record that is written to JSON, with the awkward values a record can hold
(NaN, infinity, None, empty tuples, nested records), for the round-trip tests.

``tests/unit/data/records.json`` holds the JSON form of each sample as the hand-written
``to_dict`` methods wrote it before pydantic took over: files written then must still be read.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pipelines.edges.lineage import GitState
from pipelines.edges.registry import Event
from pipelines.monitor.attribution import AttributionDrift
from pipelines.monitor.estimate import Agreement
from pipelines.monitor.estimate import Estimate as LiveEstimate
from pipelines.monitor.live import LiveVerdict
from pipelines.monitor.outcome_guard import OutcomeCheck
from pipelines.monitor.run import MonitorResult
from pipelines.records import (
    BatchDrift,
    BatchValidation,
    ChallengerSummary,
    ColumnDrift,
    Estimate,
    GateSummary,
    HoldForApproval,
    HoldForRollout,
    Interval,
    NightFlags,
    NightRecord,
    Promote,
    Registration,
)
from pipelines.release.approval import Answer
from pipelines.release.canary.control import Canary
from pipelines.release.canary.decide import Arm, CanaryDecision
from pipelines.release.canary.groups import FairnessChange
from pipelines.release.deploy import DeployResult
from pipelines.reproduce import Reproduction
from pipelines.stages.drift.result import ColumnDrift as DriftColumn
from pipelines.stages.drift.result import DriftResult
from pipelines.stages.evaluate.calibration import Breakpoints, Calibrator
from pipelines.stages.evaluate.result import CalibrationBin, Confusion, Evaluation, RocCurve
from pipelines.stages.fairness.core import (
    AttributeFairness,
    FairnessResult,
    GroupRates,
    SmallGroup,
    WorstMeasure,
)
from pipelines.stages.gate.decision import Decision
from pipelines.stages.gate.importance import ImportanceComparison
from pipelines.stages.gate.rules import Check
from pipelines.stages.validate.result import ExpectationCheck, FailedExpectation, ValidationResult

NAN, INF = math.nan, math.inf
_MOVED = {
    "feature": "age",
    "reference_rank": 1,
    "rank": 2,
    "reference_importance": 0.4,
    "importance": 0.2,
}


def _fairness() -> FairnessResult:
    judged = (
        GroupRates("Female", 120, 30, 0.2, 0.7, None),
        GroupRates("Male", 300, 90, 0.31, 0.75, 0.12),
    )
    sex = AttributeFairness("sex", ("sex",), judged, (SmallGroup("Other", 4),), 0.11, 0.05, 0.645)
    both = AttributeFairness("sex x race", ("sex", "race"), (), (), None, None, None)
    worst = {
        "demographic_parity_difference": WorstMeasure(0.11, "sex"),
        "equalized_odds_difference": WorstMeasure(0.05, "sex"),
        "disparate_impact_ratio": WorstMeasure(None, None),
    }
    return FairnessResult(424, 30, (sex, both), worst, ("sex x race: not judged",))


def _evaluation() -> Evaluation:
    return Evaluation(
        n=500,
        positives=120,
        positive_rate=0.24,
        predicted_positive_rate=0.2,
        decision_threshold=0.5,
        confidence=0.95,
        bootstrap_samples=200,
        seed=7,
        metrics={"roc_auc": Interval(0.9, 0.88, 0.92), "log_loss": Interval(NAN, NAN, NAN)},
        roc=RocCurve((0.0, 0.1, 1.0), (0.0, 0.6, 1.0), (INF, 0.5, 0.0)),
        confusion=Confusion(350, 30, 20, 100),
        calibration=(CalibrationBin(0.0, 0.1, 0.04, 0.05, 200),),
        distinct_rows=480,
        note="",
    )


def _validation() -> ValidationResult:
    failed = FailedExpectation("expect_column_values_to_not_be_null", "age", "age has nulls", 3)
    warned = FailedExpectation(
        "expect_column_values_to_be_between",
        "hours",
        "hours out of range",
        2,
        ("99", "120"),
        "warn",
    )
    check = ExpectationCheck("expect_column_to_exist", None, True, "exists", "exists")
    return ValidationResult(
        False, 1000, 24, (failed,), (check,), (warned,), "batch", "data/batch.csv"
    )


def _drift() -> DriftResult:
    age = DriftColumn("age", "numeric", "wasserstein", 0.1, 0.25, True, 0.0, 0.01)
    empty = DriftColumn("job", "categorical", "jensenshannon", 0.1, None, False, 0.0, 1.0)
    target = DriftColumn("income", "categorical", "chisquare", 0.05, 0.3, False)
    return DriftResult(
        True, 0.5, 1, 2, 0.5, (age, empty), target, ("age drifted",), 2000, 900, "evidently"
    )


def _decision() -> Decision:
    checks = (
        Check("data validation", "validation", "pass", 0, "<= 0", "0 failed"),
        Check("roc_auc", "metric", "insufficient", 0.81, ">= 0.8", "CI straddles", 4000),
        Check("champion roc_auc", "champion", "skip", None, "", "no champion", None, True),
        Check("calibrator", "serving", "info", "isotonic", "", "kept"),
    )
    return Decision("insufficient", ("roc_auc: not enough evidence",), checks, "3", "2026-12-06")


def _night() -> NightRecord:
    return NightRecord(
        date="2026-12-06",
        started_at="2026-12-06T02:00:00+00:00",
        reports="reports/nights/2026-12-06",
        flags=NightFlags(force_retrain=True, batch="b.csv"),
        outcome="promoted",
        rows=1000,
        validation=BatchValidation(success=True, evaluated=24, warned=["hours"]),
        drift=BatchDrift(dataset_drift=False, share=0.1, columns={"age": ColumnDrift(score=None)}),
        retrained=True,
        challenger=ChallengerSummary(
            version="4", metrics={"roc_auc": Estimate(point=0.9, lower=None, upper=0.92)}
        ),
        gate=GateSummary(
            verdict="pass",
            plan=HoldForApproval(
                then=HoldForRollout(mode="canary", reason="rollout"), timeout_minutes=30.0
            ),
        ),
        seconds=12.5,
    )


def _monitor() -> dict[str, Any]:
    estimate = LiveEstimate("roc_auc", 0.84, 0.8, 0.88, 900, 0.95, 0.79, 0.9)
    verdict = LiveVerdict(
        at="2026-12-06T10:00:00+00:00",
        window_hours=24.0,
        rows=900,
        labelled_rows=0,
        champion_version="3",
        versions={"3": 900},
        metric="roc_auc",
        drift_share=0.1,
        estimated={"point": 0.84, "lower": 0.8, "upper": 0.88, "rows": 900},
        estimated_drop=None,
        reasons=["no outcomes yet"],
    )
    check = OutcomeCheck(120, True, False, ["ok"], {"point": 0.8, "lower": 0.7, "upper": 0.9})
    return {
        "LiveEstimate": LiveEstimate("log_loss", NAN, NAN, NAN, 0, 0.95),
        "Agreement": Agreement(estimate, 0.81),
        "LiveVerdict": verdict,
        "OutcomeCheck": check,
        "MonitorResult": MonitorResult(
            verdict, {"verdict": "reports/monitor/verdict.json"}, 40, "data/landed", None
        ),
    }


def _release(fairness: FairnessResult) -> dict[str, Any]:
    change = FairnessChange(
        "sex", "demographic_parity_difference", 0.1, 0.14, Interval(0.04, -0.01, 0.09), False
    )
    champion = Arm("champion", ("3",), 400, 100, Interval(0.85, 0.82, 0.88), fairness)
    canary = Arm("canary", ("4",), 0, 0)
    decision = CanaryDecision(
        verdict="wait",
        reasons=("too few rows",),
        mode="canary",
        metric="roc_auc",
        paired=False,
        method="sequential",
        rows=400,
        champion=champion,
        canary=canary,
        difference=None,
        fairness_changes=(change,),
        started="2026-12-06T08:00:00+00:00",
        decided_at="2026-12-06T10:00:00+00:00",
        hours=2.25,
        rules={"min_rows": 200, "margins": [0.01, 0.02], "share": 0.1},
    )
    started = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC)
    return {
        "GitState": GitState("0123abcd", False),
        "Event": Event(
            "promotion", "m", "4", "3", "night", "gate passed", "2026-12-06T10:00:00+00:00"
        ),
        "Reproduction": Reproduction("4", 30000, 5000, 0.0, True, "md5a", "md5b"),
        "Answer": Answer("approved", "reviewer", "2026-12-06T09:00:00+00:00", "looks right"),
        "Canary": Canary("m", "4", "shadow", 0.25, started),
        "FairnessChange": change,
        "Arm": champion,
        "CanaryDecision": decision,
        "DeployResult": DeployResult(
            ok=True,
            version="4",
            mode="local",
            address="127.0.0.1:8000",
            containers=["a", "b"],
            replicas=2,
            checks=["ready"],
            seconds=3.5,
            at="2026-12-06T10:00:00+00:00",
        ),
    }


def record_samples() -> dict[str, Any]:
    """Name -> a sample record of each kind written to JSON."""
    fairness = _fairness()
    evaluation = _evaluation()
    validation = _validation()
    drift = _drift()
    return {
        "Interval": Interval(0.5, NAN, INF),
        "GroupRates": fairness.attributes[0].groups[0],
        "SmallGroup": fairness.attributes[0].too_small[0],
        "AttributeFairness": fairness.attributes[0],
        "WorstMeasure": fairness.worst["disparate_impact_ratio"],
        "FairnessResult": fairness,
        "RocCurve": evaluation.roc,
        "Confusion": evaluation.confusion,
        "CalibrationBin": evaluation.calibration[0],
        "Evaluation": evaluation,
        "FailedExpectation": validation.warned[0],
        "ExpectationCheck": validation.checks[0],
        "ValidationResult": validation,
        "DriftColumn": drift.columns[1],
        "DriftResult": drift,
        "Decision": _decision(),
        "ImportanceComparison": ImportanceComparison(
            0.8,
            0.9,
            500,
            [{"feature": "age", "champion_rank": 2, "challenger_rank": 1}],
            challenger={"age": 0.4, "hours": 0.1},
            champion={"hours": 0.3, "age": 0.2},
        ),
        "AttributionDrift": AttributionDrift(
            0.7,
            0.9,
            500,
            [_MOVED],
            reference={"age": 0.4, "hours": 0.1},
            live={"hours": 0.3, "age": 0.2},
        ),
        "Calibrator": Calibrator(
            (0.1, 0.5, 0.9), (0.05, 0.4, 0.95), 500, 0.24, (Breakpoints((0.1, 0.9), (0.0, 1.0)),)
        ),
        "Registration": Registration(
            model="m",
            version="4",
            verdict="pass",
            champion=None,
            run_id="r1",
            event={"kind": "promoted"},
            plan=Promote(reason="passed"),
        ),
        "NightRecord": _night(),
        **_monitor(),
        **_release(fairness),
    }
