"""The prediction log and the feedback loop's serving side: request ids, every answer logged with
its version and arm, outcomes joined by request id, the canary's share and shadow mirroring.

A real small model on real Adult rows behind the real ASGI app; the log is a real Parquet folder
(PostgreSQL is covered in tests/integration/test_prediction_log_pg.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipelines.predlog import readers as predlog
from pipelines.predlog import sinks
from pipelines.predlog.writer import PredictionLog
from pipelines.serve.app import ServingApp
from pipelines.serve.fastpath import CompiledScorer, frame_records
from pipelines.serve.model import LoadedModel, ModelHolder
from tests.support.serving import StaticSource

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")


@pytest.fixture(scope="module")
def models(prefit):
    return prefit["a"], prefit["b"]


@pytest.fixture(scope="module")
def records(adult_current, spec) -> list[dict]:
    return frame_records(adult_current.head(400), spec.fields)


def _features(params) -> list[str]:
    f = params.dataset.features
    return [*f.numeric, *f.categorical]


def _workspace(params, tmp_path):
    """Just what the readers need from params: the log's location and the features."""
    return SimpleNamespace(prediction_log=str(tmp_path / "live"), dataset=params.dataset)


def _app(params, spec, models, records, where, canary_tags=None):
    a, b = models
    champ = LoadedModel("3", CompiledScorer(a, spec.fields))
    holder = ModelHolder(StaticSource(champ), smoke=records[:20])
    canary = None
    if canary_tags is not None:
        chal = LoadedModel("4", CompiledScorer(b, spec.fields), tags=canary_tags)
        canary = ModelHolder(StaticSource(chal), smoke=records[:20], optional=True)
    log = PredictionLog(where.prediction_log, flush_rows=50, flush_seconds=0.2)
    app = ServingApp(holder, spec, prediction_log=log, canary=canary)
    holder.refresh()
    if canary is not None:
        canary.refresh()
    return app


def test_every_answer_is_logged_with_its_request_id_version_and_inputs(
    params, spec, models, records, tmp_path
):
    from starlette.testclient import TestClient

    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    with TestClient(app) as c:
        r = c.post("/predict", json=records[0], headers={"X-Request-ID": "req-1"})
        assert r.status_code == 200
        assert r.json()["request_id"] == "req-1" and r.headers["x-request-id"] == "req-1"
        r2 = c.post("/predict", json=records[1:6])
        rid = r2.json()["request_id"]
        assert r2.headers["x-request-id"] == rid and rid != "req-1"
        r3 = c.post("/predict", json=records[6])
        assert r3.json()["request_id"] != rid  # generated ids are unique
    # leaving the client ran the lifespan shutdown: the log was flushed and closed
    got = predlog.read_predictions(where)
    assert len(got) == 7
    one = got[got.request_id == "req-1"].iloc[0]
    assert one.model_version == "3" and one.arm == "champion" and one.row == 0
    assert one.probability == pytest.approx(r.json()["probability"])
    assert one.age == records[0]["age"] and one.sex == records[0]["sex"]
    batch = got[got.request_id == rid].sort_values("row")
    assert list(batch.row) == [0, 1, 2, 3, 4]
    assert np.allclose(batch.probability, r2.json()["probabilities"])
    assert got.ts.dt.tz is not None


