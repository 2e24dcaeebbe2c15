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
