"""How fast one client may send: token buckets per credential, and their 429 answers."""

from __future__ import annotations

import math

import pytest

from pipelines.serve.ratelimit import Buckets, Limited, client_key, retry_after_header

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    b = Buckets(rate=10, burst_seconds=2, unit="outcomes")  # 20 at once, then 10 per second
    b.take("k", 20, now=0.0)
    with pytest.raises(Limited) as over:
        b.take("k", 1, now=0.0)
    assert over.value.retry_after == pytest.approx(0.1)
    assert "10 outcomes per second" in over.value.message
    b.take("k", 5, now=0.5)  # half a second refilled five
    with pytest.raises(Limited):
        b.take("k", 1, now=0.5)
    b.take("other", 20, now=0.5)  # another client has its own bucket


def test_a_refused_request_spends_nothing() -> None:
    b = Buckets(rate=10, burst_seconds=1, unit="outcomes")
    b.take("k", 8, now=0.0)
    with pytest.raises(Limited):
        b.take("k", 5, now=0.0)
    b.take("k", 2, now=0.0)  # the refused 5 were not taken


def test_a_request_larger_than_the_bucket_is_told_that_waiting_will_not_help() -> None:
    b = Buckets(rate=10, burst_seconds=1, unit="outcomes")
    with pytest.raises(Limited) as big:
        b.take("k", 11, now=0.0)
    assert math.isinf(big.value.retry_after) and "smaller requests" in big.value.message
    assert retry_after_header(big.value.retry_after) is None
    assert retry_after_header(0.2) == (b"retry-after", b"1")


def test_buckets_are_bounded_and_keys_never_hold_the_token() -> None:
    b = Buckets(rate=1, burst_seconds=1, unit="requests", max_keys=3)
    for i in range(10):
        b.take(f"c{i}", 1, now=0.0)
    assert len(b._state) == 3
    key = client_key(b"s3cret-token", "10.0.0.1")
    assert "s3cret" not in key and key.startswith("token:")
    assert client_key(b"", "10.0.0.1") == "addr:10.0.0.1"


def test_the_app_answers_429_with_retry_after_per_endpoint(prefit, params, adult_current, tmp_path):
    from starlette.testclient import TestClient

    from pipelines.predlog.writer import PredictionLog
    from pipelines.serve.app import ServingApp
    from pipelines.serve.fastpath import CompiledScorer, frame_records
    from pipelines.serve.model import LoadedModel, ModelHolder, ServingSpec
    from pipelines.serve.ratelimit import RateLimits

    spec = ServingSpec.from_params(params)
    records = frame_records(adult_current.head(30), spec.fields)
    loaded = LoadedModel("3", CompiledScorer(prefit["a"], spec.fields))

    class Static:
        def resolve(self) -> str:
            return loaded.version

        def load(self, version: str) -> LoadedModel:
            return loaded

    log = PredictionLog(str(tmp_path / "live"), flush_rows=50, flush_seconds=0.2)
    limits = RateLimits(predict_per_second=3, feedback_outcomes_per_second=2, burst_seconds=1)
    app = ServingApp(
        ModelHolder(Static(), smoke=records[:5]), spec, prediction_log=log, limits=limits
    )
    app.holder.refresh()
    pos = params.dataset.positive_label
    with TestClient(app) as c:
        answers = [c.post("/predict", json=records[i]) for i in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        over = c.post("/predict", json=records[3])
        assert over.status_code == 429 and over.json()["kind"] == "rate_limited"
        assert int(over.headers["retry-after"]) >= 1
        ids = [r.json()["request_id"] for r in answers]
        three = [{"request_id": i, "label": pos} for i in ids]
        big = c.post("/feedback", json=three)  # 3 outcomes, the bucket holds 2
        assert big.status_code == 429 and "smaller requests" in big.json()["error"]
        assert "retry-after" not in big.headers
        assert c.post("/feedback", json=three[:2]).status_code == 202
        again = c.post("/feedback", json=three[2:])
        assert again.status_code == 429 and "retry-after" in again.headers
        metrics = c.get("/metrics").text
    assert 'kind="rate_limited"' in metrics
