"""The gate's decision: every rule, with and without a champion."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from pipelines.config import Bound, GateConfig, parse_params
from pipelines.records import Interval
from pipelines.stages.fairness.intervals import SmallGroups
from pipelines.stages.gate import (
    Decision,
    Evidence,
    decide,
    judge,
    render_html,
    render_markdown,
    rows_needed,
)
from pipelines.stages.gate.scores import degenerate_reason, judge_champion

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
    # point estimate above 0.85, but the lower CI bound below it: not shown to meet the bound
    metrics = {**GOOD, "roc_auc": Interval(0.86, 0.84, 0.88)}
    d = decide(Evidence(metrics=metrics, fairness=FAIR, rows=400), CFG)
    assert not d.passed and d.verdict == "insufficient"
    assert verdicts(d)["roc_auc"] == "insufficient"
    assert any("not shown to meet >= 0.85" in r and "reaches below 0.85" in r for r in d.reasons)
    # the whole CI below the bound: shown to miss it
    below = {**GOOD, "roc_auc": Interval(0.80, 0.78, 0.82)}
    d = decide(Evidence(metrics=below, fairness=FAIR), CFG)
    assert d.verdict == "fail" and any("misses >= 0.85" in r for r in d.reasons)
    point_cfg = CFG.model_copy(update={"use_interval": False})
    assert decide(Evidence(metrics=metrics, fairness=FAIR), point_cfg).passed


def test_upper_bound_metric_uses_upper_ci():
    straddles = {**GOOD, "ece": Interval(0.04, 0.03, 0.06)}
    assert verdicts(decide(Evidence(metrics=straddles, fairness=FAIR), CFG))["ece"] == (
        "insufficient"
    )
    above = {**GOOD, "ece": Interval(0.07, 0.06, 0.08)}
    assert verdicts(decide(Evidence(metrics=above, fairness=FAIR), CFG))["ece"] == "fail"


def test_missing_metric_fails_loudly():
    d = decide(Evidence(metrics={"ece": GOOD["ece"]}, fairness=FAIR), CFG)
    assert not d.passed and any("roc_auc: not measured" in r for r in d.reasons)


@pytest.mark.parametrize(
    "diff,passes",
    [
        (Interval(0.002, -0.004, 0.008), True),  # within the margin: non-inferior
        (Interval(-0.005, -0.012, 0.002), None),  # CI reaches beyond -0.01: not shown
        (Interval(-0.03, -0.04, -0.02), False),  # the whole CI beyond -0.01: worse
        (Interval(0.02, 0.01, 0.03), True),  # clearly better
    ],
)
def test_non_inferiority_on_paired_interval(diff, passes):
    ev = Evidence(
        metrics=GOOD,
        fairness=FAIR,
        champion_version="3",
        differences={"roc_auc": diff},
    )
    d = decide(ev, CFG)
    expected = {True: "pass", False: "fail", None: "insufficient"}[passes]
    assert verdicts(d)["roc_auc vs champion"] == expected
    assert d.verdict == expected
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


# --------------------------------------------------------------------------- three verdicts
def champion_evidence(diff: Interval, rows: int | None = 91, **kw) -> Evidence:
    return Evidence(
        metrics=GOOD,
        fairness=FAIR,
        champion_version="3",
        champion_metrics=GOOD,
        differences={"roc_auc": diff},
        rows=rows,
        **kw,
    )


def test_a_straddling_paired_ci_is_not_enough_evidence_never_worse():
    # the case: +0.037 [-0.038, +0.120] on 91 rows
    d = decide(champion_evidence(Interval(0.037, -0.038, 0.120)), CFG)
    check = {c.name: c for c in d.checks}["roc_auc vs champion"]
    assert d.verdict == "insufficient" and not d.passed
    assert check.verdict == "insufficient"
    assert "worse" not in check.detail
    assert "not shown non-inferior" in check.detail
    assert "CI [-0.0380, +0.1200] on 91 rows reaches below -0.01" in check.detail
    # at the observed variance the half-width (0.075) must shrink below the distance to the
    # margin (0.047): n * (0.075 / 0.047)^2 rows
    assert check.rows_needed == math.ceil(91 * (0.075 / 0.047) ** 2)
    assert f"about {check.rows_needed:,} rows needed" in check.detail
    assert check.detail in d.reasons


def test_rows_needed_shrinks_the_interval_to_the_threshold():
    # half-width 0.02 on 100 rows, 0.01 from the threshold: 4 times the rows
    assert rows_needed(100, 0.5, 0.48, 0.49) == 400
    assert rows_needed(None, 0.5, 0.48, 0.49) is None
    assert rows_needed(100, 0.5, 0.48, 0.5) is None  # on the threshold: no estimate
    assert judge(Interval(0.5, 0.48, 0.52), "min", 0.49, 100) == ("insufficient", 400)
    assert judge(Interval(0.5, 0.48, 0.52), "min", 0.47, 100) == ("pass", None)
    assert judge(Interval(0.5, 0.48, 0.52), "min", 0.53, 100) == ("fail", None)
    assert judge(Interval(0.5, 0.48, 0.52), "max", 0.51, 100) == ("insufficient", 400)


def test_undefined_interval_is_not_enough_evidence():
    nan = float("nan")
    metrics = {**GOOD, "roc_auc": Interval(nan, nan, nan)}
    d = decide(Evidence(metrics=metrics, fairness=FAIR, rows=1), CFG)
    assert d.verdict == "insufficient"
    assert any(
        "roc_auc: not enough evidence: could not be measured on 1 rows" in r for r in d.reasons
    )


def test_every_skipped_check_says_why():
    ev = champion_evidence(
        Interval(0.01, 0.005, 0.02),
        fairness_by_attribute={"sex": {"equalized_odds_difference": 0.1}},
        champion_fairness_by_attribute={"sex": {}},
        serving_detail="no held-out rows to check",
    )
    d = decide(ev, CFG)
    skipped = [c for c in d.checks if c.verdict == "skip"]
    assert {c.name for c in skipped} >= {
        "equalized_odds_difference (sex) vs champion",
        "loads and predicts via serving path",
    }
    assert all(c.detail for c in skipped)
    assert all(any(c.detail in r for r in d.reasons) for c in skipped)
    md = render_markdown(d)
    assert "not defined for champion v3 on the groups large enough to judge" in md


def test_a_fail_outranks_not_enough_evidence():
    ev = champion_evidence(Interval(0.037, -0.038, 0.120), validation_failures=1)
    d = decide(ev, CFG)
    assert d.verdict == "fail"
    assert d.reasons[0].startswith("1 failed expectation")
    assert any("not shown non-inferior" in r for r in d.reasons)


def test_insufficient_decision_round_trips_and_renders():
    d = decide(champion_evidence(Interval(0.037, -0.038, 0.120)), CFG)
    again = Decision.from_dict(json.loads(json.dumps(d.to_dict())))
    assert again == d
    assert "NOT ENOUGH EVIDENCE" in render_markdown(d) and "NOT ENOUGH EVIDENCE" in render_html(d)
    # a decision written before rows_needed / waived existed still reads
    old = d.to_dict()
    for c in old["checks"]:
        del c["rows_needed"], c["waived"]
    assert Decision.from_dict(old).verdict == "insufficient"


# --------------------------------------------------------------------------- failing champion
DEGENERATE = {"roc_auc": Interval(0.55, 0.50, 0.60), "ece": Interval(0.02, 0.01, 0.03)}


def test_a_champion_failing_the_bounds_is_replaced_by_a_significantly_better_challenger():
    # the challenger misses the AUC bound too, but is far better than the champion on the
    # same rows (paired CI above 0): it replaces the champion, and the report says so
    ev = Evidence(
        metrics={**GOOD, "roc_auc": Interval(0.75, 0.72, 0.78)},
        fairness=FAIR,
        champion_version="3",
        champion_metrics=DEGENERATE,
        differences={"roc_auc": Interval(0.20, 0.15, 0.24)},
        rows=900,
        champion_degenerate="selection rate 0.004 on 900 rows",
    )
    d = decide(ev, CFG)
    assert d.passed and d.replaces_failing_champion
    by_name = {c.name: c for c in d.checks}
    assert by_name["roc_auc"].verdict == "fail" and by_name["roc_auc"].waived
    assert by_name["champion v3 roc_auc"].verdict == "fail"
    assert by_name["replaces failing champion"].verdict == "pass"
    assert any(
        "champion v3 fails roc_auc >= 0.85 on the same rows" in r
        and "the challenger replaces it" in r
        and "though it misses roc_auc >= 0.85" in r
        for r in d.reasons
    )
    assert "(waived)" in render_markdown(d)
    assert any("degenerate" in c.detail for c in d.checks if c.group == "fairness_regression")


def test_a_failing_champion_is_kept_without_a_significantly_better_challenger():
    ev = Evidence(
        metrics={**GOOD, "roc_auc": Interval(0.75, 0.72, 0.78)},
        fairness=FAIR,
        champion_version="3",
        champion_metrics=DEGENERATE,
        differences={"roc_auc": Interval(0.02, -0.01, 0.05)},
        rows=900,
    )
    d = decide(ev, CFG)
    assert d.verdict == "fail" and not d.replaces_failing_champion
    assert any("not replaced: the challenger is not significantly better" in r for r in d.reasons)


def test_replacement_needs_no_fairness_regression_and_can_be_turned_off():
    base = {
        "metrics": {**GOOD, "roc_auc": Interval(0.75, 0.72, 0.78)},
        "fairness": FAIR,
        "champion_version": "3",
        "champion_metrics": DEGENERATE,
        "differences": {"roc_auc": Interval(0.20, 0.15, 0.24)},
        "rows": 900,
    }
    regressed = Evidence(
        **base,
        fairness_by_attribute={"sex": {"equalized_odds_difference": 0.14}},
        champion_fairness_by_attribute={"sex": {"equalized_odds_difference": 0.02}},
    )
    d = decide(regressed, CFG)
    assert d.verdict == "fail" and not d.replaces_failing_champion
    off = CFG.model_copy(update={"replace_failing_champion": False})
    d = decide(Evidence(**base), off)
    assert d.verdict == "fail"
    assert any("gate.replace_failing_champion" in r for r in d.reasons)


def test_a_good_champion_is_judged_but_never_blocks():
    d = decide(champion_evidence(Interval(0.002, -0.004, 0.008)), CFG)
    assert d.passed
    assert verdicts(d)["champion v3 roc_auc"] == "pass"
    assert not d.replaces_failing_champion


def test_replace_failing_champion_is_validated():
    with pytest.raises(ValidationError, match="replace_failing_champion"):
        GateConfig(replace_failing_champion="sometimes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fairness on intervals
def test_a_fairness_difference_from_small_groups_is_not_a_fail():
    # equalized odds 0.317 from 34 vs 50 negatives: its CI reaches far below the 0.15 bound
    eod = Interval(0.317, 0.14, 0.49)
    ev = Evidence(
        metrics=GOOD,
        fairness={"equalized_odds_difference": 0.317},
        rows=300,
        fairness_intervals={"sex": {"equalized_odds_difference": eod}},
        fairness_small={
            "sex": {
                "equalized_odds_difference": SmallGroups(("'x' (11 actual positives)",), 30, 0.1)
            }
        },
    )
    d = decide(ev, CFG)
    check = {c.name: c for c in d.checks}["equalized_odds_difference"]
    assert check.verdict == "insufficient" and check.rows_needed is not None
    assert "(sex) not shown to meet <= 0.15" in check.detail
    assert d.verdict == "insufficient"
    # the small group is named, with its size
    assert any("'x' (11 actual positives)" in r for r in d.reasons)
    # a point within the bound whose CI reaches beyond it: no violation shown, a pass (on
    # Adult, small race groups stretch the EOD interval past the bound)
    within = {"sex": {"equalized_odds_difference": Interval(0.12, 0.07, 0.16)}}
    check = {c.name: c for c in decide(replace(ev, fairness_intervals=within), CFG).checks}[
        "equalized_odds_difference"
    ]
    assert check.verdict == "pass" and "no violation shown by the CI" in check.detail
    # several attributes passing: the one shown is the worst
    two = {
        "sex": {"equalized_odds_difference": Interval(0.08, 0.06, 0.10)},
        "race": {"equalized_odds_difference": Interval(0.12, 0.07, 0.14)},
    }
    check = {c.name: c for c in decide(replace(ev, fairness_intervals=two), CFG).checks}[
        "equalized_odds_difference"
    ]
    assert check.verdict == "pass" and "(race) 0.1200" in check.detail
    # shown beyond the bound: a fail
    far = {"sex": {"equalized_odds_difference": Interval(0.4, 0.3, 0.5)}}
    assert verdicts(decide(replace(ev, fairness_intervals=far), CFG))[
        "equalized_odds_difference"
    ] == ("fail")


def test_fairness_regression_judged_on_the_paired_interval():
    base = champion_evidence(
        Interval(0.002, -0.004, 0.008),
        rows=300,
        fairness_by_attribute={"sex": {"equalized_odds_difference": 0.12}},
        champion_fairness_by_attribute={"sex": {"equalized_odds_difference": 0.06}},
    )
    noisy = replace(
        base, fairness_changes={"sex": {"equalized_odds_difference": Interval(0.06, -0.02, 0.14)}}
    )
    shown = replace(
        base, fairness_changes={"sex": {"equalized_odds_difference": Interval(0.06, 0.04, 0.08)}}
    )
    name = "equalized_odds_difference (sex) vs champion"
    assert verdicts(decide(base, CFG))[name] == "fail"  # a bare point: the old rule
    assert verdicts(decide(noisy, CFG))[name] == "insufficient"
    assert verdicts(decide(shown, CFG))[name] == "fail"


def test_a_degenerate_champion_is_not_a_fairness_baseline():
    ev = champion_evidence(
        Interval(0.05, 0.03, 0.07),
        fairness_by_attribute={"sex": {"demographic_parity_difference": 0.059}},
        champion_fairness_by_attribute={"sex": {"demographic_parity_difference": 0.012}},
        champion_degenerate="selection rate 0.0040 on 900 rows",
    )
    d = decide(ev, CFG)
    regress = [c for c in d.checks if c.group == "fairness_regression"]
    assert [c.verdict for c in regress] == ["skip"]
    assert "degenerate" in regress[0].detail and "not a fairness baseline" in regress[0].detail
    assert d.passed


def test_degenerate_selection_rate():
    assert degenerate_reason(np.zeros(900, dtype=int), 0.02) is not None
    assert degenerate_reason(np.r_[np.ones(5), np.zeros(995)].astype(int), 0.02) is not None
    assert degenerate_reason(np.ones(100, dtype=int), 0.02) is not None
    assert degenerate_reason(np.r_[np.ones(50), np.zeros(50)].astype(int), 0.02) is None
    assert degenerate_reason(np.zeros(0, dtype=int), 0.02) is None


def test_too_few_rows_for_the_champion_do_not_raise():
    params = parse_params(
        {
            "dataset": {
                "name": "s",
                "reference": {"name": "r.csv"},
                "current": {"name": "c.csv"},
                "columns": ["x", "y"],
                "target": "y",
                "positive_label": "1",
                "features": {"numeric": ["x"]},
            },
            "validate": {"suite": "s"},
            "mlflow": {"registered_model": "s"},
            "evaluate": {"bootstrap_samples": 50},
            "gate": {"metrics": {"roc_auc": {"min": 0.8}}},
        }
    )
    y = np.ones(879)  # one row copied 879 times: a single class
    p = np.full(879, 0.7)
    champ, diffs = judge_champion(y, p, p, np.zeros(879, dtype=int), params)
    assert champ.note and math.isnan(diffs["roc_auc"].point)
    ev = Evidence(
        metrics=dict(champ.metrics),
        fairness={},
        champion_version="1",
        champion_metrics=dict(champ.metrics),
        differences=diffs,
        rows=1,
    )
    d = decide(ev, params.gate)
    assert d.verdict == "insufficient"
    assert verdicts(d)["roc_auc vs champion"] == "insufficient"