def test_feedback_joins_outcomes_to_answers_and_rejects_bad_ones(
    params, spec, models, records, tmp_path
):
    from starlette.testclient import TestClient

    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    pos, neg = params.dataset.positive_label, params.dataset.negative_label
    with TestClient(app) as c:
        c.post("/predict", json=records[:3], headers={"X-Request-ID": "b1"})
        c.post("/predict", json=records[3], headers={"X-Request-ID": "s1"})
        ok = c.post(
            "/feedback",
            json={"outcomes": [{"request_id": "b1", "row": 2, "label": pos},
                               {"request_id": "s1", "label": neg}]},
        )  # fmt: skip
        assert ok.status_code == 202 and ok.json() == {"accepted": 2}
        bad = c.post("/feedback", json={"outcomes": [{"request_id": "b1", "label": "maybe"}]})
        assert bad.status_code == 422 and bad.json()["field"] == "label"
        assert "maybe" in bad.json()["error"]
        assert c.post("/feedback", json={"outcomes": []}).status_code == 422
        assert c.post("/feedback", json=[{"row": 1, "label": pos}]).json()["field"] == "request_id"
        assert c.get("/feedback").status_code == 405
    j = predlog.joined(where)
    assert sorted(zip(j.request_id, j.row, j.label, strict=True)) == [
        ("b1", 2, pos),
        ("s1", 0, neg),
    ]
    # a later outcome for the same answer wins (a corrected label)
    predlog.record_outcomes(where, pd.DataFrame({"request_id": ["s1"], "label": [pos]}))
    j = predlog.joined(where)
    assert j.set_index("request_id").loc["s1", "label"] == pos


def test_canary_takes_its_share_by_request_id_and_shadow_only_logs(
    params, spec, models, records, tmp_path
):
    from starlette.testclient import TestClient

    where = _workspace(params, tmp_path / "canary")
    app = _app(
        params, spec, models, records, where, {"canary.mode": "canary", "canary.share": "0.3"}
    )
    n = 1000
    with TestClient(app) as c:
        versions = [
            c.post("/predict", json=records[i % 400], headers={"X-Request-ID": f"q{i}"}).json()[
                "model_version"
            ]
            for i in range(n)
        ]
        assert c.get("/version").json()["canary"] == {
            "model_version": "4", "mode": "canary", "share": 0.3,
        }  # fmt: skip
        # the same id goes to the same arm (a retried request sees the same model)
        again = c.post("/predict", json=records[5], headers={"X-Request-ID": "q5"})
        assert again.json()["model_version"] == versions[5]
    share = versions.count("4") / n
    assert abs(share - 0.3) < 0.05, share  # binomial sd at n=1000 is 0.0145
    logged = predlog.read_predictions(where)
    assert set(logged.arm) == {"champion", "canary"}
    assert (logged[logged.arm == "canary"].model_version == "4").all()

    where2 = _workspace(params, tmp_path / "shadow")
    app2 = _app(
        params, spec, models, records, where2, {"canary.mode": "shadow", "canary.share": "0.3"}
    )
    with TestClient(app2) as c:
        for i in range(50):
            r = c.post("/predict", json=records[i], headers={"X-Request-ID": f"s{i}"})
            assert r.json()["model_version"] == "3"  # the answer is always the champion's
    logged = predlog.read_predictions(where2)
    assert (logged.arm == "champion").sum() == 50 and (logged.arm == "shadow").sum() == 50
    pair = logged[logged.request_id == "s7"].set_index("arm")
    assert pair.loc["shadow", "model_version"] == "4"


def test_folder_log_rolls_by_hour_and_reads_since(params, tmp_path):
    feats = _features(params)
    rec = {c: (1.0 if c in params.dataset.features.numeric else "x") for c in feats}
    log = PredictionLog(str(tmp_path), flush_rows=10_000, flush_seconds=60)
    for i in range(3):
        log.append(f"r{i}", "1", "champion", [rec, rec], np.array([0.1, 0.9]))
        log.flush()
    hour_dir = next((tmp_path / "predictions").iterdir())
    assert len(list(hour_dir.glob("part-*.parquet"))) == 3
    log.sink.roll("predictions", now=time.time() + 7200)  # the hour closed
    assert [p.name.split("-")[0] for p in hour_dir.glob("*.parquet")] == ["hour"]
    where = SimpleNamespace(prediction_log=str(tmp_path), dataset=params.dataset)
    assert len(predlog.read_predictions(where)) == 6
    later = datetime.now(UTC) + timedelta(hours=1)
    assert len(predlog.read_predictions(where, since=later)) == 0
    log.close()


