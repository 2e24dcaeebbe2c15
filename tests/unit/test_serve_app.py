"""The serving app's contract: endpoints, metrics, and a clear 4xx for every kind of bad input.

A real (small) model trained on real Adult rows sits behind the real ASGI app; no registry is
needed here (the registry path is covered in tests/model and tests/integration).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from pipelines.serve.app import ServingApp
from pipelines.serve.fastpath import CompiledScorer, frame_records
from pipelines.serve.model import LoadedModel, ModelHolder
from tests.support.serving import StaticSource

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")


@pytest.fixture(scope="module")
def small_model(prefit):
    return prefit["a"]


@pytest.fixture(scope="module")
def records(adult_current, spec) -> list[dict]:
    return frame_records(adult_current.head(300), spec.fields)


@pytest.fixture()
def client(small_model, spec, records):
    from starlette.testclient import TestClient

    loaded = LoadedModel(
        "7",
        CompiledScorer(small_model, spec.fields),
        run_id="r1",
        data_version={"train": "abc123"},
    )
    app = ServingApp(
        ModelHolder(StaticSource(loaded), smoke=records[:20]),
        spec,
        image_tag="test-tag",
        max_body=64 * 1024,
        max_records=200,
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        app.holder.refresh()
        yield c


def test_health_ready_version(client):
    assert client.get("/health").json() == {"status": "alive"}
    r = client.get("/ready")
    assert r.status_code == 200 and r.json()["model_version"] == "7"
    v = client.get("/version").json()
    assert v["model_version"] == "7"
    assert v["data_version"] == {"train": "abc123"}
    assert v["image_tag"] == "test-tag"
    assert v["scorer"] == "compiled"


def test_not_ready_before_a_model_is_loaded(small_model, spec):
    from starlette.testclient import TestClient

    class Empty:
        def resolve(self):
            return None

    app = ServingApp(ModelHolder(Empty()), spec)
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/ready").status_code == 503
        r = c.post("/predict", json={})
        assert r.status_code == 503 and r.json()["kind"] == "not_ready"


def test_predict_one_and_batch(client, records, small_model, spec):
    import pandas as pd

    frame = pd.DataFrame.from_records(records)
    want = small_model.predict_proba(frame[list(spec.fields.names)])[:, 1]
    one = client.post("/predict", json=records[0])
    assert one.status_code == 200
    body = one.json()
    assert body["model_version"] == "7" and one.headers["x-model-version"] == "7"
    assert abs(body["probability"] - want[0]) <= 1e-12
    assert body["label"] in (spec.positive_label, spec.negative_label)
    for payload in (records[:100], {"records": records[:100]}):
        r = client.post("/predict", json=payload)
        assert r.status_code == 200
        got = np.asarray(r.json()["probabilities"])
        assert np.max(np.abs(got - want[:100])) <= 1e-12
        labels = r.json()["labels"]
        assert labels == [
            spec.positive_label if p >= spec.threshold else spec.negative_label for p in got
        ]


def test_nulls_are_missing_values_like_in_training(client, records):
    rec = dict(records[0], age=None, workclass=None)
    assert client.post("/predict", json=rec).status_code == 200


def _bad(records: list[dict]) -> list[tuple[str, dict, int, str, str | None]]:
    r0 = records[0]
    no_age = {k: v for k, v in r0.items() if k != "age"}
    big = json.dumps({"records": [r0] * 400})  # > 64 KiB
    return [
        # (name, request kwargs, status, kind, field)
        ("malformed json", {"content": b'{"age": 39,'}, 400, "malformed_json", None),
        ("not json at all", {"content": b"age=39"}, 400, "malformed_json", None),
        ("empty body", {"content": b""}, 400, "empty_body", None),
        ("numeric as string", {"json": dict(r0, age="39")}, 422, "wrong_type", "age"),
        ("numeric as bool", {"json": dict(r0, age=True)}, 422, "wrong_type", "age"),
        ("numeric as list", {"json": dict(r0, fnlwgt=[1])}, 422, "wrong_type", "fnlwgt"),
        ("categorical as number", {"json": dict(r0, sex=1)}, 422, "wrong_type", "sex"),
        ("categorical as object", {"json": dict(r0, race={})}, 422, "wrong_type", "race"),
        ("missing field", {"json": no_age}, 422, "missing_field", "age"),
        ("unknown field", {"json": dict(r0, shoe_size=44)}, 422, "unknown_field", "shoe_size"),
        ("batch with bad record", {"json": [r0, dict(r0, age="x")]}, 422, "wrong_type", "age"),
        ("batch of non-objects", {"json": [1, 2]}, 422, "not_an_object", None),
        ("scalar body", {"json": 42}, 422, "shape", None),
        ("empty batch", {"json": []}, 422, "empty_batch", None),
        ("records not a list", {"json": {"records": r0}}, 422, "shape", "records"),
        ("key beside records", {"json": {"records": [r0], "x": 1}}, 422, "unknown_field", "x"),
        ("too many records", {"json": [r0] * 201}, 413, "too_many", None),
        ("oversized body", {"content": big.encode()}, 413, "too_large", None),
        ("huge number", {"content": b'{"age": 1e999}'}, 400, "malformed_json", None),
        ("wrong content type", {"content": b"{}", "headers": {"content-type": "text/csv"}},
         415, "content_type", None),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(20))
def test_bad_input_gets_a_clear_4xx(client, records, case):
    name, kw, status, kind, field = _bad(records)[case]
    kw.setdefault("headers", {"content-type": "application/json"})
    r = client.post("/predict", **kw)
    assert r.status_code == status, (name, r.text)
    body = r.json()
    assert body["kind"] == kind, name
    assert body["error"], name
    if field is not None:
        assert body["field"] == field, name
        assert field in body["error"], name


def test_oversized_chunked_body_is_refused(client, records):
    def gen():
        for _ in range(100):
            yield json.dumps(records[0]).encode() * 10

    r = client.post("/predict", content=gen(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_wrong_method_and_path(client):
    assert client.get("/predict").status_code == 405
    assert client.post("/health").status_code == 405
    assert client.get("/nope").status_code == 404


def test_garbage_never_causes_a_5xx(client, records):
    rng = random.Random(0)
    values = [None, True, 0, -1.5, 1e308, "", "x" * 50, [], {}, [1, "a"], {"a": None}]
    names = [*records[0].keys(), "records", "extra"]
    for _ in range(300):
        rec = dict(records[rng.randrange(len(records))])
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            key = rng.choice(names)
            if op < 0.6:
                rec[key] = rng.choice(values)
            elif op < 0.8:
                rec.pop(key, None)
        payload = rec if rng.random() < 0.5 else [rec, records[0]]
        r = client.post("/predict", json=payload)
        assert r.status_code < 500, (payload, r.text)
    for raw in (b"[", b"{}}", b"\xff\xfe", b"null", b'"s"', b"[[]]", b"{" * 5000):
        r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (raw[:20], r.text)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and sorted labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_count_requests_errors_latency_and_predictions(client, records):
    client.post("/predict", json=records[:10])
    client.post("/predict", json={"age": 1})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = _samples(r.text)
    p = "retrain_serve"
    assert m[(f"{p}_requests_total", (("path", "/predict"), ("status", "200")))] == 1
    assert m[(f"{p}_requests_total", (("path", "/predict"), ("status", "422")))] == 1
    assert m[(f"{p}_errors_total", (("kind", "missing_field"),))] == 1
    assert m[(f"{p}_request_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert m[(f"{p}_request_duration_seconds_count", ())] == 2
    v7 = (("version", "7"),)
    assert m[(f"{p}_prediction_probability_count", v7)] == 10
    assert m[(f"{p}_prediction_probability_bucket", (("le", "1.0"), *v7))] == 10
    assert 0 < m[(f"{p}_prediction_probability_sum", v7)] < 10
    by_label = [v for (name, labels), v in m.items()
                if name == f"{p}_predictions_total" and ("version", "7") in labels]  # fmt: skip
    assert sum(by_label) == 10
    assert m[(f"{p}_batch_size_count", v7)] == 1
    assert m[(f"{p}_batch_size_sum", v7)] == 10
    info = (("model", "adult-income"), ("scorer", "compiled"), ("version", "7"))
    assert m[(f"{p}_model_info", info)] == 1
    assert m[(f"{p}_model_reloads_total", (("result", "ok"),))] == 1
    assert m[(f"{p}_ready", ())] == 1


def test_metrics_in_openmetrics_when_asked(client, records):
    client.post("/predict", json=records[0])
    r = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")
    assert 'retrain_serve_prediction_probability_count{version="7"} 1' in r.text


def test_metrics_follow_the_model_version_and_stay_per_app(small_model, spec, records):
    """Predictions are counted per version across a swap; two apps never share counts."""
    from starlette.testclient import TestClient

    scorer = CompiledScorer(small_model, spec.fields)
    source = StaticSource(LoadedModel("7", scorer))
    app = ServingApp(ModelHolder(source), spec)
    other = ServingApp(ModelHolder(StaticSource(LoadedModel("7", scorer))), spec)
    with TestClient(app) as c, TestClient(other) as c2:
        app.holder.refresh()
        other.holder.refresh()
        assert c.post("/predict", json=records[:3]).status_code == 200
        source.loaded = LoadedModel("8", scorer)
        assert app.holder.refresh()
        assert c.post("/predict", json=records[:2]).json()["model_version"] == "8"
        m = _samples(c.get("/metrics").text)
        untouched = _samples(c2.get("/metrics").text)
    p = "retrain_serve_prediction_probability_count"
    assert m[(p, (("version", "7"),))] == 3
    assert m[(p, (("version", "8"),))] == 2
    served = [labels for name, labels in m if name == "retrain_serve_model_info"]
    assert served == [(("model", "adult-income"), ("scorer", "compiled"), ("version", "8"))]
    assert m[("retrain_serve_model_reloads_total", (("result", "ok"),))] == 2
    assert (p, (("version", "7"),)) not in untouched


def test_a_test_seam_can_shift_the_answer_and_nothing_else_does(client, records, monkeypatch):
    """``serve.proba`` is the one place the answer can be changed, and only by a test plugin."""
    from tests.support import faults

    plain = client.post("/predict", json=records[:5]).json()["probabilities"]
    monkeypatch.setenv("RETRAIN_SERVE_FAULT", "shift")
    assert client.post("/predict", json=records[:5]).json()["probabilities"] == plain
    for k, v in faults.env(RETRAIN_SERVE_FAULT="shift").items():
        monkeypatch.setenv(k, v)
    shifted = client.post("/predict", json=records[:5]).json()["probabilities"]
    assert np.allclose(np.asarray(shifted) - np.asarray(plain), 0.01)


def test_unknown_category_is_scored_like_the_model_does(small_model, spec, records):
    import pandas as pd

    sc = CompiledScorer(small_model, spec.fields)
    rec = dict(records[0], occupation="Astronaut", **{"native-country": "Atlantis"})
    want = small_model.predict_proba(pd.DataFrame([rec])[list(spec.fields.names)])[:, 1]
    assert sc.predict_records([rec])[0] == want[0]


def test_uncompilable_model_falls_back_to_its_own_predict_proba(small_model, spec, records):
    """A pipeline the compiler does not know is served by the model itself, still exactly."""
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    odd = Pipeline([("noop", FunctionTransformer()), *small_model.steps])
    sc = CompiledScorer(odd, spec.fields)
    assert sc.mode == "model" and sc.reason
    frame = pd.DataFrame.from_records(records)[list(spec.fields.names)]
    assert np.array_equal(sc.predict_frame(frame), odd.predict_proba(frame)[:, 1])


def test_a_large_batch_answers_like_single_records(client, records):
    """Over 64 rows each tree is walked by scikit-learn's own routine, below by the tables."""
    one_by_one = [client.post("/predict", json=r).json()["probability"] for r in records[:150]]
    r = client.post("/predict", json=records[:150])
    assert r.status_code == 200
    assert r.json()["probabilities"] == one_by_one


