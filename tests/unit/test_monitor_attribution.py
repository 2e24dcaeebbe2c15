"""Attribution drift in the monitor: the champion's importance ranking on live rows against the
reference's, flagged when live traffic makes it lean on other features, and published."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pipelines.monitor.attribution import NAMES, add_gauges, assess_attribution, attribution_drift
from pipelines.serve.fastpath import CompiledScorer, frame_records
from pipelines.serve.model import ServingSpec


@pytest.fixture(scope="module")
def scorer(prefit, params) -> CompiledScorer:
    return CompiledScorer(prefit["a"], ServingSpec.from_params(params).fields)


def _matrix(scorer: CompiledScorer, frame):
    return scorer.matrix(scorer.encode(frame_records(frame, scorer.spec)))


def test_live_rows_like_the_reference_keep_the_ranking(scorer, adult_reference, adult_current):
    ex = scorer.explainer()
    ref = _matrix(scorer, adult_reference.sample(400, random_state=0))
    live = _matrix(scorer, adult_current.sample(400, random_state=1))
    drift = attribution_drift(ex, ref, live, 0.9)
    assert drift.ndcg is not None and drift.ndcg > 0.95 and not drift.flagged
    assert drift.rows == 400 and set(drift.reference) == set(drift.live) == set(ex.features)


def test_live_traffic_that_moves_what_the_model_rests_on_is_flagged(
    scorer, adult_reference, adult_current
):
    ex = scorer.explainer()
    ref = _matrix(scorer, adult_reference.sample(400, random_state=0))
    # live traffic full of large capital gains: the model's answers now rest on that feature
    live = adult_current.sample(400, random_state=1).copy()
    live["capital-gain"] = 99_999
    drift = attribution_drift(ex, ref, _matrix(scorer, live), 0.9)
    assert drift.ndcg is not None and drift.ndcg < 0.9 and drift.flagged
    assert next(iter(drift.live)) == "capital-gain" != next(iter(drift.reference))
    assert any(c["feature"] == "capital-gain" and c["rank"] == 1 for c in drift.changes)
    assert "changed ranking" in drift.markdown()
    reg = CollectorRegistry()
    add_gauges(reg, drift)
    text = generate_latest(reg).decode()
    assert all(name in text for name in NAMES)
    assert "retrain_live_attribution_drifted 1.0" in text
    assert 'retrain_live_feature_importance{feature="capital-gain",side="live"}' in text


def test_nothing_to_measure_is_a_note_not_an_error(scorer, params):
    drift = assess_attribution(params, None, None, None)  # type: ignore[arg-type]
    assert drift.ndcg is None and drift.note == "no champion" and not drift.flagged
    assert "Not measured: no champion" in drift.markdown()
    empty = attribution_drift(scorer.explainer(), [], [], 0.9)
    assert empty.ndcg is None and "no live rows" in empty.note
    reg = CollectorRegistry()
    add_gauges(reg, drift)
    assert "retrain_live_attribution" not in generate_latest(reg).decode()
