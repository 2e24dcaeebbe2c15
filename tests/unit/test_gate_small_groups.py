"""Groups too small for a fairness measure: a check they could fail is never a silent pass.

Pooled as one group beside the judged ones, their point is read against the bound and the
regression margin: beyond it, not enough evidence (naming the groups, their sizes and the rows a
decision would need); within it, reported as not judged, without blocking."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipelines.config import Bound, GateConfig, Params
from pipelines.records import Interval
from pipelines.stages.fairness.intervals import SmallGroups, fairness_intervals
from pipelines.stages.gate import Check, Evidence, decide, evidence_from_scores, render_markdown

EOD = "equalized_odds_difference"
CFG = GateConfig(
    metrics={"roc_auc": Bound(min=0.85)},
    fairness={EOD: Bound(max=0.15)},
    fairness_regression_margin=0.03,
)
GOOD = {"roc_auc": Interval(0.90, 0.89, 0.91)}
NAME = f"{EOD} (sex) vs champion"
FEMALE = "'F' (10 actual positives)"


def evidence(small_point: float, small_other: float, **kw: object) -> Evidence:
    """A challenger equal to the champion on the judged groups; 'F' too small to judge."""
    base = {
        "metrics": GOOD,
        "fairness": {},
        "champion_version": "3",
        "champion_metrics": GOOD,
        "differences": {"roc_auc": Interval(0.02, 0.01, 0.03)},
        "rows": 260,
        "fairness_by_attribute": {"sex": {EOD: 0.05}},
        "champion_fairness_by_attribute": {"sex": {EOD: 0.05}},
        "fairness_intervals": {"sex": {EOD: Interval(0.05, 0.02, 0.08)}},
        "fairness_changes": {"sex": {EOD: Interval(0.0, -0.02, 0.02)}},
        "fairness_small": {"sex": {EOD: SmallGroups((FEMALE,), 30, small_point, small_other, 780)}},
    }
    return Evidence(**(base | kw))  # type: ignore[arg-type]


def checks(ev: Evidence, cfg: GateConfig = CFG) -> dict[str, Check]:
    return {c.name: c for c in decide(ev, cfg).checks}


def test_a_regression_hidden_in_small_groups_is_not_enough_evidence():
    ev = evidence(small_point=0.12, small_other=0.05)  # pooled: +0.07, beyond the 0.03 margin
    d = decide(ev, CFG)
    check = {c.name: c for c in d.checks}[NAME]
    assert check.verdict == "insufficient" and check.rows_needed == 780
    assert FEMALE in check.detail and "below the minimum 30" in check.detail
    assert "+0.0700" in check.detail and "about 780 rows needed" in check.detail
    assert d.verdict == "insufficient" and any(FEMALE in r for r in d.reasons)


def test_rare_small_groups_are_reported_with_their_regression_but_do_not_hold():
    """A handful of rare categories (together under gate.fairness_small_groups_hold_share of
    the rows) moves by noise alone: their pooled regression is reported, not held; the same
    groups as a fifth of the rows hold the decision."""
    rare = SmallGroups((FEMALE,), 30, 0.12, 0.05, 780, share=0.05)
    ev = evidence(0.12, 0.05, fairness_small={"sex": {EOD: rare}})
    d = decide(ev, CFG)
    by_name = {c.name: c for c in d.checks}
    assert by_name[NAME].verdict == "pass" and d.verdict == "pass"
    note = by_name[f"{EOD} (sex) group size"]
    assert note.verdict == "skip" and "0.1200 (champion 0.0500)" in note.detail
    material = replace(rare, share=0.2)
    held = decide(evidence(0.12, 0.05, fairness_small={"sex": {EOD: material}}), CFG)
    assert held.verdict == "insufficient"
    stricter = CFG.model_copy(update={"fairness_small_groups_hold_share": 0.01})
    assert decide(ev, stricter).verdict == "insufficient"


def test_small_groups_within_the_margin_are_reported_not_judged_and_do_not_block():
    d = decide(evidence(small_point=0.06, small_other=0.05), CFG)
    by_name = {c.name: c for c in d.checks}
    assert by_name[NAME].verdict == "pass"
    note = by_name[f"{EOD} (sex) group size"]
    assert note.verdict == "skip" and FEMALE in note.detail and "not judged" in note.detail
    assert d.verdict == "pass"
    assert any(r.startswith("not judged: ") and FEMALE in r for r in d.reasons)
    assert FEMALE in render_markdown(d)


def test_a_measure_undefined_on_the_judged_groups_is_held_by_its_small_groups():
    """One group of two too small: the measure has no judged value at all."""
    ev = evidence(
        small_point=0.2,
        small_other=0.05,
        fairness_by_attribute={"sex": {}},
        champion_fairness_by_attribute={"sex": {}},
        fairness_intervals={"sex": {EOD: Interval(float("nan"), float("nan"), float("nan"))}},
        fairness_changes={},
    )
    got = checks(ev)
    assert got[NAME].verdict == "insufficient"
    assert got[EOD].verdict == "skip"  # comparable: the bound is not held by the pooled point
    within = checks(
        replace(ev, fairness_small={"sex": {EOD: SmallGroups((FEMALE,), 30, 0.06, 0.05)}})
    )
    assert within[NAME].verdict == "skip"
    assert within[EOD].verdict == "skip"


def test_a_measure_small_groups_leave_uncomparable_is_not_enough_evidence_whatever_its_point():
    """'F' pooled is still below the minimum and 'M' is the only group large enough: nothing
    to compare, so a point within the margin shows nothing (the benchmark's 18% of false
    promotions with the point rule alone)."""
    fine = SmallGroups((FEMALE,), 30, 0.06, 0.05, 780, comparable=False)
    d = decide(evidence(0.0, 0.0, fairness_small={"sex": {EOD: fine}}), CFG)
    got = {c.name: c for c in d.checks}
    for name in (NAME, EOD):
        assert got[name].verdict == "insufficient" and got[name].rows_needed == 780
        assert "fewer than two groups large enough" in got[name].detail
        assert FEMALE in got[name].detail
    assert d.verdict == "insufficient"


def test_a_bound_beyond_only_in_pooled_small_groups_is_reported_not_held():
    """A bound is on gaps between groups as they are: the pooled point beyond it is in the
    group-size note, and the check passes on the judged groups (the first model on the
    published held-out rows has two small groups whose pooled gap is just beyond its bound)."""
    d = decide(evidence(small_point=0.3, small_other=0.29), CFG)
    got = {c.name: c for c in d.checks}
    assert got[EOD].verdict == "pass"
    assert "0.3000" in got[f"{EOD} (sex) group size"].detail
    assert got[NAME].verdict == "pass"  # +0.01: within the margin


def test_small_groups_never_soften_a_judged_fail():
    ev = evidence(
        small_point=0.05,
        small_other=0.05,
        fairness_by_attribute={"sex": {EOD: 0.15}},
        fairness_changes={"sex": {EOD: Interval(0.10, 0.08, 0.12)}},
    )
    assert checks(ev)[NAME].verdict == "fail"


def _rows() -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """'M': 100 positives, 100 negatives; 'F': 10 positives, 50 negatives. Both models select
    half of M's positives and a tenth of everyone's negatives; of F's positives the challenger
    selects 1, the champion 5: a TPR gap of 0.4 that only F's 10 positives show."""
    y = np.r_[np.ones(100), np.zeros(100), np.ones(10), np.zeros(50)].astype(np.int64)
    male = np.r_[np.ones(50), np.zeros(50), np.ones(10), np.zeros(90)]
    neg_f = np.r_[np.ones(5), np.zeros(45)]
    new = np.r_[male, np.ones(1), np.zeros(9), neg_f]
    old = np.r_[male, np.ones(5), np.zeros(5), neg_f]
    sex = pd.DataFrame({"sex": ["M"] * 200 + ["F"] * 60})
    return y, new, old, sex


