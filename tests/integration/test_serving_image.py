"""The serving image, built and run for real with podman (or docker with a daemon).

The test installs what it needs with scripts/install-podman.sh (idempotent; apt as root), builds
the image of a real registered model, runs it, and checks labels, endpoints, bad input and that
the container's predictions equal the registered model's on real rows.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.registry import registry_params

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image_registry(tmp_path_factory, adult_reference, adult_current):
    root = tmp_path_factory.mktemp("image")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        params = registry_params(root, adult_reference, [{"max_iter": 30}], "serve-image-test")
        adult_current.head(200).to_parquet(params.paths.window_eval)
        yield params


def test_image_builds_runs_and_serves_the_registered_model(
    container_engine, image_registry, adult_current
):
    from pipelines.edges import registry
    from pipelines.release import deploy
    from pipelines.serve.fastpath import frame_records
    from pipelines.serve.model import ServingSpec

    params = image_registry
    engine = container_engine
    t0 = time.perf_counter()
    tag, _ = deploy.build_image(params, "1", engine, force=True)
    build_s = time.perf_counter() - t0
    assert tag.endswith("-serving:v1")
    labels = deploy.image_labels(engine, tag)
    mv = registry.client(params).get_model_version(params.mlflow.registered_model, "1")
    assert labels["retrain.model.version"] == "1"
    assert labels["retrain.model.name"] == params.mlflow.registered_model
    assert labels["retrain.data.version"] == mv.tags["data_version.train"]
    assert labels["retrain.run.id"] == mv.run_id
    size = subprocess.run(
        [engine, "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True
    ).stdout.strip()
    print(f"\nimage {tag}: built in {build_s:.0f}s, {int(size) / 1e6:.0f} MB")

    port = deploy._free_port()
    name = f"serve-image-test-{port}"
    subprocess.run(
        [engine, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", tag],
        check=True,
        capture_output=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        ok, detail = deploy.wait_ready(url, 120, "1")
        assert ok, (
            detail + subprocess.run([engine, "logs", name], capture_output=True, text=True).stderr
        )
        status, info = deploy.http_json(url + "/version")
        assert info["model_version"] == "1"
        assert info["image_tag"] == tag
        assert info["data_version"]["train"] == mv.tags["data_version.train"]
        assert info["scorer"] == "compiled"
        assert info["scorer_walk"] == "compiled walk"  # numba in the image, compiled at load
        assert deploy.http_json(url + "/health")[0] == 200

        sample = adult_current.sample(1000, random_state=3)
        want = deploy.reference_scorer(params, "1").predict_proba(sample)
        records = frame_records(sample, ServingSpec.from_params(params).fields)
        status, body = deploy.http_json(url + "/predict", {"records": records})
        assert status == 200
        diff = float(np.max(np.abs(np.asarray(body["probabilities"]) - want)))
        assert diff <= 1e-6, diff
        ok, detail = deploy.smoke_test(params, url, "1", sample.head(50))
        assert ok, detail

        bad = dict(records[0], age="forty")
        status, body = deploy.http_json(url + "/predict", bad)
        assert status == 422 and body["field"] == "age"
        status, text = _get_text(url + "/metrics")
        assert status == 200 and "retrain_serve_requests_total" in text
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True)
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True)


def _get_text(url: str) -> tuple[int, str]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()
