"""The prediction log's writer process (what `retrain serve` runs): everything handed over is
written when serving closes it, a SIGTERM to the process group does not cut it short, and a
writer process that died is replaced, the answers queued meanwhile kept."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import numpy as np

from pipelines.predlog import readers as predlog
from pipelines.predlog.process import ProcessLog


def _rec(params) -> bytes:
    """One record as serving logs it: the request's JSON, a list of one."""
    import orjson

    f = params.dataset.features
    return orjson.dumps([{**dict.fromkeys(f.numeric, 1.0), **dict.fromkeys(f.categorical, "x")}])


def test_everything_handed_over_is_written_even_after_a_sigterm(params, tmp_path):
    where = SimpleNamespace(prediction_log=str(tmp_path / "live"), dataset=params.dataset)
    log = ProcessLog(where.prediction_log, flush_seconds=0.2)
    rec = _rec(params)
    for i in range(500):
        log.append(f"r{i}", "1", "champion", rec, np.array([i / 500]))
    log.append_outcomes([("r1", 0, ">50K")])
    time.sleep(0.5)
    os.kill(log._child.pid, signal.SIGTERM)  # as `kill -TERM -<group>` reaches it
    for i in range(500, 700):
        log.append(f"r{i}", "1", "champion", rec, np.array([0.5]))
    log.close()
    assert log._child.exitcode == 0
    got = predlog.read_predictions(where)
    assert sorted(got.request_id) == sorted(f"r{i}" for i in range(700))
    assert np.isclose(got.set_index("request_id").loc["r250", "probability"], 0.5)
    assert list(predlog.read_feedback(where).request_id) == ["r1"]
    assert log.written == {"predictions": 700, "feedback": 1} and log.overflowed == 0


def test_a_writer_process_that_died_is_replaced_and_nothing_queued_is_lost(
    params, tmp_path, caplog
):
    where = SimpleNamespace(prediction_log=str(tmp_path / "live"), dataset=params.dataset)
    log = ProcessLog(where.prediction_log, flush_seconds=0.2)
    first = log._child
    time.sleep(1.0)  # (replaced at most once a second)
    first.kill()
    first.join(10)
    with caplog.at_level("ERROR", logger="pipelines.predlog"):
        log.append("after", "1", "champion", _rec(params), np.array([0.5]))
        deadline = time.monotonic() + 10
        while log._child is first and time.monotonic() < deadline:
            time.sleep(0.05)
    assert log._child is not first and log.restarts == 1
    assert any("writer process exited" in m for m in caplog.messages)
    log.append("later", "1", "champion", _rec(params), np.array([0.5]))
    log.close()
    assert sorted(predlog.read_predictions(where).request_id) == ["after", "later"]
    assert log.overflowed == 0
