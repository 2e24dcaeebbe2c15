"""Performance estimated without outcomes (pipelines.monitor.estimate) from the calibrator kept
at evaluation (pipelines.stages.evaluate.calibration), on synthetic rows with a known truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from pipelines.monitor.estimate import (
    METRICS,
    compare,
    estimate_metric,
    expected_metric,
    realised_metric,
)
from pipelines.stages.evaluate.calibration import CalibrationError, Calibrator, fit_calibrator

THRESHOLD = 0.5


def _rows(rng: np.random.Generator, n: int, mean: float = 0.0, sd: float = 1.0):
    """A feature, the true probability of the positive class given it, and the model's score:
    a monotone but uncalibrated function of that probability (with ties), as a model's is."""
    x = rng.normal(mean, sd, n)
    p = 1 / (1 + np.exp(-(2.0 * x - 1.0)))
    return p, np.round(p**1.5, 3)


def _estimate(cal: Calibrator, metric: str, s: np.ndarray, seed: int = 0):
    return estimate_metric(
        metric, s, cal.apply(s), THRESHOLD, replicates=cal.apply_replicates(s), seed=seed
    )


@pytest.fixture(scope="module")
def calibrator() -> Calibrator:
    rng = np.random.default_rng(0)
    p, s = _rows(rng, 4000)
    return fit_calibrator(rng.random(len(p)) < p, s, seed=0)


@pytest.mark.parametrize(
    "metric,reference",
    [
        ("roc_auc", lambda y, s: roc_auc_score(y, s)),
        ("accuracy", lambda y, s: accuracy_score(y, s >= THRESHOLD)),
        ("f1", lambda y, s: f1_score(y, s >= THRESHOLD)),
        ("precision", lambda y, s: precision_score(y, s >= THRESHOLD)),
        ("recall", lambda y, s: recall_score(y, s >= THRESHOLD)),
    ],
)
def test_the_realised_metric_is_the_usual_one(metric, reference):
    rng = np.random.default_rng(1)
    p, s = _rows(rng, 3000)
    y = rng.random(len(p)) < p
    assert realised_metric(metric, y, s, THRESHOLD) == pytest.approx(reference(y, s), abs=1e-12)


def test_the_expected_auc_is_the_mean_realised_auc_over_outcomes():
    rng = np.random.default_rng(2)
    p, s = _rows(rng, 2000)
    draws = [realised_metric("roc_auc", rng.random(len(p)) < p, s, THRESHOLD) for _ in range(300)]
    assert expected_metric("roc_auc", s, p, THRESHOLD) == pytest.approx(np.mean(draws), abs=0.002)


@pytest.mark.parametrize("metric", METRICS)
def test_on_calibrated_scores_the_estimate_holds_the_realised_metric(calibrator, metric):
    rng = np.random.default_rng(3)
    inside = 0
    for i in range(20):
        p, s = _rows(rng, 3000)
        y = rng.random(len(p)) < p
        est = _estimate(calibrator, metric, s, seed=i)
        realised = realised_metric(metric, y, s, THRESHOLD)
        assert est.lower <= est.point <= est.upper
        assert est.realised_lower <= est.point <= est.realised_upper
        assert abs(est.point - realised) < 0.05
        inside += not compare(est, realised).outside
    assert inside >= 17, f"{metric}: the realised metric inside the interval {inside}/20 times"


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "f1"])
def test_under_covariate_shift_the_estimate_tracks_the_metric(calibrator, metric):
    rng = np.random.default_rng(4)
    p0, s0 = _rows(rng, 20000)
    before = realised_metric(metric, rng.random(len(p0)) < p0, s0, THRESHOLD)
    # the inputs' mix changes (a narrow band of the feature), the outcome given them does not
    p, s = _rows(rng, 3000, mean=0.8, sd=0.4)
    y = rng.random(len(p)) < p
    realised = realised_metric(metric, y, s, THRESHOLD)
    est = _estimate(calibrator, metric, s)
    assert abs(realised - before) > 0.05  # the shift moved the metric ...
    assert not compare(est, realised).outside  # ... and the estimate followed it
    assert abs(est.point - realised) < 0.03


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "f1"])
def test_under_concept_change_the_estimate_and_the_outcomes_disagree(calibrator, metric):
    rng = np.random.default_rng(5)
    p, s = _rows(rng, 3000)
    y = rng.random(len(p)) < p
    # the same inputs, but a quarter of the outcomes turn the other way (the relation changed)
    y = y ^ (rng.random(len(y)) < 0.25)
    agree = compare(_estimate(calibrator, metric, s), realised_metric(metric, y, s, THRESHOLD))
    assert agree.outside and agree.gap < 0
    assert agree.to_dict()["outside"] is True


def test_the_calibrator_is_plain_data_and_round_trips(calibrator):
    text = json.dumps(calibrator.to_dict())
    back = Calibrator.from_dict(json.loads(text))
    s = np.linspace(-0.5, 1.5, 101)
    assert np.array_equal(back.apply(s), calibrator.apply(s))
    assert np.array_equal(back.apply_replicates(s), calibrator.apply_replicates(s))
    assert back.apply(s).min() >= 0 and back.apply(s).max() <= 1
    assert len(calibrator.replicates) == 50 and calibrator.rows == 4000


@pytest.mark.parametrize(
    "change,message",
    [
        ({"method": "pickle"}, "not an isotonic calibrator"),
        ({"scores": [0.2, 0.1]}, "lengths"),
        ({"scores": [0.1, 0.2], "probabilities": [0.9, 0.1]}, "non-decreasing"),
        ({"scores": [0.1, math.nan], "probabilities": [0.1, 0.2]}, "finite"),
        ({"scores": [0.1, 0.2], "probabilities": [0.1, 1.2]}, r"\[0, 1\]"),
        ({"rows": "many"}, "unreadable"),
    ],
)
def test_a_bad_calibrator_file_is_refused_with_the_reason(calibrator, change, message):
    with pytest.raises(CalibrationError, match=message):
        Calibrator.from_dict(calibrator.to_dict() | change)


def test_nothing_to_calibrate_is_said():
    with pytest.raises(CalibrationError, match="single class"):
        fit_calibrator(np.zeros(10), np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match="no estimate of 'log_loss'"):
        estimate_metric("log_loss", np.zeros(3), np.zeros(3), THRESHOLD)