def test_a_failing_sink_keeps_rows_for_the_next_write(params, tmp_path):
    feats = _features(params)
    rec = {c: (1.0 if c in params.dataset.features.numeric else "x") for c in feats}
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = PredictionLog(str(blocker), flush_seconds=60)
    log.append("r", "1", "champion", [rec], np.array([0.5]))
    assert log.flush() == 0 and log.failures == 1 and log.pending == 1
    log.sink = sinks.FolderSink(tmp_path / "ok")
    assert log.flush() == 1 and log.pending == 0
    log.close()


def test_unsupported_location_is_named():
    with pytest.raises(sinks.LogError, match="s3://bucket"):
        sinks.open_sink("s3://bucket/log")


def test_outcomes_land_in_their_hour_and_read_back_from_a_lower_bound(
    params, tmp_path, monkeypatch
):
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("RETRAIN_PREDICTION_LOG", str(tmp_path / "live"))
    before = datetime.now(UTC) - timedelta(seconds=1)
    frame = pd.DataFrame({"request_id": ["r1", "r2"], "label": [">50K", "<=50K"]})
    assert predlog.record_outcomes(params, frame) == 2  # stamped now, in microseconds
    (hour,) = [d.name for d in (tmp_path / "live" / "feedback").iterdir()]
    assert hour in (before.strftime("%Y-%m-%dT%H"), datetime.now(UTC).strftime("%Y-%m-%dT%H"))
    got = predlog.read_feedback(params, since=before)
    assert sorted(got["request_id"]) == ["r1", "r2"]
    assert predlog.read_feedback(params, since=datetime.now(UTC) + timedelta(hours=2)).empty


# --------------------------------------------------------------------------- trust at the edges
def _rec(params) -> dict:
    num = params.dataset.features.numeric
    return {c: (1.0 if c in num else "x") for c in _features(params)}


def test_a_poison_outcome_never_jams_the_writer(params, tmp_path):
    """One row the store cannot take goes to the dead-letter file; the rows after it are
    written, at shutdown too (an int32 row cast once failed every later flush)."""
    import json

    where = SimpleNamespace(prediction_log=str(tmp_path / "live"), dataset=params.dataset)
    log = PredictionLog(where.prediction_log, flush_seconds=60)
    log.append_outcomes([("poison", 2**62, ">50K")])  # past the parse check, as a bug might
    log.append_outcomes([("valid-1", 0, "<=50K")])
    log.flush()  # (or the writer thread, woken by the outcomes, did)
    log.append_outcomes([("poison-2", -(2**40), ">50K"), ("valid-2", 3, ">50K")])
    log.append("p1", "1", "champion", [_rec(params)], np.array([0.5]))
    log.append("p2", "1", "champion", [{"age": {1, 2}}], np.array([0.5]))  # not JSON at all
    log.close()
    got = predlog.read_feedback(where)
    assert sorted(zip(got.request_id, got.row, strict=True)) == [("valid-1", 0), ("valid-2", 3)]
    assert list(predlog.read_predictions(where).request_id) == ["p1"]
    assert log.dead_lettered == 3 and log.pending == 0
    dead = tmp_path / "live" / "dead-letter"
    lines = [
        json.loads(x) for p in sorted(dead.glob("*.jsonl")) for x in p.read_text().splitlines()
    ]
    refused = sorted(x["request_id"] for x in lines if x["kind"] == "feedback")
    assert refused == ["poison", "poison-2"]
    assert [x["request_id"] for x in lines if x["kind"] == "predictions"] == ["p2"]


