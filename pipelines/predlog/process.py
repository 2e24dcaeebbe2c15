"""The prediction log in a writer process of its own: serving's GIL never waits on the log.

The thread writer (:class:`~pipelines.predlog.writer.PredictionLog`) turns the queue into Arrow
columns and Parquet in the serving process; those steps hold the GIL in many short pieces, and
each one the serving thread has to wait for (longer on a busy machine, where the holder may be
descheduled) shows in the answers' tail. :class:`ProcessLog` keeps only the queue in the serving
process: :meth:`ProcessLog.append` encodes the probabilities and appends one tuple (the same
entry the thread writer queues), and a sender thread hands the queue every ``SEND_SECONDS`` to
a child process as one pickled list through a pipe (one C call, then a system call without the
GIL). The child runs the thread writer itself, sink, dead-letter file and all, at a lower
priority (``WRITER_NICE``): on a saturated machine the answers get the cores first.

The queue is bounded by ``max_pending`` rows not yet handed over: an answer finding it full is
still given, counted in ``overflowed`` and warned about (never silently, never blocking). A
writer process that exited is replaced (at most once a second, an error logged, counted in
``restarts``); the queue waits for it, and only what the dead process held is lost. On shutdown
(SIGTERM too) :meth:`ProcessLog.close` sends what is left, and the child, which ignores the
process group's SIGTERM and SIGINT, writes everything and exits. The serving image carries
this module (standard library, numpy and orjson).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import orjson

log = logging.getLogger("pipelines.predlog")
SEND_SECONDS = 0.005  # how often the queue goes to the writer process
RESTART_SECONDS = 1.0  # a writer process that exited is replaced at most this often
WRITER_NICE = 10  # the writer yields the cores to answering: it catches up when they are free
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_COUNTS = ("predictions", "feedback", "dead_lettered", "pending")
_IGNORED = (signal.SIGTERM, signal.SIGINT)


class ProcessLog:
    """The serving side of a prediction log written by a child process."""

    def __init__(
        self,
        location: str,
        flush_rows: int = 100_000,
        flush_seconds: float = 1.0,
        max_pending: int = 1_000_000,
        dead_letter: Any = None,
    ) -> None:
        self.location = location
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self._config = {
            "location": location, "flush_rows": flush_rows, "flush_seconds": flush_seconds,
            "dead_letter": None if dead_letter is None else str(dead_letter),
        }  # fmt: skip
        self._ctx = multiprocessing.get_context("spawn")
        self._counts = self._ctx.Array("q", len(_COUNTS), lock=False)
        self._pending: list[Any] = []
        self._outcomes: list[tuple[str, int, str, float]] = []
        self._rows = 0  # rows queued here, not yet handed over
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.overflowed = 0
        self.restarts = 0
        self._warned = 0.0
        self._started = 0.0
        self._child: Any = None
        self._conn: Any = None
        self._start_child()
        self._sender = threading.Thread(target=self._send_loop, name="prediction-log", daemon=True)
        self._sender.start()

    # ---- hot path
    def append(
        self, request_id: str, version: str, arm: str, records: bytes | Sequence[Any], proba: Any
    ) -> None:
        try:
            probs = orjson.dumps(proba, option=_NUMPY)
        except TypeError:
            probs = orjson.dumps(np.ascontiguousarray(proba, dtype=np.float64), option=_NUMPY)
        if type(records) is not bytes:
            records = orjson.dumps(list(records))
        n = len(proba)
        with self._lock:
            if self._rows + n > self.max_pending:
                self._overflow(n)
                return
            self._pending.append((request_id, time.time(), version, arm, records, probs, n))
            self._rows += n

    def append_outcomes(self, outcomes: Iterable[tuple[str, int, str]]) -> int:
        now = time.time()
        rows = [(r, int(i), str(lab), now) for r, i, lab in outcomes]
        with self._lock:
            self._outcomes.extend(rows)
        return len(rows)

    def _overflow(self, n: int) -> None:
        self.overflowed += n
        now = time.monotonic()
        if now - self._warned >= self.flush_seconds:
            self._warned = now
            log.warning(
                "prediction log: %d rows waiting (max_pending): %d answers not logged so far",
                self._rows, self.overflowed,
            )  # fmt: skip

    # ---- the sender thread
    def _send_loop(self) -> None:
        while not self._closed.wait(SEND_SECONDS):
            self._send()

    def _send(self) -> None:
        if not self._child.is_alive():
            if time.monotonic() - self._started < RESTART_SECONDS:
                return  # the rows wait here (bounded by max_pending)
            log.error(
                "prediction log: the writer process exited (code %s); starting another",
                self._child.exitcode,
            )
            self.restarts += 1
            self._start_child()
        with self._lock:
            pending, self._pending = self._pending, []
            outcomes, self._outcomes = self._outcomes, []
            rows, self._rows = self._rows, 0
        if not pending and not outcomes:
            return
        payload = pickle.dumps((pending, outcomes), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._conn.send_bytes(payload)
        except (OSError, ValueError) as err:  # the child went away meanwhile: try again later
            log.error("prediction log: handing %d rows to the writer failed: %s", rows, err)
            with self._lock:
                self._pending[:0] = pending
                self._outcomes[:0] = outcomes
                self._rows += rows

    def _start_child(self) -> None:
        self._started = time.monotonic()
        if self._conn is not None:
            self._conn.close()
        receive, self._conn = self._ctx.Pipe(duplex=False)
        self._child = self._ctx.Process(
            target=_child_main, args=(receive, self._config, self._counts),
            name="prediction-log-writer", daemon=False,
        )  # fmt: skip
        # started with SIGTERM and SIGINT ignored (kept across exec): a stop of the process
        # group while the child is still starting must not kill it either (main thread only;
        # a restart from the sender thread relies on the child's own first lines)
        main = threading.current_thread() is threading.main_thread()
        saved = [signal.signal(s, signal.SIG_IGN) for s in _IGNORED] if main else []
        try:
            self._child.start()
        finally:
            for sig, handler in zip(_IGNORED, saved, strict=False):
                signal.signal(sig, handler)
        receive.close()

    # ---- shutdown and counts
    def close(self, timeout: float = 60.0) -> None:
        """Hand over what is left, let the writer write it all and stop (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._sender.join(timeout)
        self._send()
        self._conn.close()  # the child reads to the end, writes, and exits
        self._child.join(timeout)
        if self._child.is_alive():
            log.error("prediction log: the writer process did not finish in %.0f s", timeout)

    @property
    def written(self) -> dict[str, int]:
        return {"predictions": self._counts[0], "feedback": self._counts[1]}

    @property
    def dead_lettered(self) -> int:
        return int(self._counts[2])

    @property
    def pending(self) -> int:
        return self._rows + len(self._outcomes) + int(self._counts[3])


def _child_main(conn: Any, config: dict[str, Any], counts: Any) -> None:
    """The writer process: read what serving hands over, write it with the thread writer."""
    from pipelines.predlog.writer import PredictionLog

    # a SIGTERM to the process group (the server being stopped) must not cut the log short:
    # the child ends when serving closes the pipe, after writing everything
    for sig in _IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    try:  # background work: on a saturated machine the answers come first (the queue is bounded)
        os.nice(WRITER_NICE)
    except OSError:  # not allowed here: the writer runs at serving's priority
        pass
    writer = PredictionLog(**config)
    done = threading.Event()

    def report() -> None:
        while not done.wait(0.25):
            _report(writer, counts)

    threading.Thread(target=report, name="counts", daemon=True).start()
    try:
        while True:
            try:
                pending, outcomes = pickle.loads(conn.recv_bytes())
            except EOFError:
                break
            writer.extend(pending, outcomes)
    finally:
        done.set()
        writer.close()
        _report(writer, counts)


def _report(writer: Any, counts: Any) -> None:
    counts[0] = writer.written["predictions"]
    counts[1] = writer.written["feedback"]
    counts[2] = writer.dead_lettered
    counts[3] = writer.pending
