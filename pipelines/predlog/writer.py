"""The prediction log's writer, on serving's hot path: every answer and every outcome fed back.

:meth:`PredictionLog.append` keeps references (one tuple in a list): the request's inputs as
the JSON bytes the client sent (serving passes them; other callers may pass records, encoded
later) and the probabilities as JSON bytes (``orjson``, well under a microsecond). A writer
thread turns what waits into Arrow columns (one C call per column, not a Python loop per
request) and hands the table to the sink (:mod:`pipelines.predlog.sinks`), whose Parquet
encoding, compression and file writes run without the GIL: the writer never holds the serving
thread for more than a fraction of a millisecond (the serving benchmark prices it: p99 with the
log on against ``--no-log``). It writes when ``flush_rows`` wait or every ``flush_seconds``.

The queue is bounded (the decision when it is full): at most ``max_pending`` rows wait. An
answer that finds it full is still given, but not queued: it is counted in ``overflowed``
(``retrain_serve_prediction_log_records_total{outcome="overflowed"}``) and warned about (at
most once per ``flush_seconds``): never silently, and the hot path never blocks on the log.
While the sink fails, rows are kept for ``max_attempts`` flushes and then go to the dead-letter
file, so a sink that is down does not fill the queue; one that is merely slower than the
traffic does. :meth:`PredictionLog.close` writes what is left: serving calls it on shutdown,
SIGTERM included, so a stopped server loses nothing it answered. Serving runs this writer in a
process of its own (:mod:`pipelines.predlog.process`); tests and tools use it directly.

Free of ``pipelines.config`` and of the readers: the serving image carries this module.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pipelines.predlog.sinks import dead_letter_folder, open_sink
from pipelines.settings import mask_url

log = logging.getLogger("pipelines.predlog")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY

# one pending answer: (request_id, time, version, arm, inputs, probabilities, records)
# inputs: JSON bytes (a list of records, or an object holding them, as serving received them)
# or the records themselves; probabilities: JSON bytes
_Entry = tuple[str, float, str, str, "bytes | Sequence[Any]", bytes, int]
CHUNK = 256  # requests turned into Arrow columns per step of a flush
_COLUMNS = ("request_id", "ts", "model_version", "arm", "probabilities", "inputs")
_TYPES: tuple[Any, ...] = ()  # the Arrow types of _COLUMNS (set when pyarrow is first imported)


# --------------------------------------------------------------------------- the writer
class PredictionLog:
    """Buffers answers and outcomes; a writer thread writes them to the sink."""

    def __init__(
        self,
        location: str,
        flush_rows: int = 100_000,
        flush_seconds: float = 1.0,
        max_pending: int = 1_000_000,
        dead_letter: Path | str | None = None,
        max_attempts: int = 10,
    ) -> None:
        self.location = location
        self.sink = open_sink(location)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending  # rows waiting at most (queue full: see the docstring)
        self._pending: list[_Entry] = []
        self._pending_rows = 0
        self._outcomes: list[tuple[str, int, str, float]] = []
        self._lock = threading.Lock()  # append / swap: uncontended but for the swap
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._write_lock = threading.Lock()
        self.written = {"predictions": 0, "feedback": 0}  # records, outcomes
        self.failures = 0
        self.dropped = 0  # rows moved to the dead-letter file past max_pending (sink down)
        self.overflowed = 0  # answers not queued: the queue was full (counted, warned)
        self._warned = 0.0
        # rows the sink refuses: JSON lines here (default: the log folder's dead-letter folder)
        self.dead_letter = Path(dead_letter) if dead_letter else dead_letter_folder(location)
        self.max_attempts = max_attempts  # failed flushes in a row before the rows go there
        self.dead_lettered = 0
        self.last_error = ""
        self._streak = {"predictions": 0, "feedback": 0}
        self._token = f"{os.getpid()}-{os.urandom(3).hex()}"
        _warm_up()  # here, not in the first flush: an import holds the GIL for its whole run

        self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)
        self._thread.start()

    # ---- hot path: references only
    def append(
        self,
        request_id: str,
        version: str,
        arm: str,
        records: bytes | Sequence[Any],
        proba: Any,
    ) -> None:
        """Queue one answer. ``records``: the request's inputs as JSON bytes (a list of
        records, ``{"records": [...]}`` or ``{"columns": [...], "data": [...]}``), or the
        records themselves; ``proba``: one probability per record."""
        try:
            probs = orjson.dumps(proba, option=_NUMPY)
        except TypeError:  # not a contiguous float array: a copy that is
            probs = orjson.dumps(np.ascontiguousarray(proba, dtype=np.float64), option=_NUMPY)
        n = len(proba)
        with self._lock:
            if self._pending_rows + n > self.max_pending:
                self.overflowed += n
                self._overflow_warning()
                return
            self._pending.append((request_id, time.time(), version, arm, records, probs, n))
            self._pending_rows += n
        if self._pending_rows >= self.flush_rows:
            self._wake.set()

    def _overflow_warning(self) -> None:
        now = time.monotonic()
        if now - self._warned >= self.flush_seconds:
            self._warned = now
            log.warning(
                "prediction log: %d rows waiting (max_pending): %d answers not logged so far",
                self._pending_rows, self.overflowed,
            )  # fmt: skip

    def extend(self, entries: list[_Entry], outcomes: list[tuple[str, int, str, float]]) -> None:
        """Queue answers and outcomes already stamped and encoded (by
        :class:`~pipelines.predlog.process.ProcessLog`, in the serving process)."""
        with self._lock:
            self._pending.extend(entries)
            self._pending_rows += sum(e[6] for e in entries)
            self._outcomes.extend(outcomes)
        if self._pending_rows >= self.flush_rows or outcomes:
            self._wake.set()

    def append_outcomes(self, outcomes: Iterable[tuple[str, int, str]]) -> int:
        now = time.time()
        rows = [(r, int(i), str(lab), now) for r, i, lab in outcomes]
        with self._lock:
            self._outcomes.extend(rows)
        self._wake.set()
        return len(rows)

    # ---- the writer thread
    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the writer must outlive any one flush
                log.exception("prediction log: flush failed")

    def flush(self) -> int:
        """Write everything pending now; returns the records and outcomes written. Thread-safe.

        A write that fails is split to find the rows that fail alone: while the rest goes
        through, those are poison and go to the dead-letter file; when nothing goes through
        (the sink is down) the rows are kept for the next flush, up to ``max_attempts``
        flushes in a row, and then dead-lettered too. One bad row never jams the writer."""
        with self._write_lock:
            with self._lock:
                pending, self._pending = self._pending, []
                self._pending_rows = 0
                outcomes, self._outcomes = self._outcomes, []
            n = 0
            for kind, items in (("predictions", pending), ("feedback", outcomes)):
                if not items:
                    continue
                written, keep, dead = self._write_isolating(kind, items)
                self.written[kind] += _size(kind, written)
                n += _size(kind, written)
                if keep:
                    self.failures += 1
                    self._streak[kind] += 1
                    if self._streak[kind] >= self.max_attempts:
                        dead, keep = dead + keep, []
                else:
                    self._streak[kind] = 0
                if dead:
                    self._dead_letter(kind, dead)
                if keep:
                    self._keep(kind, keep, _size(kind, keep))
            return n

    def _write_isolating(
        self, kind: str, items: list[Any]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        """Write ``items``; returns (written, kept for a retry, poison)."""
        if self._try_write(kind, items, report=True):
            return items, [], []
        if self._frames_fail(kind, items):  # some rows are poison whatever the sink does
            return self._split_poison(kind, items)
        return self._bisect(kind, items, sink_up=False)

    def _bisect(
        self, kind: str, items: list[Any], sink_up: bool
    ) -> tuple[list[Any], list[Any], list[Any]]:
        """``items`` failed as a whole: write each half. When one goes through, the sink is up
        and the other half holds poison, split further down to the rows that fail alone; when
        neither does and nothing went through yet, the sink is down and all are kept."""
        if len(items) == 1:
            return ([], [], items) if sink_up else ([], items, [])
        mid = len(items) // 2
        halves = (items[:mid], items[mid:])
        ok = [self._try_write(kind, half) for half in halves]
        if not any(ok) and not sink_up:
            return [], items, []
        written: list[Any] = []
        dead: list[Any] = []
        for half, went in zip(halves, ok, strict=True):
            if went:
                written += half
            else:
                w, _, d = self._bisect(kind, half, sink_up=True)
                written += w
                dead += d
        return written, [], dead

    def _try_write(self, kind: str, items: list[Any], report: bool = False) -> bool:
        try:
            self.sink.write(kind, self._frame(kind, items))
        except Exception as err:  # noqa: BLE001 - the caller finds the rows that fail
            if report:  # (a driver's message may quote the connection string: masked)
                self.last_error = mask_url(f"{type(err).__name__}: {err}") or ""
                log.warning(
                    "prediction log: writing %d %s failed: %s", len(items), kind, self.last_error
                )
            return False
        return True

    def _frames_fail(self, kind: str, items: list[Any]) -> bool:
        try:
            self._frame(kind, items)
        except Exception:  # noqa: BLE001
            return True
        return False

    def _split_poison(self, kind: str, items: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        """Rows that cannot even be made into a frame are poison whatever the sink does."""
        good: list[Any] = []
        dead: list[Any] = []
        for it in items:
            (dead if self._frames_fail(kind, [it]) else good).append(it)
        if not good:
            return [], [], dead
        try:
            self.sink.write(kind, self._frame(kind, good))
        except Exception:  # noqa: BLE001 - the sink itself fails: keep the good rows
            return [], good, dead
        return good, [], dead

    def _frame(self, kind: str, items: list[Any]) -> Any:
        return self._prediction_frame(items) if kind == "predictions" else outcome_frame(items)

    def _dead_letter(self, kind: str, items: list[Any]) -> None:
        """Rows the sink cannot take, as JSON lines in the dead-letter folder (else, when that
        cannot be written either, in the log itself): answered, so never silently dropped."""
        lines = [orjson.dumps(_entry_json(kind, it), default=repr, option=_NUMPY) for it in items]
        self.dead_lettered += len(items)
        where = self.dead_letter
        try:
            if where is None:
                raise OSError("no dead-letter folder is configured")
            where.mkdir(parents=True, exist_ok=True)
            with open(where / f"{kind}-{self._token}.jsonl", "ab") as f:
                f.write(b"".join(line + b"\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            log.error("prediction log: dead-letter file not written (%s); the rows:", err)
            for line in lines:
                log.error("dead-letter %s %s", kind, line.decode())
            return
        log.error(
            "prediction log: %d %s rows the sink refused went to %s (last error: %s)",
            len(items), kind, where, self.last_error,
        )  # fmt: skip

    def _keep(self, kind: str, items: list[Any], size: int) -> None:
        """Put rows that could not be written back in front; past ``max_pending`` the oldest
        go to the dead-letter file (counted in ``dropped``) rather than the server running
        out of memory."""
        over: list[Any] = []
        with self._lock:
            if kind == "predictions":
                self._pending[:0] = items
                self._pending_rows += size
                while self._pending_rows > self.max_pending and len(self._pending) > 1:
                    old = self._pending.pop(0)
                    self._pending_rows -= old[6]
                    self.dropped += old[6]
                    over.append(old)
            else:
                self._outcomes[:0] = items
                extra = len(self._outcomes) - self.max_pending
                if extra > 0:
                    over = self._outcomes[:extra]
                    del self._outcomes[:extra]
                    self.dropped += extra
        if over:
            self._dead_letter(kind, over)

    @staticmethod
    def _prediction_frame(pending: list[_Entry]) -> Any:
        """One row per request: meta, probabilities and inputs (JSON bytes), as Arrow columns.

        Built :data:`CHUNK` requests at a time, one C call per column and chunk, the GIL let go
        between chunks: the serving thread waits a fraction of a millisecond at most, however
        many requests a flush holds."""
        import pyarrow as pa

        chunks: list[list[Any]] = [[] for _ in _COLUMNS]
        for start in range(0, len(pending), CHUNK):
            rid, ts, version, arm, inputs, probs, _ = zip(
                *pending[start : start + CHUNK], strict=True
            )
            if not all(type(i) is bytes for i in inputs):  # records from another caller
                inputs = tuple(i if type(i) is bytes else orjson.dumps(i) for i in inputs)
            ns = (np.asarray(ts, dtype=np.float64) * 1e9).astype(np.int64)
            for out, values, kind in zip(
                chunks, (rid, ns, version, arm, probs, inputs), _TYPES, strict=True
            ):
                out.append(pa.array(values, kind))
            time.sleep(0)  # let the serving thread in
        columns = zip(_COLUMNS, chunks, _TYPES, strict=True)
        return pa.table({c: pa.chunked_array(ch, t) for c, ch, t in columns})

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer and write what is left (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout)
        self.flush()
        self.sink.close()

    @property
    def pending(self) -> int:
        return self._pending_rows + len(self._outcomes)


def _warm_up() -> None:
    """Import pyarrow and build and encode one frame of each kind (the first costs about a
    second: imports, time zones, kernels), before any answer waits on it."""
    global _TYPES
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    if not _TYPES:
        _TYPES = (pa.string(), pa.timestamp("ns", tz="UTC"), pa.string(), pa.string(),
                  pa.binary(), pa.binary())  # fmt: skip
    entry = ("warm-up", time.time(), "0", "warm-up", b"[]", b"[]", 0)
    for frame in (PredictionLog._prediction_frame([entry]), outcome_frame([("w", 0, "w", 0.0)])):
        pq.write_table(frame, io.BytesIO())


def _size(kind: str, items: list[Any]) -> int:
    return sum(e[6] for e in items) if kind == "predictions" else len(items)


def _raw(value: Any) -> Any:
    return orjson.Fragment(value) if type(value) is bytes else value


def _entry_json(kind: str, item: Any) -> dict[str, Any]:
    if kind == "predictions":
        rid, ts, version, arm, records, proba, _ = item
        return {"kind": kind, "request_id": rid, "ts": ts, "model_version": version,
                "arm": arm, "inputs": _raw(records), "probabilities": _raw(proba)}  # fmt: skip
    rid, row, label, ts = item
    return {"kind": kind, "request_id": rid, "row": row, "label": label, "ts": ts}


def outcome_frame(outcomes: Sequence[tuple[str, int, str, float]]) -> Any:
    import pyarrow as pa

    rid, row, label, ts = zip(*outcomes, strict=True) if outcomes else ((), (), (), ())
    ns = (np.asarray(ts, dtype=np.float64) * 1e9).astype(np.int64)
    return pa.table(
        {
            "request_id": pa.array(rid, pa.string()),
            "row": pa.array(np.asarray(row, dtype="int32")),
            "label": pa.array(label, pa.string()),
            "ts": pa.array(ns, pa.timestamp("ns", tz="UTC")),
        }
    )
