"""Stage `evaluate`: fast metrics against scikit-learn, bootstrap intervals, paired differences,
JSON round trip (the stage's files and exit codes: tests/model/test_evaluate_stage.py)."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from pipelines.config import EvaluateConfig
from pipelines.records import Interval
from pipelines.stages.evaluate import (
    METRICS,
    CalibrationBin,
    Confusion,
    Evaluation,
    EvaluationError,
    RocCurve,
    TooLittleData,
    confusion_rows,
    evaluate_scores,
    higher_is_better,
    paired_bootstrap_difference,
    paired_bootstrap_differences,
    unmeasured,
)
from pipelines.stages.evaluate.bootstrap import (
    _block_size,
    _metric_values,
    _prepare,
    _resample_weights,
)

CFG = EvaluateConfig(bootstrap_samples=200, seed=0)


def synthetic(n: int, seed: int = 0, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores: y ~ Bernoulli(p), with a skew like a real classifier's output."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 1.6, size=n)
    if ties:
        p = np.round(p, 2)  # many tied scores, and some exactly on bin edges and the threshold
    y = (rng.random(n) < p).astype(np.int64)
    return y, p


def sklearn_ece(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    edges = np.linspace(0, 1, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(y) * np.abs(prob_true - prob_pred)))


def sklearn_metrics(y, p, thr=0.5, bins=10, w=None) -> dict[str, float]:
    pred = (p >= thr).astype(int)
    out = {
        "roc_auc": skm.roc_auc_score(y, p, sample_weight=w),
        "accuracy": skm.accuracy_score(y, pred, sample_weight=w),
        "f1": skm.f1_score(y, pred, sample_weight=w, zero_division=0),
        "precision": skm.precision_score(y, pred, sample_weight=w, zero_division=0),
        "recall": skm.recall_score(y, pred, sample_weight=w, zero_division=0),
        "log_loss": skm.log_loss(y, p, sample_weight=w),
        "brier": skm.brier_score_loss(y, p, sample_weight=w),
    }
    if w is None:
        out["ece"] = sklearn_ece(y, p, bins)
    return out


# --------------------------------------------------------------------------- fast metrics
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "tied"])
@pytest.mark.parametrize("threshold,bins", [(0.5, 10), (0.3, 15)])
def test_point_estimates_equal_sklearn(ties, threshold, bins):
    y, p = synthetic(3000, seed=1, ties=ties)
    cfg = EvaluateConfig(bootstrap_samples=50, decision_threshold=threshold, calibration_bins=bins)
    ev = evaluate_scores(y, p, cfg)
    want = sklearn_metrics(y, p, threshold, bins)
    assert set(ev.metrics) == set(METRICS)
    for name, value in want.items():
        assert ev.metrics[name].point == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_resampled_metrics_equal_sklearn_with_multiplicities():
    """The bootstrap path (row multiplicities) gives sklearn's value on each resample."""
    y, p = synthetic(800, seed=2, ties=True)
    scores = _prepare(y.astype(float), p, CFG)
    w = next(_resample_weights(len(y), 3, seed=5))
    got = _metric_values(scores, w)
    for b in range(len(w)):
        want = sklearn_metrics(y, p, w=w[b])
        for name, value in want.items():
            assert got[name][b] == pytest.approx(value, rel=1e-10), (name, b)
        idx = np.repeat(np.arange(len(y)), w[b].astype(int))  # the resample, spelled out
        assert got["ece"][b] == pytest.approx(sklearn_ece(y[idx], p[idx], 10), rel=1e-10)


def test_confusion_and_calibration_counts():
    y, p = synthetic(2000, seed=3)
    ev = evaluate_scores(y, p, CFG)
    tn, fp, fn, tp = skm.confusion_matrix(y, p >= 0.5).ravel()
    assert ev.confusion == Confusion(tn=int(tn), fp=int(fp), fn=int(fn), tp=int(tp))
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10)
    assert [b.observed_rate for b in ev.calibration] == pytest.approx(prob_true)
    assert [b.mean_predicted for b in ev.calibration] == pytest.approx(prob_pred)
    assert sum(b.count for b in ev.calibration) == ev.n == 2000
    assert ev.positives == y.sum() and ev.positive_rate == pytest.approx(y.mean())


def test_roc_points_downsampled_from_sklearn():
    y, p = synthetic(20000, seed=4)
    roc = evaluate_scores(y, p, CFG).roc
    assert len(roc.fpr) == len(roc.tpr) == len(roc.thresholds) <= 200
    assert (roc.fpr[0], roc.tpr[0], roc.fpr[-1], roc.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)
    assert np.trapezoid(roc.tpr, roc.fpr) == pytest.approx(skm.roc_auc_score(y, p), abs=2e-3)