def test_a_configured_token_guards_predict_only(small_model, spec, records, monkeypatch):
    from starlette.testclient import TestClient

    monkeypatch.setenv("RETRAIN_SERVE_TOKEN", "s3cret-token")
    loaded = LoadedModel("7", CompiledScorer(small_model, spec.fields), run_id="r1")
    app = ServingApp(ModelHolder(StaticSource(loaded), smoke=records[:20]), spec, max_records=200)
    with TestClient(app, raise_server_exceptions=False) as c:
        app.holder.refresh()
        refused = c.post("/predict", json=records[0])
        assert refused.status_code == 401 and "bearer" in refused.json()["error"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = c.post("/predict", json=records[0], headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = c.post("/predict", json=records[0], headers={"Authorization": "bearer s3cret-token"})
        assert ok.status_code == 200, ok.text
        for path in ("/health", "/ready", "/version", "/metrics"):
            assert c.get(path).status_code == 200, path


def test_no_endpoint_and_no_log_line_carries_a_secret(
    small_model, spec, records, monkeypatch, tmp_path, caplog
):
    """Secrets set as a deployment sets them; every open endpoint asked (and the guarded ones,
    with and without the token); no answer and no log line holds any of them."""
    import logging

    from starlette.testclient import TestClient

    from pipelines.predlog.writer import PredictionLog

    secrets = {
        "db": "Db-pa55word-41",
        "mlflow": "Mlflow-pa55-42",
        "serve": "serve-tok-43",
        "feedback": "feedback-tok-44",
    }
    dsn = f"postgresql://retrain:{secrets['db']}@127.0.0.1:1/retrain"  # refuses: flushes fail
    tracking = f"http://admin:{secrets['mlflow']}@127.0.0.1:1"
    monkeypatch.setenv("RETRAIN_PREDICTION_LOG", dsn)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secrets["mlflow"])
    monkeypatch.setenv("RETRAIN_SERVE_TOKEN", secrets["serve"])
    monkeypatch.setenv("RETRAIN_FEEDBACK_TOKEN", secrets["feedback"])

    class Unreachable:  # a canary source whose registry answers with its own address
        def resolve(self):
            raise ConnectionError(f"API request to {tracking}/api/2.0/mlflow failed")

    loaded = LoadedModel("7", CompiledScorer(small_model, spec.fields), run_id="r1")
    log = PredictionLog(dsn, flush_seconds=0.05, dead_letter=tmp_path / "dead")
    app = ServingApp(
        ModelHolder(StaticSource(loaded), smoke=records[:5]),
        spec,
        prediction_log=log,
        canary=ModelHolder(Unreachable(), optional=True),
    )
    answers: list[str] = []
    caplog.set_level(logging.DEBUG)
    with TestClient(app, raise_server_exceptions=False) as c:
        app.holder.refresh()
        app.canary.refresh()
        for path in ("/health", "/ready", "/version", "/metrics", "/nope", "/predict", "/feedback"):
            r = c.get(path)
            answers.append(f"{path} {r.status_code} {dict(r.headers)} {r.text}")
        auth = {"Authorization": f"Bearer {secrets['serve']}"}
        for headers in ({}, auth, {"Authorization": "Bearer wrong"}):
            r = c.post("/predict", json=records[0], headers=headers)
            answers.append(f"{r.status_code} {dict(r.headers)} {r.text}")
            r = c.post("/feedback", json={"request_id": "x", "label": "?"}, headers=headers)
            answers.append(f"{r.status_code} {dict(r.headers)} {r.text}")
        version = c.get("/version").json()
        log.flush()
    assert version["prediction_log"] == "postgresql://retrain:***@127.0.0.1:1/retrain"
    assert any("failed" in rec.getMessage() for rec in caplog.records)  # the flushes did fail
    assert "***" in app.canary.last_error or "mlflow" in app.canary.last_error
    lines = [caplog.text, *(rec.getMessage() for rec in caplog.records)]
    for name, secret in secrets.items():
        for text in [*answers, *lines]:
            assert secret not in text, (name, text[:300])
    ready = next(a for a in answers if a.startswith("/ready"))
    assert secrets["mlflow"] not in ready


def test_one_masking_rule_for_every_location():
    from pipelines.settings import mask_url

    cases = {
        "postgresql://retrain:secret@postgres:5432/retrain": "postgresql://retrain:***@postgres:5432/retrain",
        "postgresql+psycopg2://u:pass@h/db": "postgresql+psycopg2://u:***@h/db",
        "redis://:pw@redis:6379/0": "redis://:***@redis:6379/0",
        "http://admin:pw@mlflow:5000/x?token=abc&n=1": "http://admin:***@mlflow:5000/x?token=***&n=1",
        "error at postgresql://a:pw@h/db: refused": "error at postgresql://a:***@h/db: refused",
        "sqlite:///mlflow.db": "sqlite:///mlflow.db",
        "postgresql://retrain@h/db": "postgresql://retrain@h/db",
        "data/live": "data/live",
    }  # fmt: skip
    for raw, shown in cases.items():
        assert mask_url(raw) == shown, raw
    assert mask_url(None) is None
    from pipelines.edges.notify import mlflow_link

    word = "pw-9"
    for uri in (f"http://admin:{word}@mlflow:5000", f"postgresql://u:{word}@h/mlflow"):
        assert word not in mlflow_link(uri, "1", "abc")


def test_the_servers_log_filter_masks_messages_and_tracebacks():
    import io
    import logging

    from pipelines.settings import MaskSecrets

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(MaskSecrets())
    logger = logging.getLogger("test.mask")
    logger.addHandler(handler)
    word = "hunter2-x"
    try:
        logger.error("cannot write to %s", f"postgresql://retrain:{word}@db/retrain")
        try:
            raise ConnectionError(f"invalid dsn: postgresql://retrain:{word}@db/retrain")
        except ConnectionError:
            logger.exception("flush failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert word not in text
    assert "to postgresql://retrain:***@db" in text and "dsn: postgresql://retrain:***@db" in text