def test_a_row_the_store_refuses_is_found_among_many_and_set_aside(params, tmp_path):
    """A store with a rule of its own (as PostgreSQL refuses a NUL in text): the write is split
    until the refused row stands alone; every other row is written."""

    class Strict(sinks.FolderSink):
        def write(self, kind, frame):
            if any("\x00" in r for r in sinks.as_table(frame).column("request_id").to_pylist()):
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")
            super().write(kind, frame)

    where = SimpleNamespace(prediction_log=str(tmp_path / "live"), dataset=params.dataset)
    log = PredictionLog(where.prediction_log, flush_seconds=60)
    log.sink = Strict(tmp_path / "live")
    ids = [f"ok-{i}" for i in range(37)]
    ids[23] = "bad\x00id"
    log.append_outcomes([(r, 0, ">50K") for r in ids])
    log.flush()
    log.close()
    got = sorted(predlog.read_feedback(where).request_id)
    assert got == sorted(r for r in ids if r != "bad\x00id")
    assert log.dead_lettered == 1 and log.failures == 0


def test_a_sink_that_stays_down_dead_letters_after_its_attempts(params, tmp_path):
    import json

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = PredictionLog(str(blocker), flush_seconds=60, max_attempts=3,
                        dead_letter=tmp_path / "dead")  # fmt: skip
    log.append_outcomes([("a", 0, ">50K"), ("b", 0, ">50K")])
    assert log.flush() == 0 and log.dead_lettered in (0, 2)  # kept while attempts remain
    for _ in range(3):  # (the writer thread may have tried too)
        log.flush()
    assert log.pending == 0 and log.dead_lettered == 2 and log.failures >= 3
    (dead,) = (tmp_path / "dead").glob("feedback-*.jsonl")
    assert [json.loads(x)["request_id"] for x in dead.read_text().splitlines()] == ["a", "b"]
    log.close()


@pytest.mark.parametrize(
    ("outcome", "field"),
    [
        ({"request_id": "b1", "row": 2**62, "label": ">50K"}, "row"),
        ({"request_id": "b1", "row": -1, "label": ">50K"}, "row"),
        ({"request_id": "b1", "row": 1.0, "label": ">50K"}, "row"),
        ({"request_id": "b1", "row": "1", "label": ">50K"}, "row"),
        ({"request_id": "b1", "row": True, "label": ">50K"}, "row"),
        ({"request_id": "b1", "row": 3, "label": ">50K"}, "row"),  # the request had 3 rows
        ({"request_id": "b\x001", "row": 0, "label": ">50K"}, "request_id"),
        ({"request_id": "x" * 129, "row": 0, "label": ">50K"}, "request_id"),
        ({"request_id": "never-answered", "row": 0, "label": ">50K"}, "request_id"),
    ],
)
def test_an_outcome_the_server_cannot_vouch_for_is_refused_naming_the_field(
    params, spec, models, records, tmp_path, outcome, field
):
    from starlette.testclient import TestClient

    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    with TestClient(app) as c:
        c.post("/predict", json=records[:3], headers={"X-Request-ID": "b1"})
        r = c.post("/feedback", json={"outcomes": [outcome]})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field and field in r.json()["error"]
        ok = c.post("/feedback", json={"request_id": "b1", "row": 2, "label": ">50K"})
        assert ok.status_code == 202 and ok.json() == {"accepted": 1}
    assert list(predlog.read_feedback(where).row) == [2]


