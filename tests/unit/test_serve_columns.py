"""The columnar request shape (``{"columns": [...], "data": [[...], ...]}``) and the log's queue.

A real (small) model on real Adult rows behind the real ASGI app: columnar answers equal the
model's own ``predict_proba`` and the records shape's; bad columnar input gets the same clear
4xx as bad records; a columnar request is logged and read back as the records it carried; a
full log queue is counted and exposed, never blocking the answer.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pipelines.predlog import readers as predlog
from pipelines.predlog.writer import PredictionLog
from pipelines.serve.app import ServingApp
from pipelines.serve.fastpath import CompiledScorer, frame_records
from pipelines.serve.model import LoadedModel, ModelHolder
from tests.support.serving import StaticSource

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")


@pytest.fixture(scope="module")
def records(adult_current, spec) -> list[dict]:
    # rows with missing values among them (null -> the model's missing value)
    head = adult_current.head(300)
    with_nulls = adult_current[adult_current.isna().any(axis=1)].head(30)
    import pandas as pd

    return frame_records(pd.concat([with_nulls, head]), spec.fields)


def _columns(records: list[dict], names: list[str] | None = None) -> dict:
    names = names or list(records[0])
    return {"columns": names, "data": [[r[c] for c in names] for r in records]}


def _client(model, spec, records, predlog_=None, **kw):
    from starlette.testclient import TestClient

    loaded = LoadedModel("7", CompiledScorer(model, spec.fields))
    app = ServingApp(
        ModelHolder(StaticSource(loaded), smoke=records[:20]), spec, max_body=256 * 1024,
        max_records=200, prediction_log=predlog_, **kw,
    )  # fmt: skip
    app.holder.refresh()
    return app, TestClient(app, raise_server_exceptions=False)


def _model_proba(model, spec, records) -> np.ndarray:
    """The model's own predict_proba on the same rows (null as NaN, as serving reads it)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records)[list(spec.fields.names)]
    frame = frame.astype(object).where(frame.notna(), np.nan)
    for c in spec.fields.numeric:
        frame[c] = frame[c].astype("float64")
    return np.asarray(model.predict_proba(frame)[:, 1])


@pytest.mark.parametrize("n", [1, 5, 100, 200])
def test_columns_answer_like_the_model_and_like_records(prefit, spec, records, n):
    model = prefit["a"]
    _, client = _client(model, spec, records)
    rows = records[:n]
    assert any(v is None for r in rows for v in r.values()) or n == 1
    want = _model_proba(model, spec, rows)
    shuffled = list(reversed(list(rows[0])))  # any column order
    with client:
        by_columns = client.post("/predict", json=_columns(rows, shuffled))
        by_records = client.post("/predict", json={"records": rows})
    assert by_columns.status_code == 200 and by_records.status_code == 200, by_columns.text
    got = np.asarray(by_columns.json()["probabilities"])
    assert np.array_equal(got, want), np.max(np.abs(got - want))
    assert by_columns.json()["probabilities"] == by_records.json()["probabilities"]
    assert by_columns.json()["labels"] == by_records.json()["labels"]


