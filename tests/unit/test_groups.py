"""Numeric sensitive attributes in ranges (fairness.bins): the groups, their names, the limit
on how many, the same groups in the fairness stage and in the canary's bootstrap."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.config import BinsConfig, ConfigError, FairnessConfig, parse_params
from pipelines.groups import GroupingError, cross_groups, range_names, sensitive_groups
from pipelines.stages.fairness import assess_fairness
from pipelines.stages.fairness.intervals import attribute_labels

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())
EDGES = FairnessConfig(bins={"age": BinsConfig(edges=(25, 45, 65))})


def test_edges_name_each_group_by_its_range_and_keep_missing():
    ages = pd.Series([17.0, 24.9, 25.0, 44.0, 45.0, 64.5, 65.0, 90.0, None], name="age")
    got = sensitive_groups(ages, EDGES)
    assert list(got) == [
        "(-inf, 25)", "(-inf, 25)", "[25, 45)", "[25, 45)", "[45, 65)", "[45, 65)",
        "[65, inf)", "[65, inf)", None,
    ]  # fmt: skip
    assert got.name == "age" and got.index.equals(ages.index)


def test_quantiles_split_the_rows_into_groups_of_about_equal_size(adult_current):
    cfg = FairnessConfig(bins={"age": BinsConfig(quantiles=4)})
    got = sensitive_groups(adult_current["age"], cfg)
    sizes = got.value_counts()
    assert len(sizes) == 4 and sizes.min() > 0.2 * len(got)
    q = np.quantile(adult_current["age"], [0.25, 0.5, 0.75])
    assert set(sizes.index) == set(range_names(q))


def test_an_unbinned_attribute_with_too_many_groups_is_named(adult_current):
    with pytest.raises(GroupingError) as err:
        sensitive_groups(adult_current["age"], FairnessConfig())
    msg = str(err.value)
    assert "'age' has 73 distinct values, more than fairness.max_groups (20)" in msg
    assert "fairness.bins.age" in msg
    race = sensitive_groups(adult_current["race"], FairnessConfig())  # five: left as they are
    pd.testing.assert_series_equal(race, adult_current["race"])


def test_text_in_a_binned_attribute_is_named():
    with pytest.raises(GroupingError, match=r"'age' is binned .* 1 value\(s\) .* 'old'"):
        sensitive_groups(pd.Series([30.0, "old"], name="age", dtype=object), EDGES)


def test_fairness_is_judged_over_the_ranges(adult_current):
    """Age as a sensitive attribute: a handful of judged groups, not one per year of age."""
    df = adult_current.head(6000)
    y = (df["income"] == ">50K").to_numpy(dtype=int)
    y_pred = (df["education-num"] >= 13).to_numpy(dtype=int)
    result = assess_fairness(y, y_pred, df[["age", "sex"]], EDGES)
    age = result.attribute("age")
    assert [g.group for g in age.groups] == ["(-inf, 25)", "[25, 45)", "[45, 65)", "[65, inf)"]
    assert sum(g.n for g in age.groups) + sum(g.n for g in age.too_small) == len(df)
    assert age.disparate_impact_ratio is not None and age.disparate_impact_ratio > 0
    names = {g.group for g in result.attribute("age x sex").groups}
    assert "[25, 45) x Female" in names


def test_the_canary_bootstrap_groups_rows_as_the_stage_does(adult_current):
    from pipelines.release.canary.groups import judged_groups, measure_values

    df = adult_current.head(4000).reset_index(drop=True)
    y = (df["income"] == ">50K").to_numpy(dtype=int)
    y_pred = (df["hours-per-week"] > 45).to_numpy(dtype=int)
    cfg = FairnessConfig(bins={"age": BinsConfig(quantiles=3)}, min_group_size=50)
    result = assess_fairness(y, y_pred, df[["age", "race"]], cfg)
    names = {a.attribute for a in result.attributes}
    for g in judged_groups(df, result, names, cfg):
        stage = result.attribute(g.attribute)
        assert list(g.indicators.sum(axis=0)) == [grp.n for grp in stage.groups]
        got = measure_values(g, y, y_pred, np.ones((1, len(y))))
        for measure, expected in stage.measures.items():
            assert (
                np.isnan(got[measure][0])
                if expected is None
                else (got[measure][0] == pytest.approx(expected))
            )


@pytest.mark.parametrize(
    "bins,expected",
    [
        ({"sex": {"edges": [1]}}, "key 'fairness.bins.sex': a categorical feature has no ranges"),
        ({"fnlwgt": {"quantiles": 4}}, "key 'fairness.bins.fnlwgt': not in dataset.sensitive"),
        ({"age": {"edges": [45, 25]}}, "key 'fairness.bins.age.edges': must increase"),
        ({"age": {"edges": [25], "quantiles": 4}}, "give edges or quantiles, one of the two"),
        ({"age": {"quantiles": 30}}, "key 'fairness.bins.age': 30 groups, more than max_groups"),
    ],
)
def test_bins_are_checked_at_load(bins, expected):
    raw = copy.deepcopy(RAW)
    raw["dataset"]["sensitive"] = ["sex", "race", "age"]
    raw["fairness"]["bins"] = bins
    with pytest.raises(ConfigError) as err:
        parse_params(raw, source="params.yaml")
    assert expected in str(err.value)


def test_bins_of_a_sensitive_number_load():
    raw = copy.deepcopy(RAW)
    raw["dataset"]["sensitive"] = ["sex", "race", "age"]
    raw["fairness"]["bins"] = {"age": {"edges": [25, 45, 65]}}
    assert parse_params(raw).fairness.bins["age"].groups == 4


def _crossable() -> pd.DataFrame:
    """Five values of ``a`` by five of ``b``: each attribute within the default 20 groups, the
    intersection 25."""
    a, b = np.meshgrid(list("vwxyz"), list("12345"))
    return pd.DataFrame({"a": np.repeat(a.ravel(), 4), "b": np.repeat(b.ravel(), 4)})


def test_an_intersection_with_too_many_groups_is_named():
    sensitive = _crossable()
    labels = {c: sensitive[c].to_numpy() for c in sensitive}
    with pytest.raises(GroupingError) as err:
        cross_groups(labels, FairnessConfig())
    msg = str(err.value)
    assert "intersection 'a x b' has 25 groups, more than fairness.max_groups (20)" in msg
    assert "fairness.intersection" in msg and "gate.fairness_include_intersection" in msg
    wide = FairnessConfig(max_groups=25)
    crossed = cross_groups(labels, wide)
    assert crossed[0] == "v x 1" and len(set(crossed)) == 25


def test_the_fairness_stage_and_the_gate_refuse_it_unless_left_out():
    sensitive = _crossable()
    y = np.tile([0, 1], len(sensitive) // 2)
    with pytest.raises(GroupingError, match="intersection 'a x b'"):
        assess_fairness(y, y, sensitive, FairnessConfig())
    with pytest.raises(GroupingError, match="intersection 'a x b'"):
        attribute_labels(sensitive, FairnessConfig(), intersection=True)
    single = assess_fairness(y, y, sensitive, FairnessConfig(intersection=False))
    assert [a.attribute for a in single.attributes] == ["a", "b"]
    assert set(attribute_labels(sensitive, FairnessConfig(), intersection=False)) == {"a", "b"}