def test_request_ids_are_random_and_outcomes_only_for_recent_answers(
    params, spec, models, records, tmp_path
):
    import re

    from starlette.testclient import TestClient

    from pipelines.serve.feedback import FeedbackPolicy

    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    app.recent = type(app.recent)(FeedbackPolicy(memory=3, ttl_seconds=3600))
    pos, neg = params.dataset.positive_label, params.dataset.negative_label
    with TestClient(app) as c:
        ids = [c.post("/predict", json=records[i]).json()["request_id"] for i in range(5)]
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert len({i[:8] for i in ids}) == 5  # no shared prefix, no counter
        # the first two were pushed out by newer answers: refused, saying why
        gone = c.post("/feedback", json={"request_id": ids[0], "label": pos})
        assert gone.status_code == 422 and gone.json()["kind"] == "unknown_request"
        assert ids[0] in gone.json()["error"] and "last 3 answers" in gone.json()["error"]
        assert c.post("/feedback", json={"request_id": ids[4], "label": pos}).status_code == 202
        # the same label again is accepted and not logged twice; a different one is a conflict
        same = c.post("/feedback", json={"request_id": ids[4], "label": pos})
        assert same.status_code == 202 and same.json() == {"accepted": 0}
        other = c.post("/feedback", json={"request_id": ids[4], "label": neg})
        assert other.status_code == 409 and other.json()["field"] == "label"
        # a body with one refused outcome changes nothing
        mixed = [{"request_id": ids[3], "label": pos}, {"request_id": ids[4], "label": neg}]
        assert c.post("/feedback", json=mixed).status_code == 409
        assert c.post("/feedback", json={"request_id": ids[3], "label": neg}).status_code == 202
    got = predlog.read_feedback(where).sort_values("request_id")
    assert sorted(zip(got.request_id, got.label, strict=True)) == sorted(
        [(ids[4], pos), (ids[3], neg)]
    )


def test_outcomes_expire_and_a_correction_can_be_configured(
    params, spec, models, records, tmp_path
):
    from starlette.testclient import TestClient

    from pipelines.serve.feedback import FeedbackPolicy, RecentAnswers

    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    app.recent = RecentAnswers(FeedbackPolicy(relabel="correct"))
    pos, neg = params.dataset.positive_label, params.dataset.negative_label
    with TestClient(app) as c:
        rid = c.post("/predict", json=records[0]).json()["request_id"]
        assert c.post("/feedback", json={"request_id": rid, "label": pos}).status_code == 202
        fix = c.post("/feedback", json={"request_id": rid, "label": neg})
        assert fix.status_code == 202 and fix.json() == {"accepted": 1}
    assert predlog.joined(where).set_index("request_id").loc[rid, "label"] == neg
    short = RecentAnswers(FeedbackPolicy(ttl_seconds=60))
    short.record("r", 2, now=1000.0)
    assert short.accept([("r", 1, pos)], now=1059.0) == [("r", 1, pos)]
    from pipelines.serve.inputs import InputError

    with pytest.raises(InputError, match="'r' is expired") as err:
        short.accept([("r", 0, pos)], now=1061.0)
    assert err.value.kind == "expired_request"


def test_feedback_has_its_own_token_and_its_401_names_it(
    params, spec, models, records, tmp_path, monkeypatch
):
    from starlette.testclient import TestClient

    monkeypatch.setenv("RETRAIN_SERVE_TOKEN", "serve-tok")
    monkeypatch.setenv("RETRAIN_FEEDBACK_TOKEN", "feedback-tok")
    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    serve = {"Authorization": "Bearer serve-tok"}
    fb = {"Authorization": "Bearer feedback-tok"}
    with TestClient(app) as c:
        assert c.post("/predict", json=records[0], headers=fb).status_code == 401
        rid = c.post("/predict", json=records[0], headers=serve).json()["request_id"]
        outcome = {"request_id": rid, "label": params.dataset.positive_label}
        for headers in ({}, serve):
            r = c.post("/feedback", json=outcome, headers=headers)
            assert r.status_code == 401 and "/feedback" in r.json()["error"]
            assert 'realm="feedback"' in r.headers["www-authenticate"]
        assert c.post("/feedback", json=outcome, headers=fb).status_code == 202


