"""The prediction log on a real PostgreSQL (the stack's sink): answers with their inputs as JSONB,
outcomes, the join, and rows written by the writer thread on close."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipelines.predlog import readers as predlog
from pipelines.predlog.writer import PredictionLog

pytestmark = pytest.mark.integration
URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture()
def where(params):
    import psycopg2

    conn = psycopg2.connect(URL)
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS retrain_predictions, retrain_feedback")
    conn.close()
    return SimpleNamespace(prediction_log=URL, dataset=params.dataset)


def test_postgres_log_round_trip(params, where, adult_current):
    from pipelines.serve.fastpath import frame_records
    from pipelines.serve.model import ServingSpec

    records = frame_records(adult_current.head(30), ServingSpec.from_params(params).fields)
    log = PredictionLog(URL, flush_seconds=0.2)
    for i in range(10):
        log.append(f"pg-{i}", "5", "champion", records[3 * i : 3 * i + 3], np.full(3, i / 10))
    log.append_outcomes([("pg-3", 1, params.dataset.positive_label)])
    log.close()  # writes what is left
    got = predlog.read_predictions(where)
    assert len(got) == 30 and set(got.model_version) == {"5"}
    first = got[(got.request_id == "pg-0") & (got.row == 0)].iloc[0]
    assert first.age == records[0]["age"] and first.sex == records[0]["sex"]
    assert got.ts.dt.tz is not None
    predlog.record_outcomes(
        where, pd.DataFrame({"request_id": ["pg-4"], "label": [params.dataset.negative_label]})
    )
    j = predlog.joined(where).sort_values("request_id")
    assert list(zip(j.request_id, j.row, strict=True)) == [("pg-3", 1), ("pg-4", 0)]
    assert j.probability.tolist() == pytest.approx([0.3, 0.4])


def test_a_row_postgres_refuses_is_dead_lettered_and_the_rest_written(
    params, where, adult_current, tmp_path
):
    """PostgreSQL refuses a NUL character in text and in JSONB: that request's row goes to the
    dead-letter file, every other row of the same flush is written, and the writer goes on."""
    import json

    from pipelines.serve.fastpath import frame_records
    from pipelines.serve.model import ServingSpec

    records = frame_records(adult_current.head(20), ServingSpec.from_params(params).fields)
    log = PredictionLog(URL, flush_seconds=60, dead_letter=tmp_path / "dead")
    for i in range(20):
        rec = dict(records[i], sex="nul\x00byte") if i == 7 else records[i]
        log.append(f"pg-{i}", "5", "champion", [rec], np.array([0.5]))
    log.append_outcomes([("pg-1", 0, params.dataset.positive_label), ("bad\x00id", 0, "x")])
    log.close()
    got = predlog.read_predictions(where)
    assert sorted(got.request_id) == sorted(f"pg-{i}" for i in range(20) if i != 7)
    assert list(predlog.read_feedback(where).request_id) == ["pg-1"]
    dead = [json.loads(x) for p in (tmp_path / "dead").glob("*.jsonl")
            for x in p.read_text().splitlines()]  # fmt: skip
    assert sorted(d["request_id"] for d in dead) == ["bad\x00id", "pg-7"]


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_outcomes_reach_any_replica_through_the_shared_log(params, where, prefit, adult_current):
    """Two serving processes on one PostgreSQL log: an answer given by one takes its outcome on
    the other, by the same rules (row range, conflicting label, probes refused), and an id no
    replica gave stays unknown."""
    import time

    from starlette.testclient import TestClient

    from pipelines.predlog.answers import SharedAnswers
    from pipelines.serve.app import ServingApp
    from pipelines.serve.fastpath import CompiledScorer, frame_records
    from pipelines.serve.model import LoadedModel, ModelHolder, ServingSpec

    spec = ServingSpec.from_params(params)
    records = frame_records(adult_current.head(10), spec.fields)
    loaded = LoadedModel("5", CompiledScorer(prefit["a"], spec.fields))

    class Static:
        def resolve(self) -> str:
            return loaded.version

        def load(self, version: str) -> LoadedModel:
            return loaded

    def replica() -> ServingApp:
        app = ServingApp(
            ModelHolder(Static(), smoke=records[:3]),
            spec,
            prediction_log=PredictionLog(URL, flush_seconds=0.1),
            shared=SharedAnswers(URL),
        )
        app.holder.refresh()
        return app

    pos, neg = params.dataset.positive_label, params.dataset.negative_label
    a, b = replica(), replica()
    with TestClient(a) as ca, TestClient(b) as cb:
        rid = ca.post("/predict", json=records[:3]).json()["request_id"]
        probe = ca.post("/predict", json=records[3], headers={"X-Retrain-Probe": "1"})
        first = cb.post("/feedback", json={"request_id": rid, "row": 2, "label": pos})
        deadline = time.monotonic() + 10
        while first.status_code == 422 and time.monotonic() < deadline:  # A's writer flushes
            time.sleep(0.2)
            first = cb.post("/feedback", json={"request_id": rid, "row": 2, "label": pos})
        assert first.status_code == 202, first.text
        out = cb.post("/feedback", json={"request_id": rid, "row": 3, "label": pos})
        assert out.status_code == 422 and out.json()["kind"] == "row_out_of_range"
        unknown = cb.post("/feedback", json={"request_id": "never-answered", "label": pos})
        assert unknown.status_code == 422 and unknown.json()["kind"] == "unknown_request"
        probed = cb.post("/feedback", json={"request_id": probe.json()["request_id"], "label": pos})
        assert probed.status_code == 422
    # a third replica learns the label fed back through the second: a different one conflicts
    b.stop()
    c = replica()
    with TestClient(c) as cc:
        clash = cc.post("/feedback", json={"request_id": rid, "row": 2, "label": neg})
        assert clash.status_code == 409, clash.text
        assert (
            cc.post("/feedback", json={"request_id": rid, "row": 0, "label": neg}).status_code
            == 202
        )
    j = predlog.read_feedback(where)
    assert sorted(zip(j.request_id, j.row, strict=True)) == [(rid, 0), (rid, 2)]
