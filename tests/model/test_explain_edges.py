"""The explanations' edges on a real registry: the gate's importance comparison and the
monitor's attribution drift load the models the way the gate and serving load them (signed,
verified, compiled) and explain them on real Adult rows."""

from __future__ import annotations

import json

import pytest

from pipelines.config import Params
from tests.support.registry import registry_params


@pytest.fixture(scope="module")
def registry(tracking_env, adult_reference, adult_current) -> Params:
    """v1 champion (20 trees), v2 a challenger (5 trees), the held-out rows and the record
    of the challenger's training run, where the gate reads them."""
    from mlflow import MlflowClient

    sample = adult_reference.sample(4000, random_state=0)
    params = registry_params(tracking_env, sample, [{"max_iter": 20}, {"max_iter": 5}])
    adult_current.head(1500).to_parquet(params.paths.window_eval)
    client = MlflowClient(tracking_uri=params.tracking_uri)
    source = client.get_model_version(params.mlflow.registered_model, "2").source
    params.paths.train_record.parent.mkdir(parents=True, exist_ok=True)
    params.paths.train_record.write_text(json.dumps({"model_uri": source}))
    return params


def test_the_gate_compares_challenger_and_champion_importance(registry):
    from pipelines.serve.model import ServingSpec
    from pipelines.stages.gate.importance import IMPORTANCE_ROWS, gather_importance

    cmp = gather_importance(registry, "1")
    assert cmp.note == "" and cmp.ndcg is not None and 0 < cmp.ndcg <= 1
    assert cmp.rows == IMPORTANCE_ROWS
    names = set(ServingSpec.from_params(registry).fields.names)
    assert set(cmp.challenger) == set(cmp.champion) == names
    assert cmp.challenger != cmp.champion  # two different models
    first = gather_importance(registry, None)
    assert first.ndcg is None and "no champion" in first.note and first.challenger


def test_the_monitor_measures_attribution_drift_with_the_champion(registry, adult_current):
    from pipelines.monitor.attribution import SAMPLE_ROWS, assess_attribution
    from pipelines.monitor.run import reference_frame

    reference = reference_frame(registry)
    live = adult_current.tail(800).reset_index(drop=True)
    drift = assess_attribution(registry, reference, live, "1")
    assert drift.note == "" and drift.ndcg is not None and drift.ndcg > 0.9
    assert drift.rows == SAMPLE_ROWS and not drift.flagged
    shifted = live.assign(**{"capital-gain": 99_999})
    moved = assess_attribution(registry, reference, shifted, "1")
    assert moved.flagged and next(iter(moved.live)) == "capital-gain"