# --------------------------------------------------------------------------- intervals
def test_intervals_contain_the_point_and_narrow_with_n():
    widths = {}
    for n in (500, 8000):
        y, p = synthetic(n, seed=6)
        ev = evaluate_scores(y, p, EvaluateConfig(bootstrap_samples=400))
        for name, m in ev.metrics.items():
            assert m.lower <= m.point <= m.upper, (n, name, m)
        widths[n] = {k: m.upper - m.lower for k, m in ev.metrics.items()}
    for name in METRICS:
        assert widths[8000][name] < 0.6 * widths[500][name], name


def test_wider_confidence_gives_wider_interval():
    y, p = synthetic(2000, seed=7)
    m90 = evaluate_scores(y, p, EvaluateConfig(confidence=0.9)).metrics["roc_auc"]
    m99 = evaluate_scores(y, p, EvaluateConfig(confidence=0.99)).metrics["roc_auc"]
    assert m99.lower < m90.lower and m99.upper > m90.upper


def test_same_seed_same_intervals_other_seed_other_draws():
    y, p = synthetic(1000, seed=8)
    a = evaluate_scores(y, p, CFG)
    assert evaluate_scores(y, p, CFG) == a
    b = evaluate_scores(y, p, EvaluateConfig(bootstrap_samples=200, seed=1))
    assert b.metrics["roc_auc"].point == a.metrics["roc_auc"].point
    assert b.metrics["roc_auc"].lower != a.metrics["roc_auc"].lower


def test_perfect_classifier():
    y = np.array([0, 1] * 200)
    p = np.where(y == 1, 0.999, 0.001)
    ev = evaluate_scores(y, p, CFG)
    for name in ("roc_auc", "accuracy", "f1", "precision", "recall"):
        assert ev.metrics[name] == Interval(1.0, 1.0, 1.0), name
    assert ev.metrics["log_loss"].point == pytest.approx(-np.log(0.999))
    assert ev.metrics["brier"].point == pytest.approx(0.001**2)
    assert ev.confusion == Confusion(tn=200, fp=0, fn=0, tp=200)


def test_random_classifier():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 5000)
    p = rng.random(5000)
    ev = evaluate_scores(y, p, CFG)
    auc, acc = ev.metrics["roc_auc"], ev.metrics["accuracy"]
    assert auc.lower < 0.5 < auc.upper and auc.point == pytest.approx(0.5, abs=0.03)
    assert acc.point == pytest.approx(0.5, abs=0.03)
    assert ev.metrics["ece"].point > 0.2  # uniform scores on a 50/50 outcome: badly calibrated


def test_ece_small_when_calibrated_large_when_not():
    y, p = synthetic(20000, seed=10)
    calibrated = evaluate_scores(y, p, CFG).metrics["ece"]
    assert calibrated.point < 0.015 and calibrated.upper < 0.025
    overconfident = evaluate_scores(y, np.clip((p - 0.5) * 2 + 0.5, 0, 1), CFG).metrics["ece"]
    assert overconfident.lower > 0.1


# --------------------------------------------------------------------------- paired difference
@pytest.mark.parametrize("metric", METRICS)
def test_paired_difference_with_itself_is_exactly_zero(metric):
    y, p = synthetic(1500, seed=11)
    assert paired_bootstrap_difference(y, p, p.copy(), metric, CFG) == Interval(0, 0, 0)


def test_clearly_better_model_has_interval_beyond_zero():
    rng = np.random.default_rng(12)
    y, p = synthetic(4000, seed=12)
    noisy = np.clip(p + rng.normal(0, 0.25, len(p)), 0, 1)  # same signal, plus noise
    auc = paired_bootstrap_difference(y, p, noisy, "roc_auc", CFG)
    assert auc.lower > 0 and auc.point == pytest.approx(
        skm.roc_auc_score(y, p) - skm.roc_auc_score(y, noisy)
    )
    brier = paired_bootstrap_difference(y, p, noisy, "brier", CFG)
    assert brier.upper < 0  # raw difference: lower is better for losses
    assert higher_is_better("roc_auc") and not higher_is_better("brier")


def test_pairing_narrows_the_interval():
    rng = np.random.default_rng(13)
    y, p = synthetic(3000, seed=13)
    other = np.clip(p + rng.normal(0, 0.05, len(p)), 0, 1)
    diff = paired_bootstrap_difference(y, p, other, "roc_auc", CFG)
    single = evaluate_scores(y, p, CFG).metrics["roc_auc"]
    assert diff.upper - diff.lower < 0.5 * (single.upper - single.lower)


def test_several_metrics_share_one_set_of_resamples():
    rng = np.random.default_rng(14)
    y, p = synthetic(2000, seed=14)
    other = np.clip(p + rng.normal(0, 0.1, len(p)), 0, 1)
    together = paired_bootstrap_differences(y, p, other, ("roc_auc", "brier", "f1"), CFG)
    for metric, d in together.items():
        assert d == paired_bootstrap_difference(y, p, other, metric, CFG)


