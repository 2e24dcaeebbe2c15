"""Drift on the real Adult data: the published train and test files are one population; a
covariate-shifted sample is not; and the fast engine gives Evidently's numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.config import DriftConfig
from pipelines.stages.drift import DriftResult, detect_drift

# Scores from two engines on the same data differ only by floating-point summation order
# (observed below 1e-14); 1e-6 leaves room and is still far below any threshold.
TOLERANCE = 1e-6

METHOD_CONFIGS = {
    "params": None,  # the project's own params.yaml
    "ks-chisquare": DriftConfig(
        numeric_method="ks",
        numeric_threshold=0.05,
        categorical_method="chisquare",
        categorical_threshold=0.05,
        target_method="chisquare",
        target_threshold=0.05,
    ),
    "psi": DriftConfig(numeric_method="psi", categorical_method="psi", target_method="psi"),
    "jensenshannon": DriftConfig(numeric_method="jensenshannon"),
}


@pytest.fixture(scope="module")
def older(adult_current: pd.DataFrame) -> pd.DataFrame:
    """A covariate shift: only people over 50."""
    return adult_current[adult_current["age"] > 50].reset_index(drop=True)


@pytest.fixture(scope="module")
def adult_drift(params, adult_reference, adult_current) -> DriftResult:
    return detect_drift(adult_reference, adult_current, params.dataset, params.drift)


def test_train_and_test_files_show_no_drift(params, adult_drift):
    """adult.data and adult.test are random splits of one census extract."""
    assert not adult_drift.drifted
    assert adult_drift.n_drifted == 0, adult_drift.reasons
    assert not adult_drift.target.drifted
    assert adult_drift.n_columns == len(params.dataset.features.all)
    assert {c.column for c in adult_drift.columns} == set(params.dataset.features.all)
    assert adult_drift.reasons[0].endswith("below the 50% share: no dataset drift")


def test_missing_values_are_counted_not_scored(params, adult_reference, adult_drift):
    for c in adult_drift.columns:
        assert c.score is not None
        assert c.missing_reference == pytest.approx(adult_reference[c.column].isna().mean())
    assert adult_drift.column("workclass").missing_reference > 0.05


def test_older_population_flags_age(params, adult_reference, older):
    result = detect_drift(adult_reference, older, params.dataset, params.drift)
    age = result.column("age")
    assert age.drifted and age.score > 10 * age.threshold
    assert result.reasons[1].startswith("column 'age' wasserstein")  # the largest drift
    # age carries others with it (marital status, relationship): drifted, not just one column
    assert {"age", "marital-status", "relationship"} <= set(result.drifted_columns)


@pytest.mark.parametrize("config", list(METHOD_CONFIGS))
@pytest.mark.parametrize("current", ["test", "older"])
def test_fast_engine_matches_evidently(
    params, adult_reference, adult_current, older, config, current
):
    cfg = METHOD_CONFIGS[config] or params.drift
    cur = adult_current if current == "test" else older
    slow = detect_drift(adult_reference, cur, params.dataset, cfg, engine="evidently")
    fast = detect_drift(adult_reference, cur, params.dataset, cfg, engine="fast")
    for a, b in zip((*slow.columns, slow.target), (*fast.columns, fast.target), strict=True):
        assert (a.column, a.method, a.threshold) == (b.column, b.method, b.threshold)
        assert a.drifted == b.drifted, a.column
        assert b.score == pytest.approx(a.score, abs=TOLERANCE), a.column
    assert (slow.drifted, slow.n_drifted, slow.share) == (fast.drifted, fast.n_drifted, fast.share)
    assert slow.reasons == fast.reasons
