"""The outcome guard: new outcomes that contradict the served answers are held, not landed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.config import EvaluateConfig, OutcomeGuardConfig
from pipelines.monitor.outcome_guard import judge_outcomes, wilson

EVAL = EvaluateConfig()


def answers(n: int, auc_shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with a 25% positive share and served probabilities that rank them well."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    logit = rng.normal(0, 1, n) + auc_shift * (2 * y - 1)
    return y, 1 / (1 + np.exp(-logit))


def test_outcomes_that_agree_with_the_answers_land() -> None:
    y, p = answers(2000, 1.2)
    check = judge_outcomes(y, p, 0.25, OutcomeGuardConfig(), EVAL)
    assert check.judged and not check.held
    assert check.roc_auc is not None and check.roc_auc["point"] > 0.8
    assert "agree" in check.summary()


def test_flipped_labels_are_held_with_the_numbers() -> None:
    y, p = answers(2000, 1.2)
    check = judge_outcomes(1 - y, p, 0.25, OutcomeGuardConfig(), EVAL)
    assert check.held
    assert check.roc_auc is not None and check.roc_auc["upper"] < 0.3
    text = check.summary()
    assert "min_auc" in text and "max_share_change" in text  # both checks name their key


def test_outcomes_contradicting_the_confident_answers_are_held() -> None:
    """Only the answers the model was sure of flipped: the ranking as a whole still looks fair
    (AUC above the bound, share in range), but a sound model is rarely wrong when it is sure."""
    y, p = answers(3000, 1.6, seed=5)
    sure = (p >= 0.9) | (p <= 0.1)
    flipped = np.where(sure, 1 - y, y)
    check = judge_outcomes(flipped, p, 0.25, OutcomeGuardConfig(), EVAL)
    assert check.held, check.summary()
    assert check.confident_contradicted is not None
    assert check.confident_contradicted["lower"] > 0.6
    assert "max_confident_contradicted" in check.summary()
    honest = judge_outcomes(y, p, 0.25, OutcomeGuardConfig(), EVAL)
    assert honest.confident_contradicted is not None
    assert honest.confident_contradicted["point"] < 0.2 and not honest.held


def test_a_concept_change_in_half_the_population_still_lands() -> None:
    """Labels flipped in one half (a changed relationship there) move the AUC toward 0.5,
    not below the default bound: the monitor and the next night deal with it, not the guard."""
    y, p = answers(4000, 1.2, seed=3)
    half = np.arange(len(y)) % 2 == 0
    y2 = np.where(half, 1 - y, y)
    check = judge_outcomes(y2, p, 0.25, OutcomeGuardConfig(), EVAL)
    assert not check.held, check.summary()


def test_a_flood_of_one_label_is_held_on_the_share() -> None:
    y, p = answers(1000, 1.2)
    check = judge_outcomes(np.ones_like(y), p, 0.25, OutcomeGuardConfig(), EVAL)
    assert check.held and check.roc_auc is None
    assert "positive" in check.summary() and "one label" in check.summary()


def test_few_outcomes_land_unjudged_and_say_so() -> None:
    y, p = answers(50, 1.2)
    check = judge_outcomes(1 - y, p, 0.25, OutcomeGuardConfig(min_rows=100), EVAL)
    assert not check.judged and not check.held
    assert "50 new outcomes" in check.summary() and "min_rows" in check.summary()


def test_the_guard_can_be_switched_off() -> None:
    y, p = answers(2000, 1.2)
    check = judge_outcomes(1 - y, p, 0.25, OutcomeGuardConfig(enabled=False), EVAL)
    assert not check.held and not check.judged


def test_wilson_interval_contains_the_share() -> None:
    lo, hi = wilson(30, 100, 0.95)
    assert lo < 0.3 < hi and 0.2 < lo and hi < 0.41


@pytest.mark.parametrize(
    "key, value", [("min_auc", 0.7), ("max_share_change", 0.0), ("min_rows", 3)]
)
def test_bad_settings_are_refused_naming_the_key(key: str, value: float) -> None:
    with pytest.raises(ValueError, match=key):
        OutcomeGuardConfig(**{key: value})


def test_held_outcomes_are_kept_with_their_judgement_and_never_landed(
    params, tmp_path, monkeypatch
):
    """The edge: a pass holds flipped outcomes in quarantine, lands none, notifies, and the
    next pass does not judge them again."""
    from datetime import UTC, datetime

    from pipelines.monitor.run import land_outcomes

    params = params.model_copy(update={"root": tmp_path})
    ds = params.dataset
    n = 400
    y, p = answers(n, 1.2)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {c: rng.integers(20, 60, n) for c in ds.features.numeric}
        | {c: ["a"] * n for c in ds.features.categorical}
    )
    neg = ds.negative_label or f"not {ds.positive_label}"
    frame["label"] = np.where(y == 1, neg, ds.positive_label)  # every label flipped
    frame["probability"] = p
    frame["request_id"] = [f"r{i}" for i in range(n)]
    frame["row"] = 0
    frame["arm"] = "champion"
    reference = pd.DataFrame(
        {ds.target: np.where(answers(n, 1.2, 2)[0] == 1, ds.positive_label, neg)}
    )
    monkeypatch.setenv("RETRAIN_NOTIFICATIONS", str(tmp_path / "notes.jsonl"))
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    landing = land_outcomes(params, now, frame, reference)
    assert landing.rows == 0 and landing.to is None and landing.held_to
    assert landing.check is not None and landing.check.held
    held = pd.read_parquet(f"{landing.held_to}/outcomes.parquet")
    assert len(held) == n and set(held["request_id"]) == set(frame["request_id"])
    assert (tmp_path / "notes.jsonl").read_text().count('"event": "held"') == 1
    assert not list(params.paths.landing.glob("*.parquet"))
    again = land_outcomes(params, now, frame, reference)
    assert again.rows == 0 and again.check is None  # judged once, kept once
    # the same answers with their true outcomes land (once judged as agreeing)
    frame["label"] = np.where(y == 1, ds.positive_label, neg)
    frame["request_id"] = [f"s{i}" for i in range(n)]
    good = land_outcomes(params, now, frame, reference)
    assert good.rows == n and good.to and good.check is not None and not good.check.held
