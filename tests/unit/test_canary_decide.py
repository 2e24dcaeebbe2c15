"""The canary's decision on synthetic labelled answers with known effects: a clearly better
canary promotes, a clearly worse one rolls back, too little evidence waits until the time limit,
shadow mode compares on the same requests (a narrower interval), a fairness regression in one
group rolls back a canary that is otherwise better."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from pipelines.config import CanaryConfig, Params
from pipelines.release.canary.decide import CanaryDecision, compare_arms, decide
from pipelines.release.canary.report import render_markdown
from pipelines.release.canary.sequential import difference_interval, metric_influence
from pipelines.stages.evaluate import paired_bootstrap_difference
from tests.support.canary_data import (  # noqa: F401
    START,  # noqa: F401
    answers,
    population,
)

NOW = START + timedelta(hours=3)


def with_canary(params: Params, **canary: object) -> Params:
    """The project's params with ``deploy.canary`` overridden (and a quicker bootstrap)."""
    cfg = CanaryConfig(**{**params.deploy.canary.model_dump(), **canary})
    return params.model_copy(
        update={
            "deploy": params.deploy.model_copy(update={"canary": cfg}),
            "evaluate": params.evaluate.model_copy(update={"bootstrap_samples": 400}),
        }
    )


def canary_rows(
    params: Params, n: int, champion: float, canary: float, **canary_kw: float
) -> pd.DataFrame:
    """Canary mode: the arms answer different requests."""
    return pd.concat(
        [
            answers(params, population(n, 1), "champion", "1", champion, 11, ids="a"),
            answers(params, population(n, 2), "canary", "2", canary, 12, ids="b", **canary_kw),
        ],
        ignore_index=True,
    )


def shadow_rows(params: Params, n: int, champion: float, shadow: float) -> pd.DataFrame:
    """Shadow mode: both models answer every request; their errors are mostly shared."""
    pop = population(n, 3)
    return pd.concat(
        [
            answers(params, pop, "champion", "1", champion, 21, shared_noise=0.95),
            answers(params, pop, "shadow", "2", shadow, 22, shared_noise=0.95),
        ],
        ignore_index=True,
    )


def run(params: Params, rows: pd.DataFrame, mode="canary", now=NOW, **kw) -> CanaryDecision:
    return decide(rows, params, mode=mode, started=START, now=now, **kw)


METHODS = ["sequential", "fixed"]


@pytest.mark.parametrize("method", METHODS)
def test_clearly_better_canary_promotes(params, method):
    p = with_canary(params, min_rows=300, method=method)
    d = run(p, canary_rows(p, 3000, champion=0.8, canary=1.5))
    assert d.verdict == "promote", d.reasons
    assert d.difference is not None and d.difference.lower > 0.02
    assert d.canary.metric.point > d.champion.metric.point  # type: ignore[union-attr]
    assert (d.champion.rows, d.canary.rows) == (3000, 3000)
    assert not d.paired and d.canary.versions == ("2",)
    assert any("not worse than the champion" in r for r in d.reasons)
    assert d.fairness_changes and not any(c.regressed for c in d.fairness_changes)


@pytest.mark.parametrize("method", METHODS)
def test_clearly_worse_canary_rolls_back(params, method):
    p = with_canary(params, min_rows=300, method=method)
    d = run(p, canary_rows(p, 3000, champion=1.5, canary=0.8))
    assert d.verdict == "rollback", d.reasons
    assert d.difference is not None and d.difference.upper < -p.deploy.canary.margin
    assert "worse than the champion beyond the 0.01 margin" in d.reasons[0]


def test_too_few_labelled_rows_waits(params):
    p = with_canary(params, min_rows=300)
    d = run(p, canary_rows(p, 120, champion=1.0, canary=1.0))
    assert d.verdict == "wait"
    assert d.difference is None and d.champion.metric is None
    assert "champion arm has 120 labelled rows of the 300 needed" in d.reasons
    assert "canary arm has 120 labelled rows of the 300 needed" in d.reasons


@pytest.mark.parametrize("method", METHODS)
def test_equal_arms_with_a_wide_interval_wait(params, method):
    p = with_canary(params, min_rows=300, method=method)
    d = run(p, canary_rows(p, 400, champion=1.0, canary=1.0))
    assert d.verdict == "wait", d.reasons
    diff = d.difference
    assert diff is not None and diff.lower < -0.01 < diff.upper
    assert any("neither clearly fine nor worse" in r for r in d.reasons)