def test_columns_in_model_mode_answer_like_the_model(prefit, spec, records):
    """A pipeline the compiler does not know reads columns into the frame it was fitted on."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    odd = Pipeline([("noop", FunctionTransformer()), *prefit["a"].steps])
    sc = CompiledScorer(odd, spec.fields)
    assert sc.mode == "model"
    from pipelines.serve.columns import Columns

    body = _columns(records[:120])
    got = sc.predict_encoded(sc.encode(Columns(body["columns"], body["data"])))
    assert np.array_equal(got, _model_proba(odd, spec, records[:120]))
    mixed = sc.concat([sc.encode(records[:3]), sc.encode(Columns(body["columns"], body["data"]))])
    assert np.array_equal(sc.predict_encoded(mixed)[3:], got)


def _bad(records: list[dict]) -> list[tuple[str, object, int, str, str | None]]:
    names = list(records[0])
    good = _columns(records[:3])
    age = names.index("age")
    sex = names.index("sex")

    def with_value(i: int, j: int, v: object) -> dict:
        body = _columns(records[:3])
        body["data"][i][j] = v
        return body

    return [
        # (name, body, status, kind, field)
        ("unknown column", _columns([dict(r, shoe=1) for r in records[:2]]), 422,
         "unknown_field", "shoe"),
        ("missing column", _columns(records[:2], [c for c in names if c != "age"]), 422,
         "missing_field", "age"),
        ("numeric as string", with_value(1, age, "39"), 422, "wrong_type", "age"),
        ("numeric as bool", with_value(2, age, True), 422, "wrong_type", "age"),
        ("numeric as array", with_value(0, age, [1]), 422, "wrong_type", "age"),
        ("categorical as number", with_value(1, sex, 1), 422, "wrong_type", "sex"),
        ("categorical as object", with_value(1, sex, {}), 422, "wrong_type", "sex"),
        ("ragged row", {**good, "data": [*good["data"][:2], good["data"][2][:-1]]}, 422,
         "ragged_row", "data"),
        ("row not an array", {**good, "data": [good["data"][0], {"age": 1}]}, 422,
         "not_an_array", "data"),
        ("columns not names", {**good, "columns": [*names[:-1], 3]}, 422, "shape", "columns"),
        ("column twice", {**good, "columns": [*names[:-1], "age"]}, 422, "shape", "age"),
        ("data not an array", {**good, "data": {"0": 1}}, 422, "shape", "data"),
        ("no rows", {**good, "data": []}, 422, "empty_batch", None),
        ("key beside columns", {**good, "index": [0, 1, 2]}, 422, "unknown_field", "index"),
        ("too many rows", {**good, "data": good["data"][:1] * 201}, 413, "too_many", None),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(15))
def test_bad_columns_get_the_same_clear_4xx_as_records(prefit, spec, records, case):
    name, body, status, kind, field = _bad(records)[case]
    _, client = _client(prefit["a"], spec, records)
    with client:
        r = client.post("/predict", json=body)
    assert r.status_code == status, (name, r.text)
    problem = r.json()
    assert problem["kind"] == kind and problem["error"], (name, problem)
    if field is not None:
        assert problem["field"] == field and field in problem["error"], (name, problem)
    if kind == "wrong_type":  # the row is named like a record is
        assert problem["error"].startswith("row "), problem


def test_a_bad_record_in_a_large_batch_is_named_like_in_a_small_one(prefit, spec, records):
    """Batches of many records are read column by column; the error names the same record."""
    _, client = _client(prefit["a"], spec, records)
    batch = [dict(r) for r in records[:40]]
    batch[17]["age"] = "x"
    with client:
        many = client.post("/predict", json=batch).json()
        few = client.post("/predict", json=batch[15:18]).json()
    assert many["kind"] == few["kind"] == "wrong_type" and many["field"] == "age"
    assert many["error"] == few["error"].replace("record 2", "record 17")


def test_a_columnar_request_is_logged_as_the_records_it_carried(params, prefit, spec, records,
                                                               tmp_path):  # fmt: skip
    where = SimpleNamespace(prediction_log=str(tmp_path / "live"), dataset=params.dataset)
    log = PredictionLog(where.prediction_log, flush_seconds=60)
    app, client = _client(prefit["a"], spec, records, predlog_=log)
    rows = records[:30]
    with client:
        ids = []
        for body in (_columns(rows), {"records": rows}, rows, rows[0]):
            r = client.post("/predict", json=body)
            assert r.status_code == 200
            ids.append(r.headers["x-request-id"])
    log.close()
    logged = predlog.read_predictions(where)
    feats = list(spec.fields.names)
    per_request = [logged[logged.request_id == i].sort_values("row") for i in ids]
    assert [len(f) for f in per_request] == [30, 30, 30, 1]
    first = per_request[0][feats].reset_index(drop=True)
    for other in per_request[1:3]:
        assert first.equals(other[feats].reset_index(drop=True))
        assert list(other.probability) == list(per_request[0].probability)
    assert per_request[3][feats].reset_index(drop=True).equals(first.head(1))


def test_a_full_log_queue_is_counted_and_exposed_never_silent(params, prefit, spec, records,
                                                              tmp_path, caplog):  # fmt: skip
    """The decision when the log's queue is full: answer, do not queue, count and warn."""
    log = PredictionLog(str(tmp_path / "live"), flush_rows=10**9, flush_seconds=60,
                        max_pending=50)  # fmt: skip
    app, client = _client(prefit["a"], spec, records, predlog_=log)
    with client, caplog.at_level("WARNING", logger="pipelines.predlog"):
        answered = [client.post("/predict", json=records[:20]).status_code for _ in range(4)]
        metrics = client.get("/metrics").text
    assert answered == [200] * 4  # the answers never wait for the log
    assert log.overflowed == 40
    assert 'retrain_serve_prediction_log_records_total{outcome="overflowed"} 40.0' in metrics
    assert "retrain_serve_prediction_log_pending 40.0" in metrics
    assert any("not logged" in m for m in caplog.messages)
    log.close()
    assert log.written["predictions"] == 40
