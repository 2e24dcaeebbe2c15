"""The gate's decision: every rule, with and without a champion."""

from __future__ import annotations

import json

import pytest

from pipelines.config import Bound, GateConfig
from pipelines.records import Interval
from pipelines.stages.gate import Decision, Evidence, decide, render_html, render_markdown

CFG = GateConfig(
    metrics={"roc_auc": Bound(min=0.85), "ece": Bound(max=0.05)},
    fairness={"equalized_odds_difference": Bound(max=0.15)},
    non_inferiority_metric="roc_auc",
    non_inferiority_margin=0.01,
    fairness_regression_margin=0.03,
)
GOOD = {"roc_auc": Interval(0.90, 0.89, 0.91), "ece": Interval(0.02, 0.01, 0.03)}
FAIR = {"equalized_odds_difference": 0.08}


def verdicts(d: Decision) -> dict[str, str]:
    return {c.name: c.verdict for c in d.checks}


def test_first_model_only_absolute_checks():
    d = decide(Evidence(metrics=GOOD, fairness=FAIR), CFG)
    assert d.passed
    assert verdicts(d)["roc_auc vs champion"] == "skip"
    assert any("no champion yet" in r for r in d.reasons)


def test_absolute_bound_judged_on_interval_not_point():
    # point estimate above 0.85, but the lower CI bound below it: not good enough
    metrics = {**GOOD, "roc_auc": Interval(0.86, 0.84, 0.88)}
    d = decide(Evidence(metrics=metrics, fairness=FAIR), CFG)
    assert not d.passed
    assert verdicts(d)["roc_auc"] == "fail"
    assert any("roc_auc" in r and "misses >= 0.85" in r for r in d.reasons)
    point_cfg = CFG.model_copy(update={"use_interval": False})
    assert decide(Evidence(metrics=metrics, fairness=FAIR), point_cfg).passed


def test_upper_bound_metric_uses_upper_ci():
    metrics = {**GOOD, "ece": Interval(0.04, 0.03, 0.06)}
    assert verdicts(decide(Evidence(metrics=metrics, fairness=FAIR), CFG))["ece"] == "fail"


def test_missing_metric_fails_loudly():
    d = decide(Evidence(metrics={"ece": GOOD["ece"]}, fairness=FAIR), CFG)
    assert not d.passed and any("roc_auc: not measured" in r for r in d.reasons)


@pytest.mark.parametrize(
    "diff,passes",
    [
        (Interval(0.002, -0.004, 0.008), True),  # within the margin: non-inferior
        (Interval(-0.005, -0.012, 0.002), False),  # CI reaches beyond -0.01
        (Interval(0.02, 0.01, 0.03), True),  # clearly better
    ],
)
def test_non_inferiority_on_paired_interval(diff, passes):
    ev = Evidence(
        metrics=GOOD,
        fairness=FAIR,
        champion_version="3",
        champion_fairness=FAIR,
        differences={"roc_auc": diff},
    )
    d = decide(ev, CFG)
    assert verdicts(d)["roc_auc vs champion"] == ("pass" if passes else "fail")
    assert d.passed is passes
    assert d.champion_version == "3"


def test_champion_without_comparison_fails():
    ev = Evidence(metrics=GOOD, fairness=FAIR, champion_version="3")
    d = decide(ev, CFG)
    assert not d.passed and any("no paired comparison" in r for r in d.reasons)


def test_fairness_bound_and_regression_against_champion():
    ev = Evidence(
        metrics=GOOD,
        fairness={"equalized_odds_difference": 0.14},  # within the 0.15 bound ...
        champion_version="2",
        champion_fairness={"equalized_odds_difference": 0.14},
        differences={"roc_auc": Interval(0.0, -0.001, 0.001)},
        # ... and the worst is unchanged, but 'sex' got 0.08 worse (hidden by the worst)
        fairness_by_attribute={
            "sex": {"equalized_odds_difference": 0.14},
            "race": {"equalized_odds_difference": 0.10},
        },
        champion_fairness_by_attribute={
            "sex": {"equalized_odds_difference": 0.06},
            "race": {"equalized_odds_difference": 0.14},
        },
    )
    d = decide(ev, CFG)
    v = verdicts(d)
    assert v["equalized_odds_difference"] == "pass"
    assert v["equalized_odds_difference (sex) vs champion"] == "fail"
    assert v["equalized_odds_difference (race) vs champion"] == "pass"  # improvements are fine
    assert not d.passed
    assert any("for sex" in r and "regresses beyond the 0.03 margin" in r for r in d.reasons)


def test_fairness_bound_violation_and_ratio_direction():
    cfg = CFG.model_copy(update={"fairness": {"disparate_impact_ratio": Bound(min=0.8)}})
    bad = decide(Evidence(metrics=GOOD, fairness={"disparate_impact_ratio": 0.5}), cfg)
    assert not bad.passed
    ev = Evidence(
        metrics=GOOD,
        fairness={"disparate_impact_ratio": 0.85},
        champion_version="1",
        champion_fairness={"disparate_impact_ratio": 0.95},
        differences={"roc_auc": Interval(0, 0, 0)},
        fairness_by_attribute={"sex": {"disparate_impact_ratio": 0.85}},
        champion_fairness_by_attribute={"sex": {"disparate_impact_ratio": 0.95}},
    )
    assert verdicts(decide(ev, cfg))["disparate_impact_ratio (sex) vs champion"] == "fail"


def test_validation_failures_and_serving_check_block():
    d = decide(Evidence(metrics=GOOD, fairness=FAIR, validation_failures=2), CFG)
    assert not d.passed
    d = decide(Evidence(metrics=GOOD, fairness=FAIR, serving_ok=False, serving_detail="boom"), CFG)
    assert not d.passed and "boom" in d.reasons


def test_decision_round_trip_and_reports():
    d = decide(Evidence(metrics=GOOD, fairness=FAIR), CFG)
    again = Decision.from_dict(json.loads(json.dumps(d.to_dict())))
    assert again == d
    md = render_markdown(d)
    assert "PASS" in md and "| roc_auc |" in md
    html = render_html(d)
    assert "<table>" in html and "roc_auc" in html