@pytest.mark.parametrize("n", [120, 400])
def test_undecided_after_max_hours_rolls_back(params, n):
    p = with_canary(params, min_rows=300, max_hours=24)
    rows = canary_rows(p, n, champion=1.0, canary=1.0)
    assert run(p, rows, now=START + timedelta(hours=23)).verdict == "wait"
    d = run(p, rows, now=START + timedelta(hours=25))
    assert d.verdict == "rollback"
    assert d.reasons[0].startswith("undecided after 25.0 h (limit 24 h)")


@pytest.mark.parametrize("method", METHODS)
def test_shadow_is_paired_and_narrower_than_unpaired(params, method):
    p = with_canary(params, min_rows=300, method=method)
    rows = shadow_rows(p, 1500, champion=1.0, shadow=1.1)
    shadow = run(p, rows, mode="shadow")
    assert shadow.paired and shadow.champion.rows == shadow.canary.rows == 1500
    # the same rows judged as if the arms had seen different requests
    unpaired = run(p, rows.replace({"arm": {"shadow": "canary"}}), mode="canary")
    assert not unpaired.paired
    assert shadow.difference is not None and unpaired.difference is not None
    width = {
        name: d.difference.upper - d.difference.lower  # type: ignore[union-attr]
        for name, d in (("paired", shadow), ("unpaired", unpaired))
    }
    assert width["paired"] < width["unpaired"] / 2, width
    assert shadow.difference.point == pytest.approx(unpaired.difference.point)
    # and it is the paired interval on the requests both models answered: the evaluate
    # stage's paired bootstrap, or the confidence sequence of the paired influence values
    champ = rows[rows["arm"] == "champion"]
    y = (champ["label"] == p.dataset.positive_label).to_numpy(dtype=int)
    p_new = rows[rows["arm"] == "shadow"]["probability"].to_numpy()
    p_old = champ["probability"].to_numpy()
    if method == "fixed":
        expected = paired_bootstrap_difference(y, p_new, p_old, p.deploy.canary.metric, p.evaluate)
    else:
        expected = difference_interval(
            metric_influence(y, p_old, "roc_auc", p.evaluate),
            metric_influence(y, p_new, "roc_auc", p.evaluate),
            p.evaluate.confidence,
            paired=True,
            planned_rows=300,
        )
    assert shadow.difference == expected
    assert (shadow.method, shadow.rows, unpaired.rows) == (method, 1500, 3000)


def test_shadow_pairs_only_requests_both_models_answered(params):
    p = with_canary(params, min_rows=300)
    rows = shadow_rows(p, 1000, champion=1.0, shadow=1.5)
    lost = rows.index[(rows["arm"] == "shadow")][:200]  # shadow answers that never came back
    d = run(p, rows.drop(lost), mode="shadow")
    assert d.champion.rows == d.canary.rows == 800


@pytest.mark.parametrize("method", METHODS)
def test_fairness_regression_in_one_group_rolls_back(params, method):
    p = with_canary(params, min_rows=300, fairness_margin=0.03, method=method)
    fair = run(p, canary_rows(p, 3000, champion=0.8, canary=1.5))
    unfair = run(p, canary_rows(p, 3000, champion=0.8, canary=1.5, female_shift=-1.5))
    assert fair.verdict == "promote"
    assert unfair.verdict == "rollback", unfair.reasons
    # better on the metric, so the fairness regression alone rolled it back
    assert unfair.difference is not None and unfair.difference.lower > -p.deploy.canary.margin
    regressed = {(c.attribute, c.measure) for c in unfair.fairness_changes if c.regressed}
    assert ("sex", "demographic_parity_difference") in regressed
    assert all(attr == "sex" for attr, _ in regressed)
    assert any(r.startswith("demographic_parity_difference for sex") for r in unfair.reasons)
    groups = {g.group for g in unfair.canary.fairness.attribute("sex").groups}  # type: ignore[union-attr]
    assert groups == {"Male", "Female"}


def test_rows_of_another_canary_version_are_left_out(params):
    p = with_canary(params, min_rows=300)
    rows = canary_rows(p, 3000, champion=0.8, canary=1.5)
    stale = answers(p, population(500, 9), "canary", "7", 0.1, 13, ids="z")
    d = run(p, pd.concat([rows, stale], ignore_index=True), canary_version="2")
    assert d.verdict == "promote" and d.canary.rows == 3000 and d.canary.versions == ("2",)


def test_single_class_labels_wait_with_the_reason(params):
    p = with_canary(params, min_rows=300)
    rows = canary_rows(p, 400, champion=1.0, canary=1.0)
    negative = rows.loc[rows["label"] != p.dataset.positive_label, "label"].iloc[0]
    rows.loc[rows["arm"] == "canary", "label"] = negative  # no positive outcome came back yet
    d = run(p, rows)
    assert d.verdict == "wait"
    assert any("cannot measure roc_auc yet" in r and "single class" in r for r in d.reasons)


