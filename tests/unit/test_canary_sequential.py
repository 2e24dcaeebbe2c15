"""The canary's confidence sequences: the boundary's formula, coverage of a known AUC difference
at every look of simulated streams (paired and unpaired), the fixed interval re-checked at every
look covering far less often, and the fairness measures' influence values."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from pipelines.config import EvaluateConfig, FairnessConfig
from pipelines.release.canary.groups import judged_groups, measure_influence, measure_values
from pipelines.release.canary.sequential import (
    compare_arms_sequential,
    difference_interval,
    metric_influence,
    mixture_rho2,
    radius,
    sequence_interval,
)
from pipelines.stages.evaluate.result import TooLittleData
from pipelines.stages.fairness import assess_fairness
from tests.support.canary_data import answers, population

CFG = EvaluateConfig()
PHI = NormalDist()


def test_radius_is_the_normal_mixture_boundary():
    # alpha 0.05, tightest at 1000 rows: rho^2 = (-2 log a + log(-2 log a + 1)) / 1000
    rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 1000
    assert mixture_rho2(1000, 0.05) == pytest.approx(rho2)
    s2, t = 0.09, 1000  # one row's variance, rows
    by_hand = math.sqrt(
        2
        * (t * s2 * (rho2 / s2) + 1)
        / (t**2 * (rho2 / s2))
        * math.log(math.sqrt(t * rho2 + 1) / 0.05)
    )
    assert radius(s2 / t, t, 0.95, 1000) == pytest.approx(by_hand)
    # in standard errors: 3.03 at the planned rows (1.96 for one look), slowly wider after
    se = math.sqrt(s2 / t)
    assert radius(s2 / t, t, 0.95, t) / se == pytest.approx(3.03, abs=0.01)
    assert radius(s2 / (10 * t), 10 * t, 0.95, t) / math.sqrt(s2 / (10 * t)) == pytest.approx(
        3.24, abs=0.01
    )
    assert math.isnan(radius(0.1, 0, 0.95, 10))
    with pytest.raises(ValueError, match="planned_rows"):
        mixture_rho2(0, 0.05)
    i = sequence_interval(0.5, s2 / t, t, 0.95, t)
    assert i.lower < 0.5 < i.upper and i.upper - 0.5 == pytest.approx(0.5 - i.lower)


def binormal_stream(
    rng: np.random.Generator, n: int, mu_old: float, mu_new: float, shared: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' scores (logistic of binormal scores: AUC = Phi(mu / sqrt 2)),
    their noise correlated by ``shared``."""
    y = (rng.random(n) < 0.25).astype(np.float64)
    common = rng.normal(size=n)

    def scores(mu: float) -> np.ndarray:
        z = mu * y + shared * common + math.sqrt(1 - shared**2) * rng.normal(size=n)
        return 1.0 / (1.0 + np.exp(-(z - 1.0)))

    return y, scores(mu_old), scores(mu_new)


def auc_mu(auc: float) -> float:
    return math.sqrt(2) * PHI.inv_cdf(auc)


def coverage_at_every_look(paired: bool, runs: int, seed: int) -> tuple[float, float]:
    """Share of simulated streams whose interval covered the true AUC difference at every look
    (every 50 rows from 200 to 2,000): the confidence sequence's and the fixed 95% interval's
    (the same influence variance, ``point +- 1.96 se``) re-checked at each look."""
    true_old, true_new = 0.90, 0.91
    rng = np.random.default_rng(seed)
    cs_ok = fixed_ok = 0
    z = PHI.inv_cdf(0.975)
    for _ in range(runs):
        y, p_old, p_new = binormal_stream(rng, 2000, auc_mu(true_old), auc_mu(true_new), 0.9)
        if not paired:  # another stream for the canary: each row went to one arm
            y2, _, p_new = binormal_stream(rng, 2000, auc_mu(true_old), auc_mu(true_new), 0.9)
        cs_all = fixed_all = True
        for t in range(200, 2001, 50):
            ya, yb = y[:t], (y if paired else y2)[:t]
            old, new = (
                metric_influence(ya, p_old[:t], "roc_auc", CFG),
                metric_influence(yb, p_new[:t], "roc_auc", CFG),
            )
            d = difference_interval(old, new, 0.95, paired=paired, planned_rows=200)
            cs_all &= d.lower <= true_new - true_old <= d.upper
            half = (d.upper - d.point) / radius(1.0, 1, 0.95, 200)  # back to one standard error
            se = math.sqrt(
                np.sum((new[1] - old[1]) ** 2) / t**2
                if paired
                else np.sum(old[1] ** 2) / t**2 + np.sum(new[1] ** 2) / t**2
            )
            fixed_all &= abs(d.point - (true_new - true_old)) <= z * se
            assert half > 0
        cs_ok += cs_all
        fixed_ok += fixed_all
    return cs_ok / runs, fixed_ok / runs


