"""The gate-decisions benchmark's scenario builder: its models have the ROC AUC it promises, and
a night is judged by the gate's own code (synthetic scores, no training)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks.gate_decisions import _calibrated, _sigma_for, night_decision
from pipelines.config import Params


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n) * 2
    y = (rng.random(n) < 1 / (1 + np.exp(-base))).astype(np.int64)
    return y, base


@pytest.mark.parametrize("target", [0.70, 0.78, 0.85])
def test_noise_scale_gives_the_promised_auc(target: float) -> None:
    y, base = _scores(10_000, 0)
    noise = np.random.default_rng(1).normal(size=len(y)) * base.std()
    z = base + _sigma_for(target, base, noise, y) * noise
    assert roc_auc_score(y, z) == pytest.approx(target, abs=1e-3)
    p = _calibrated(z, y)
    assert roc_auc_score(y, p) == pytest.approx(roc_auc_score(y, z), abs=1e-9)  # monotone
    assert p.mean() == pytest.approx(y.mean(), abs=1e-3)  # calibrated in the large


def test_a_target_above_the_real_model_is_refused() -> None:
    y, base = _scores(5_000, 0)
    noise = np.random.default_rng(1).normal(size=len(y))
    with pytest.raises(ValueError, match="above the real model"):
        _sigma_for(float(roc_auc_score(y, base)) + 0.01, base, noise, y)


def test_a_night_is_decided_by_the_gate(params: Params) -> None:
    """A much worse challenger fails the comparison; the same model passes it."""
    cfg = params.model_copy(
        update={"evaluate": params.evaluate.model_copy(update={"bootstrap_samples": 100})}
    )
    y, base = _scores(3_000, 2)
    rng = np.random.default_rng(3)
    good = _calibrated(base, y)
    bad = _calibrated(base + rng.normal(size=len(y)) * 3, y)
    sensitive = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], len(y)), "race": rng.choice(["A", "B"], len(y))}
    )
    worse = night_decision(cfg, y, bad, good, sensitive)
    comparison = {c.group: c.verdict for c in worse.checks}["comparison"]
    assert worse.verdict == "fail" and comparison == "fail"
    same = night_decision(cfg, y, good, good, sensitive)
    assert {c.group: c.verdict for c in same.checks}["comparison"] == "pass"