def test_fairness_intervals_pool_the_small_groups_and_say_how_many_rows_would_judge_them():
    y, new, old, sex = _rows()
    sizes = dict.fromkeys((EOD, "demographic_parity_difference", "disparate_impact_ratio"), 30)
    res = fairness_intervals(
        y, new, {"sex": sex["sex"].to_numpy()}, sizes, 100, 0.95, 0, other_pred=old
    )
    assert res.measures["sex"][EOD].point == pytest.approx(0.0)  # FPR alone: equal
    small = res.small["sex"]
    assert set(small) == {EOD}  # 60 rows: enough for parity and impact
    assert small[EOD].groups == (FEMALE,)
    assert small[EOD].point == pytest.approx(0.4) and small[EOD].other == pytest.approx(0.0)
    assert small[EOD].rows_needed == 780  # 260 rows * 30 / 10 positives
    assert not small[EOD].comparable  # TPR: 'M' alone is large enough, 'F' pooled is not
    # a third group large enough to compare with 'M': the TPR half is judged without 'F'
    labels = {"sex": np.r_[["M"] * 200, ["F"] * 60, ["W"] * 80]}
    y3 = np.r_[y, np.ones(40), np.zeros(40)].astype(np.int64)
    new3 = np.r_[new, np.ones(20), np.zeros(20), np.ones(4), np.zeros(36)]
    three = fairness_intervals(y3, new3, labels, sizes, 100, 0.95, 0, other_pred=new3)
    assert three.small["sex"][EOD].groups == ("'F' (10 actual positives)",)
    assert three.small["sex"][EOD].comparable


def test_the_gate_holds_the_challenger_on_scored_rows(params: Params):
    """End to end from scores: the old rule passed this challenger (FPR gap only)."""
    y, new, old, sex = _rows()
    cfg = params.model_copy(
        update={"evaluate": params.evaluate.model_copy(update={"bootstrap_samples": 100})}
    )
    proba_new, proba_old = np.where(new == 1, 0.9, 0.1), np.where(old == 1, 0.9, 0.1)
    scored = evidence_from_scores(y, proba_new, sex, cfg, proba_old=proba_old, champion_version="1")
    assert scored.evidence.rows == 260
    check = {c.name: c for c in decide(scored.evidence, cfg.gate).checks}[NAME]
    assert check.verdict == "insufficient" and FEMALE in check.detail
    # the old rule, blind to the groups it skipped: the regression passed
    blind = replace(scored.evidence, fairness_small={})
    assert {c.name: c for c in decide(blind, cfg.gate).checks}[NAME].verdict == "pass"


def test_evidence_from_scores_needs_the_champion_whole(params: Params):
    y, new, _, sex = _rows()
    with pytest.raises(ValueError, match="version and its scores"):
        evidence_from_scores(y, new.astype(float), sex, params, champion_version="1")