@pytest.mark.parametrize("paired", [True, False], ids=["paired", "unpaired"])
def test_sequence_covers_the_true_difference_at_every_look(paired):
    cs, fixed = coverage_at_every_look(paired, runs=200, seed=7 + paired)
    assert cs >= 0.95, cs  # nominal 95%, at all 37 looks at once
    # the fixed interval, looked at 37 times, misses the truth at some look far more often
    assert fixed < 0.85, fixed


def test_compare_arms_sequential_matches_its_parts():
    rng = np.random.default_rng(3)
    y, p_old, p_new = binormal_stream(rng, 1500, auc_mu(0.9), auc_mu(0.92), 0.9)
    champ, canary, diff = compare_arms_sequential(
        y, p_old, y, p_new, "roc_auc", CFG, paired=True, planned_rows=300
    )
    old, new = (
        metric_influence(y, p_old, "roc_auc", CFG),
        metric_influence(y, p_new, "roc_auc", CFG),
    )
    assert diff == difference_interval(old, new, 0.95, paired=True, planned_rows=300)
    assert diff.point == pytest.approx(canary.point - champ.point)
    # paired on the same rows: narrower than the same rows taken as independent arms
    _, _, unpaired = compare_arms_sequential(
        y, p_old, y, p_new, "roc_auc", CFG, paired=False, planned_rows=600
    )
    assert diff.upper - diff.lower < 0.6 * (unpaired.upper - unpaired.lower)
    with pytest.raises(TooLittleData, match="single class"):
        metric_influence(np.zeros(50), rng.random(50), "roc_auc", CFG)


def test_fairness_influence_points_and_variance_match_the_bootstrap(params):
    """Away from ties between groups the linearised standard error is the bootstrap's; at a
    tie (two groups sharing the largest or smallest rate: a kink of max - min) it is larger."""
    rows = answers(params, population(3000, 5), "champion", "1", 1.0, 7, female_shift=-1.0)
    y = (rows["label"] == params.dataset.positive_label).to_numpy(dtype=int)
    y_pred = (rows["probability"] >= 0.5).to_numpy(dtype=int)
    cfg = FairnessConfig(min_group_size=100)
    result = assess_fairness(y, y_pred, rows[["sex", "race"]], cfg)
    names = {a.attribute for a in result.attributes}
    rng = np.random.default_rng(0)
    weights = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=2000).astype(float)
    checked = 0
    for g in judged_groups(rows, result, names, cfg):
        linear = measure_influence(g, y, y_pred)
        boot = measure_values(g, y, y_pred, weights)
        for measure, expected in result.attribute(g.attribute).measures.items():
            if expected is None:
                continue
            point, values = linear[measure]
            assert point == pytest.approx(expected)
            assert abs(values.mean()) < 1e-9
            sd_linear = math.sqrt(np.sum(values**2)) / len(y)
            sd_boot = float(np.nanstd(boot[measure]))
            # never much narrower than the bootstrap; where the groups are far apart (sex,
            # shifted) the same; at ties (max or min shared by groups) wider: conservative
            assert sd_linear > 0.85 * sd_boot, (g.attribute, measure)
            if g.attribute == "sex":
                assert sd_linear == pytest.approx(sd_boot, rel=0.15), measure
                checked += 1
    assert checked == 3
