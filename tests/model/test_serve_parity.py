"""The served predictions equal the registered model's predict_proba, on real Adult data.

A throwaway SQLite registry holds real models trained on adult.data; the server's compiled
scorer (loaded through the registry alias, as `retrain serve` does) scores every row of
adult.test through the same record path as /predict, and through HTTP+JSON.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipelines.config import Params
from tests.support.registry import make_params, register_model, registry_params  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-6


@pytest.fixture(scope="module")
def champion(tracking_env, adult_reference, adult_current) -> Params:
    params = registry_params(tracking_env, adult_reference, [{"max_iter": 50}])
    adult_current.head(500).to_parquet(params.paths.window_eval)
    return params


def test_compiled_scorer_equals_registered_model_on_adult_test(champion, adult_current):
    from pipelines.release.deploy import reference_scorer
    from pipelines.serve.model import RegistrySource, ServingSpec

    spec = ServingSpec.from_params(champion)
    source = RegistrySource(champion.tracking_uri, spec, champion.paths.signing_public_key)
    version = source.resolve()
    assert version == "1"
    loaded = source.load(version)
    assert loaded.scorer.mode == "compiled", loaded.scorer.reason

    offline = reference_scorer(champion, version)
    want = offline.predict_proba(adult_current)
    # the server's record path, in request-sized pieces: single records, small and large batches
    from pipelines.serve.fastpath import frame_records

    records = frame_records(adult_current, spec.fields)
    sc = loaded.scorer
    got = np.concatenate(
        [sc.predict_records(records[i : i + 1]) for i in range(50)]  # single records
        + [sc.predict_records(records[j : j + 8]) for j in range(50, 2002, 8)]  # micro-batches
        + [sc.predict_records(records[2002:])]  # one large batch
    )
    assert len(got) == len(adult_current) > 10_000
    diff = float(np.max(np.abs(got - want)))
    print(f"\nparity on {len(got)} adult.test rows: max |compiled - registered| = {diff:.3e}")
    assert diff <= TOL


def test_served_json_equals_registered_model(champion, adult_current):
    """Through the ASGI app and JSON both ways: still within 1e-6 (orjson round-trips floats)."""
    from starlette.testclient import TestClient

    from pipelines.release.deploy import reference_scorer
    from pipelines.serve.app import local_app
    from pipelines.serve.fastpath import frame_records

    app = local_app(champion, watch_interval=None)
    app.holder.refresh()
    sample = adult_current.sample(3000, random_state=0)
    want = reference_scorer(champion, "1").predict_proba(sample)
    records = frame_records(sample, app.spec.fields)
    with TestClient(app) as client:
        got: list[float] = []
        for i in range(0, len(records), 500):
            r = client.post("/predict", json={"records": records[i : i + 500]})
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == "1"
            got += r.json()["probabilities"]
        single = client.post("/predict", json=records[0]).json()
    diff = float(np.max(np.abs(np.asarray(got) - want)))
    print(f"\nHTTP parity on {len(got)} rows: max diff {diff:.3e}")
    assert diff <= TOL
    assert abs(single["probability"] - want[0]) <= TOL


def test_other_classifier_keeps_parity(tracking_env, adult_reference, adult_current):
    """A logistic regression goes through the compiled preprocessing + its own predict_proba."""
    from pipelines.release.deploy import reference_scorer
    from pipelines.serve.model import RegistrySource, ServingSpec

    params = make_params(tracking_env / "lr", classifier="logistic_regression", hyperparameters={})
    os.environ["MLFLOW_TRACKING_URI"] = params.mlflow.tracking_uri
    try:
        version = register_model(params, adult_reference.sample(5000, random_state=1))
        spec = ServingSpec.from_params(params)
        key = params.paths.signing_public_key
        loaded = RegistrySource(params.tracking_uri, spec, key).load(version)
        assert loaded.scorer.mode == "compiled", loaded.scorer.reason
        want = reference_scorer(params, version).predict_proba(adult_current)
        got = loaded.scorer.predict_frame(adult_current)
        assert float(np.max(np.abs(got - want))) <= TOL
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tracking_env / 'mlflow.db'}"