def test_probes_are_logged_apart_and_never_reach_the_monitor(
    params, spec, models, records, tmp_path
):
    """The deploy's smoke check (and any request marked X-Retrain-Probe) is logged under the
    arm 'probe': not in the monitor's window, not landed, no outcomes taken for it."""
    from starlette.testclient import TestClient

    from pipelines.monitor.live import landing_rows, live_frame

    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    probe = {"X-Retrain-Probe": "deploy"}
    with TestClient(app) as c:
        smoke = c.post("/predict", json={"records": records[:200]}, headers=probe).json()
        live = [c.post("/predict", json=records[i]).json()["request_id"] for i in range(20)]
        refused = c.post("/feedback", json={"request_id": smoke["request_id"], "label": ">50K"})
        assert refused.status_code == 422 and refused.json()["kind"] == "unknown_request"
        for rid in live:
            assert c.post("/feedback", json={"request_id": rid, "label": ">50K"}).status_code == 202
    logged = predlog.read_predictions(where)
    assert (logged.arm == "probe").sum() == 200 and (logged.arm == "champion").sum() == 20
    assert len(live_frame(logged, params)) == 20
    labelled = predlog.join(logged, predlog.read_feedback(where))
    labelled["label"] = labelled["label"].fillna(">50K")  # as if every probe row had an outcome
    assert len(landing_rows(labelled, params)) == 20


def test_the_deploy_checks_mark_themselves_as_probes(monkeypatch):
    import urllib.request

    from pipelines.release import deploy

    sent = []

    class Answer:
        status = 200

        def read(self):
            return b"{}"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(req, timeout):
        sent.append(dict(req.header_items()))
        return Answer()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    deploy.http_json("http://127.0.0.1:1/predict", {"records": []})
    deploy.http_json("http://127.0.0.1:1/ready")
    assert [h.get("X-retrain-probe") for h in sent] == ["deploy", "deploy"]


def test_markup_sent_to_predict_is_inert_in_the_monitors_report(
    params, spec, models, records, adult_reference, tmp_path
):
    """Category values from live traffic reach the monitor's drift.html escaped: no tag, no
    attribute breaks out; ordinary values (and so the drift shown) are unchanged."""
    from starlette.testclient import TestClient

    from pipelines.monitor.live import live_frame
    from pipelines.stages.drift.columns import column_tests
    from pipelines.stages.drift.evidently_engine import inert, write_html_report

    bad = ["<script>alert(1)</script>", '" onerror=alert(1) x="', "<img src=x onerror=alert(1)>"]
    where = _workspace(params, tmp_path)
    app = _app(params, spec, models, records, where)
    cat = params.dataset.features.categorical
    with TestClient(app) as c:
        for i in range(300):
            rec = dict(records[i])
            if i % 2:
                rec[cat[i % len(cat)]] = bad[i % len(bad)]
            assert c.post("/predict", json=rec).status_code == 200, rec
    current = live_frame(predlog.read_predictions(where), params)
    assert current.isin(bad).any().any()  # the values did travel the data path
    page = write_html_report(
        adult_reference.head(600),
        current,
        params.dataset,
        params.drift,
        tmp_path / "drift.html",
        title="Live drift <b>now</b>",
        sides=("the training data", "live answers"),
    )
    text = page.read_text()
    # headed with what each side is and its rows, escaped, before Evidently's own page
    head = text.index("<h1>Live drift &lt;b&gt;now&lt;/b&gt;</h1>")
    assert "Reference: the training data (600 rows)" in text[head:]
    assert f"Current: live answers ({len(current):,} rows)" in text[head:]
    assert head < text.index("<script", head)
    for needle in ("<script>alert", "<img src=x", '" onerror=alert', "\\u003cscript"):
        assert needle not in text, needle
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # shown, as text
    tests = column_tests(params.dataset, params.drift)[0]
    plain = adult_reference
    assert inert(plain, tests).equals(plain)  # 'Trinadad&Tobago' too
    tricky = plain.head(3).assign(race=["a<b", "a&lt;b", "a&b"])
    assert list(inert(tricky, tests).race) == ["a&lt;b", "a&amp;lt;b", "a&b"]  # one-to-one