def test_unpaired_difference_is_the_difference_of_independent_resamples(params):
    p = with_canary(params)
    rng = np.random.default_rng(0)
    y1, y2 = rng.integers(0, 2, 500), rng.integers(0, 2, 700)
    p1, p2 = rng.random(500), rng.random(700)
    champ, canary, diff = compare_arms(y1, p1, y2, p2, "roc_auc", p.evaluate, paired=False)
    assert diff.point == pytest.approx(canary.point - champ.point)
    # independent arms: the difference's interval is wider than either arm's
    assert diff.upper - diff.lower > max(canary.upper - canary.lower, champ.upper - champ.lower)
    again = compare_arms(y1, p1, y2, p2, "roc_auc", p.evaluate, paired=False)
    assert again == (champ, canary, diff)  # seeded: the same decision twice


def test_decision_serialises_and_rejects_unknown_mode(params):
    import json

    p = with_canary(params, min_rows=300)
    d = run(p, canary_rows(p, 3000, champion=0.8, canary=1.5))
    out = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert out["verdict"] == "promote" and out["rules"]["margin"] == p.deploy.canary.margin
    assert out["canary"]["fairness"]["attributes"]
    with pytest.raises(ValueError, match="unknown canary mode"):
        run(p, canary_rows(p, 10, 1.0, 1.0), mode="blue")


@pytest.mark.parametrize("method", METHODS)
def test_noisy_fairness_points_alone_do_not_roll_back(params, method):
    """Two arms of the same model on different requests: some measure's point differs by more
    than the margin by chance; its interval includes no change, so nothing regressed."""
    p = with_canary(params, min_rows=300, fairness_margin=0.03, method=method)
    d = run(p, canary_rows(p, 400, champion=1.0, canary=1.0))
    noisy = [c for c in d.fairness_changes if c.regression.point > 0.03]
    assert noisy, "the synthetic arms should show a chance difference beyond the margin"
    assert not any(c.regressed for c in d.fairness_changes)
    assert all(c.regression.lower <= 0.03 < c.regression.upper for c in noisy)
    assert d.verdict == "wait"


@pytest.mark.parametrize("intersection", [False, True])
def test_bootstrapped_measures_equal_the_fairness_stage_at_unit_weights(params, intersection):
    from pipelines.config import FairnessConfig
    from pipelines.release.canary.groups import judged_groups, measure_values
    from pipelines.stages.fairness import assess_fairness

    rows = answers(params, population(2000, 5), "champion", "1", 1.0, 7)
    y = (rows["label"] == params.dataset.positive_label).to_numpy(dtype=int)
    y_pred = (rows["probability"] >= 0.5).to_numpy(dtype=int)
    cfg = FairnessConfig(min_group_size=100, intersection=intersection)
    result = assess_fairness(y, y_pred, rows[["sex", "race"]], cfg)
    names = {a.attribute for a in result.attributes}
    assert ("sex x race" in names) == intersection
    for g in judged_groups(rows, result, names, cfg):
        values = measure_values(g, y, y_pred, np.ones((1, len(y))))
        for measure, expected in result.attribute(g.attribute).measures.items():
            got = values[measure][0]
            assert np.isnan(got) if expected is None else got == pytest.approx(expected), (
                g.attribute,
                measure,
            )


def test_sequential_interval_is_wider_than_one_looks_and_the_record_names_it(params):
    """The confidence sequence pays for looking at every pass with a wider interval; the
    decision record and the report name the method and the rows seen."""
    rows = canary_rows(params, 1000, champion=1.0, canary=1.2)
    seq = run(with_canary(params, method="sequential"), rows)
    fixed = run(with_canary(params, method="fixed"), rows)
    assert seq.difference is not None and fixed.difference is not None
    assert seq.difference.point == pytest.approx(fixed.difference.point)
    width = {d.method: d.difference.upper - d.difference.lower for d in (seq, fixed)}  # type: ignore[union-attr]
    assert 1.2 * width["fixed"] < width["sequential"] < 2.5 * width["fixed"], width
    out = seq.to_dict()
    assert (out["method"], out["rows"], out["rules"]["planned_rows"]) == ("sequential", 2000, 600)
    assert "confidence sequence" in seq.reasons[0] and "2000 rows" in seq.reasons[0]
    md = render_markdown(seq, "2", "1")
    assert "Method: sequential; 2,000 labelled rows in both arms together seen." in md
    assert "valid at every look" in md
    assert "bootstrap CI, 400 resamples" in render_markdown(fixed, "2", "1")
