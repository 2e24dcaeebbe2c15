"""The prediction log's writer, on serving's hot path: every answer and every outcome fed back.

:meth:`PredictionLog.append` keeps references (one tuple in a list); a writer thread turns them
into rows (``orjson``: a few microseconds per request instead of a column conversion per
record, which measurably slowed the server; see the serving benchmark) and writes them to the
sink (:mod:`pipelines.predlog.sinks`) when ``flush_rows`` wait or every ``flush_seconds``.
:meth:`PredictionLog.close` writes what is left: serving calls it on shutdown, SIGTERM
included, so a stopped server loses nothing it answered.

Free of ``pipelines.config`` and of the readers: the serving image carries this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from pipelines.predlog.sinks import open_sink

log = logging.getLogger("pipelines.predlog")
_NUMPY = 0x10  # orjson.OPT_SERIALIZE_NUMPY (orjson is imported by the writer thread only)

# one pending answer: (request_id, time, version, arm, records, probabilities)
_Entry = tuple[str, float, str, str, Sequence[Any], Any]


# --------------------------------------------------------------------------- the writer
class PredictionLog:
    """Buffers answers and outcomes; a writer thread writes them to the sink."""

    def __init__(
        self,
        location: str,
        flush_rows: int = 100_000,
        flush_seconds: float = 1.0,
        max_pending: int = 5_000_000,
    ) -> None:
        self.location = location
        self.sink = open_sink(location)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending  # rows kept while the sink fails; then the oldest go
        self._pending: list[_Entry] = []
        self._pending_rows = 0
        self._outcomes: list[tuple[str, int, str, float]] = []
        self._lock = threading.Lock()  # append / swap: uncontended but for the swap
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._write_lock = threading.Lock()
        self.written = {"predictions": 0, "feedback": 0}  # records, outcomes
        self.failures = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)
        self._thread.start()

    # ---- hot path: references only
    def append(
        self, request_id: str, version: str, arm: str, records: Sequence[Any], proba: Any
    ) -> None:
        with self._lock:
            self._pending.append((request_id, time.time(), version, arm, records, proba))
            self._pending_rows += len(records)
        if self._pending_rows >= self.flush_rows:
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
        """Write everything pending now; returns the records and outcomes written. A write
        that fails keeps its rows for the next one. Thread-safe."""
        with self._write_lock:
            with self._lock:
                pending, self._pending = self._pending, []
                self._pending_rows = 0
                outcomes, self._outcomes = self._outcomes, []
            n = 0
            for kind, items in (("predictions", pending), ("feedback", outcomes)):
                if not items:
                    continue
                size = sum(len(e[4]) for e in pending) if kind == "predictions" else len(items)
                try:
                    frame = (
                        self._prediction_frame(pending)
                        if kind == "predictions"
                        else outcome_frame(outcomes)
                    )
                    self.sink.write(kind, frame)
                except Exception:  # noqa: BLE001 - keep them for the next try
                    self.failures += 1
                    log.exception("prediction log: writing %d %s rows failed", size, kind)
                    self._keep(kind, items, size)
                    continue
                self.written[kind] += size
                n += size
            return n

    def _keep(self, kind: str, items: list[Any], size: int) -> None:
        """Put rows that could not be written back in front; past ``max_pending`` the oldest
        are dropped (counted in ``dropped``) rather than the server running out of memory."""
        with self._lock:
            if kind == "predictions":
                self._pending[:0] = items
                self._pending_rows += size
                while self._pending_rows > self.max_pending and len(self._pending) > 1:
                    old = self._pending.pop(0)
                    self._pending_rows -= len(old[4])
                    self.dropped += len(old[4])
            else:
                self._outcomes[:0] = items
                extra = len(self._outcomes) - self.max_pending
                if extra > 0:
                    del self._outcomes[:extra]
                    self.dropped += extra

    def _prediction_frame(self, pending: list[_Entry]) -> Any:
        """One row per request: meta, probabilities (a list), records (JSON bytes)."""
        import numpy as np
        import orjson
        import pandas as pd

        return pd.DataFrame(
            {
                "request_id": [e[0] for e in pending],
                "ts": pd.to_datetime(np.asarray([e[1] for e in pending]), unit="s", utc=True),
                "model_version": [e[2] for e in pending],
                "arm": [e[3] for e in pending],
                "probabilities": [
                    orjson.dumps(np.ascontiguousarray(e[5], dtype=float), option=_NUMPY)
                    for e in pending
                ],
                "inputs": [orjson.dumps(e[4]) for e in pending],
            }
        )

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


def outcome_frame(outcomes: Sequence[tuple[str, int, str, float]]) -> Any:
    import numpy as np
    import pandas as pd

    rid, row, label, ts = zip(*outcomes, strict=True) if outcomes else ((), (), (), ())
    return pd.DataFrame(
        {
            "request_id": list(rid),
            "row": np.asarray(row, dtype="int32"),
            "label": list(label),
            "ts": pd.to_datetime(np.asarray(ts, dtype=float), unit="s", utc=True),
        }
    )