def test_resample_blocks_shrink_with_rows_and_keep_every_draw():
    assert _block_size(10_000) == 64
    assert _block_size(1_000_000) * 1_000_000 * 32 <= 256 * 2**20
    assert _block_size(10**9) == 1
    n = 300_000  # blocks of 27: 200 resamples come in 8 blocks, each a full resample of n rows
    blocks = list(_resample_weights(n, 200, seed=3))
    assert sum(len(b) for b in blocks) == 200
    assert len(blocks) == -(-200 // _block_size(n))
    assert all((b.sum(axis=1) == n).all() for b in blocks)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "y,p,message",
    [
        ([0, 1, 1], [0.1, 0.9], "has 3 rows but proba has 2"),
        ([1, 1, 1], [0.1, 0.9, 0.5], "single class"),
        ([0, 1, 2], [0.1, 0.9, 0.5], "only 0 and 1"),
        ([0, 1, 1], [0.1, 1.2, 0.5], r"in \[0, 1\]"),
        ([0, 1, 1], [0.1, np.nan, 0.5], r"in \[0, 1\]"),
        ([1], [0.5], "at least 2 rows"),
    ],
)
def test_bad_input_is_refused(y, p, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate_scores(np.array(y), np.array(p), CFG)


def test_unknown_metric_is_refused():
    with pytest.raises(EvaluationError, match="unknown metric 'auc'"):
        paired_bootstrap_difference([0, 1], [0.2, 0.8], [0.3, 0.7], "auc", CFG)
    with pytest.raises(EvaluationError, match="unknown metric"):
        higher_is_better("auc")


# --------------------------------------------------------------------------- value object
def test_json_round_trip():
    y, p = synthetic(1000, seed=14)
    ev = evaluate_scores(y, p, CFG)
    text = json.dumps(ev.to_dict(), allow_nan=False)  # the +inf first ROC threshold -> null
    back = Evaluation.from_dict(json.loads(text))
    assert back == ev
    assert back.roc.thresholds[0] == np.inf
    assert isinstance(back.calibration[0], CalibrationBin) and isinstance(back.roc, RocCurve)


def test_undefined_values_serialise_as_null():
    est = Interval(0.5, float("nan"), float("nan"))
    assert est.to_dict() == {"point": 0.5, "lower": None, "upper": None}
    back = Interval.from_dict(est.to_dict())
    assert back.point == 0.5 and np.isnan(back.lower)


def test_flat_metrics_for_dvc():
    y, p = synthetic(500, seed=15)
    flat = evaluate_scores(y, p, CFG).flat_metrics()
    assert set(flat) == {f"{m}{s}" for m in METRICS for s in ("", "_lower", "_upper")}


@pytest.mark.parametrize("n", [100, 2000, 16281])
def test_confusion_rows_for_dvc_template(n):
    y, p = synthetic(n, seed=16)
    ev = evaluate_scores(y, p, EvaluateConfig(bootstrap_samples=50))
    rows = confusion_rows(ev, max_rows=2000)
    assert len(rows) == min(n, 2000)
    got = pd.DataFrame(rows).value_counts().to_dict()
    c = ev.confusion
    exact = {(0, 0): c.tn, (0, 1): c.fp, (1, 0): c.fn, (1, 1): c.tp}
    for cell, count in exact.items():
        scaled = count * len(rows) / n
        assert abs(got.get(cell, 0) - scaled) < 1, cell  # exact when small, proportional above


def test_speed_16k_rows_1000_resamples():
    y, p = synthetic(16281, seed=17)
    t0 = time.perf_counter()
    evaluate_scores(y, p, EvaluateConfig(bootstrap_samples=1000))
    elapsed = time.perf_counter() - t0
    # ~0.4 s on an idle 2-core machine; the bound only catches a fall back to per-resample loops
    assert elapsed < 10, f"evaluate_scores took {elapsed:.1f}s"


# --------------------------------------------------------------------------- copies count once
def test_copies_of_rows_do_not_narrow_the_interval():
    y, p = synthetic(300, seed=3)
    width = {}
    base = evaluate_scores(y, p, CFG).metrics["roc_auc"]
    width["distinct"] = base.upper - base.lower
    y10, p10, ids = np.repeat(y, 10), np.repeat(p, 10), np.repeat(np.arange(300), 10)
    naive = evaluate_scores(y10, p10, CFG).metrics["roc_auc"]
    width["copies as rows"] = naive.upper - naive.lower
    once = evaluate_scores(y10, p10, CFG, rows=ids)
    width["copies once"] = once.metrics["roc_auc"].upper - once.metrics["roc_auc"].lower
    assert once.metrics["roc_auc"].point == pytest.approx(base.point)
    assert once.distinct_rows == 300 and once.n == 3000
    # treating 10 copies as 10 rows shrinks the interval about sqrt(10) times; drawn once,
    # the copies give the interval of the 300 rows they are
    assert width["copies as rows"] < 0.5 * width["distinct"]
    assert width["copies once"] == pytest.approx(width["distinct"], rel=0.25)
    diff = paired_bootstrap_differences(y10, p10, np.clip(p10 + 0.05, 0, 1), ("roc_auc",), CFG)
    diff_once = paired_bootstrap_differences(
        y10, p10, np.clip(p10 * 0.9, 0, 1), ("brier",), CFG, rows=ids
    )
    assert np.isfinite(diff["roc_auc"].lower) and np.isfinite(diff_once["brier"].lower)


def test_distinct_rows_keep_the_plain_draws():
    y, p = synthetic(200, seed=4)
    plain = evaluate_scores(y, p, CFG)
    labelled = evaluate_scores(y, p, CFG, rows=np.arange(200)[::-1])
    assert plain.metrics == labelled.metrics and labelled.distinct_rows == 200


def test_one_row_copied_is_too_little_data_not_a_crash():
    y = np.array([1] * 879)
    p = np.full(879, 0.7)
    with pytest.raises(TooLittleData, match="single class"):
        evaluate_scores(y, p, CFG)
    y2 = np.array([0, 1] * 5)
    with pytest.raises(TooLittleData, match="at least 2 distinct rows"):
        evaluate_scores(y2, np.full(10, 0.5), CFG, rows=np.zeros(10))
    ev = unmeasured(y, p, CFG, "single class")
    assert ev.n == 879 and ev.note == "single class"
    assert all(np.isnan(m.point) for m in ev.metrics.values())
    assert Evaluation.from_dict(json.loads(json.dumps(ev.to_dict()))).note == "single class"


# --------------------------------------------------------------------------- large n: linear
@pytest.mark.parametrize("metric", METRICS)
def test_linearised_intervals_agree_with_the_bootstrap(metric):
    y, p = synthetic(20_000, seed=5)
    boot = EvaluateConfig(bootstrap_samples=400, seed=0, linear_above_rows=None)
    lin = boot.model_copy(update={"linear_above_rows": 2})
    b, lo = evaluate_scores(y, p, boot).metrics[metric], evaluate_scores(y, p, lin).metrics[metric]
    # ECE is a sum of absolute values: its bootstrap is skewed, the linear interval symmetric
    rel = 0.35 if metric == "ece" else 0.2
    assert lo.point == pytest.approx(b.point, rel=1e-12, abs=1e-15)
    assert lo.upper - lo.lower == pytest.approx(b.upper - b.lower, rel=rel)
    p_old = np.clip(p + np.random.default_rng(6).normal(scale=0.1, size=len(p)), 0, 1)
    db = paired_bootstrap_differences(y, p, p_old, (metric,), boot)[metric]
    dl = paired_bootstrap_differences(y, p, p_old, (metric,), lin)[metric]
    assert dl.point == pytest.approx(db.point)
    assert dl.upper - dl.lower == pytest.approx(db.upper - db.lower, rel=rel)


def test_linearised_intervals_count_copies_once():
    y, p = synthetic(3_000, seed=7)
    lin = EvaluateConfig(linear_above_rows=2)
    once = evaluate_scores(y, p, lin).metrics["roc_auc"]
    y5, p5, ids = np.repeat(y, 5), np.repeat(p, 5), np.repeat(np.arange(3_000), 5)
    naive = evaluate_scores(y5, p5, lin).metrics["roc_auc"]
    grouped = evaluate_scores(y5, p5, lin, rows=ids).metrics["roc_auc"]
    width = {k: v.upper - v.lower for k, v in (("once", once), ("naive", naive), ("g", grouped))}
    assert width["naive"] == pytest.approx(width["once"] / np.sqrt(5), rel=0.05)
    assert width["g"] == pytest.approx(width["once"], rel=0.05)


@pytest.mark.parametrize("decimals", [None, 1])  # distinct scores, and many ties
def test_delong_placements_are_the_pairwise_shares(decimals):
    from pipelines.stages.evaluate.linear import _auc_influence

    y, p = synthetic(600, seed=11)
    if decimals is not None:
        p = np.round(p, decimals)
    pos, neg = p[y == 1], p[y == 0]
    # a positive's share of negatives below it, a negative's of positives above (ties half)
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc, values = _auc_influence(y.astype(np.float64), p)
    n, m, k = len(y), len(pos), len(neg)
    assert auc == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    np.testing.assert_allclose(values[y == 1], (wins.mean(axis=1) - auc) * n / m, atol=1e-12)
    np.testing.assert_allclose(values[y == 0], (wins.mean(axis=0) - auc) * n / k, atol=1e-12)
