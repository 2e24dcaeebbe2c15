"""The prediction log: every answer serving gives, and every outcome fed back later.

The readers give one row per answered record: ``request_id, row, ts, model_version, arm,
probability`` and then the features as they arrived (``row`` is the record's index in its
request; ``arm`` is ``champion``, ``canary`` or ``shadow``, the mirrored answer nobody received).
An outcome row is ``request_id, row, label, ts``: the true label, known later.

Stored is one row per *request*: the meta data, and the probabilities and the records as JSON
(``orjson`` in the writer thread): a few microseconds per request instead of a column
conversion per record, which measurably slowed the server (see the serving benchmark).

Writing stays off the hot path: :meth:`PredictionLog.append` keeps references (one tuple in a
list); a writer thread turns them into rows and writes them when ``flush_rows`` wait or every
``flush_seconds``. :meth:`PredictionLog.close` writes what is left: serving calls it on
shutdown, SIGTERM included, so a stopped server loses nothing it answered.

Where: a folder (the local default): Parquet parts under ``predictions/<YYYY-MM-DDTHH>/`` and
``feedback/<YYYY-MM-DDTHH>/``, rolled by hour (when the hour turns, a process merges its parts
of the closed hour into one file); or PostgreSQL (a ``postgresql://`` URL: tables
``retrain_predictions`` and ``retrain_feedback``, created when missing, inputs as JSONB).

The module is over 400 lines on purpose: the writer, both sinks and their readers are one
storage format, kept in one place so they cannot drift apart.

Deliberately free of ``pipelines.config``: the serving image carries this module, and pandas
(plus pyarrow or psycopg2 for the sink in use) is imported only by the writer and readers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("pipelines.serve")

META = ["request_id", "row", "ts", "model_version", "arm", "probability"]
STORED = ["request_id", "ts", "model_version", "arm", "probabilities", "inputs"]
FEEDBACK = ["request_id", "row", "label", "ts"]
_HOUR = "%Y-%m-%dT%H"
_NUMPY = 0x10  # orjson.OPT_SERIALIZE_NUMPY (orjson is imported by the writer thread only)

# one pending answer: (request_id, time, version, arm, records, probabilities)
_Entry = tuple[str, float, str, str, Sequence[Any], Any]


class LogError(ValueError):
    """A prediction log location that cannot be used; the message names it."""


def is_url(location: str) -> bool:
    return "://" in location


# --------------------------------------------------------------------------- sinks
class FolderSink:
    """Parquet parts per hour: ``<folder>/<kind>/<YYYY-MM-DDTHH>/part-<pid>-<n>.parquet``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._seq = 0
        self._token = f"{os.getpid()}-{os.urandom(3).hex()}"  # pids recur (containers, CLIs)
        self._hours: dict[str, set[str]] = {"predictions": set(), "feedback": set()}

    def write(self, kind: str, frame: Any) -> None:
        import pandas as pd

        # whole hours since the epoch: integer math, a string only per distinct hour
        hours = pd.to_datetime(frame["ts"], utc=True).astype("int64") // 3_600_000_000_000
        distinct = sorted(set(hours.tolist()))
        for h in distinct:
            part = frame if len(distinct) == 1 else frame[hours.to_numpy() == h]
            hour = datetime.fromtimestamp(h * 3600, UTC).strftime(_HOUR)
            self._seq += 1
            dst = self.folder / kind / hour / f"part-{self._token}-{self._seq:06d}.parquet"
            _write_parquet(part, dst)
            self._hours[kind].add(hour)
        self.roll(kind)

    def roll(self, kind: str, now: float | None = None) -> None:
        """Merge this process's parts of every closed hour into one file per hour."""
        current = datetime.fromtimestamp(now or time.time(), UTC).strftime(_HOUR)
        for hour in sorted(h for h in self._hours[kind] if h < current):
            self._merge(self.folder / kind / hour)
            self._hours[kind].discard(hour)

    def close(self) -> None:
        for kind in self._hours:
            self.roll(kind, now=time.time() + 366 * 86400)  # every hour counts as closed

    def _merge(self, hour_dir: Path) -> None:
        import pandas as pd

        parts = sorted(hour_dir.glob(f"part-{self._token}-*.parquet"))
        if len(parts) < 2:
            return
        merged = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        _write_parquet(merged, hour_dir / f"hour-{self._token}-{int(time.time() * 1e3)}.parquet")
        for p in parts:  # readers drop the duplicates they may see for a moment
            p.unlink(missing_ok=True)


def _write_parquet(frame: Any, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, dst)


class PostgresSink:
    """Tables ``retrain_predictions`` (inputs as JSONB) and ``retrain_feedback``."""

    DDL = (
        "CREATE TABLE IF NOT EXISTS retrain_predictions (request_id text NOT NULL, "
        "ts timestamptz NOT NULL, model_version text, arm text NOT NULL, "
        "probabilities double precision[] NOT NULL, inputs jsonb NOT NULL);"
        "CREATE INDEX IF NOT EXISTS retrain_predictions_ts ON retrain_predictions (ts);"
        "CREATE INDEX IF NOT EXISTS retrain_predictions_id ON retrain_predictions (request_id);"
        "CREATE TABLE IF NOT EXISTS retrain_feedback (request_id text NOT NULL, row integer "
        "NOT NULL, label text NOT NULL, ts timestamptz NOT NULL);"
    )

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+psycopg2://", "postgresql://")
        self._conn: Any = None

    def connect(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg2

            self._conn = psycopg2.connect(self.url)
            with self._conn, self._conn.cursor() as cur:
                cur.execute(self.DDL)
        return self._conn

    def write(self, kind: str, frame: Any) -> None:
        import orjson
        from psycopg2.extras import execute_values

        conn = self.connect()
        if kind == "predictions":
            rows: Iterable[tuple[Any, ...]] = (
                (r, t.to_pydatetime(warn=False), v, a, orjson.loads(p), j.decode())
                for r, t, v, a, p, j in frame[STORED].itertuples(index=False, name=None)
            )
            sql = "INSERT INTO retrain_predictions VALUES %s"
        else:
            rows = (
                (r, int(i), lab, t.to_pydatetime(warn=False))
                for r, i, lab, t in frame[FEEDBACK].itertuples(index=False, name=None)
            )
            sql = "INSERT INTO retrain_feedback VALUES %s"
        with conn, conn.cursor() as cur:
            execute_values(cur, sql, list(rows), page_size=1000)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def open_sink(location: str) -> FolderSink | PostgresSink:
    if location.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
        return PostgresSink(location.replace("postgres://", "postgresql://", 1))
    if is_url(location):
        raise LogError(
            f"prediction log: unsupported location {location!r} (a folder or postgresql://)"
        )
    return FolderSink(location)


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


# --------------------------------------------------------------------------- reading
def _location(params: Any) -> str:
    return str(params.prediction_log)


def _features(params: Any) -> list[str]:
    f = params.dataset.features
    return [*f.numeric, *f.categorical]


def read_predictions(params: Any, since: datetime | None = None) -> Any:
    """Logged answers since ``since`` (UTC), oldest first, one column per feature."""
    import pandas as pd

    frame = _read(_location(params), "predictions", since)
    feats = _features(params)
    if frame is None or frame.empty:
        return pd.DataFrame(columns=[*META, *feats])
    return explode(frame, feats, params.dataset.features.numeric)


def explode(stored: Any, features: Sequence[str], numeric: Sequence[str] = ()) -> Any:
    """Stored requests -> one row per answered record, features as columns."""
    import numpy as np
    import orjson
    import pandas as pd

    records = [orjson.loads(j) if isinstance(j, bytes | str) else j for j in stored["inputs"]]
    sizes = np.fromiter((len(r) for r in records), dtype=int, count=len(records))
    probs = [
        np.asarray(orjson.loads(p) if isinstance(p, bytes | str) else p, dtype=float).reshape(-1)[
            :k
        ]
        for p, k in zip(stored["probabilities"], sizes, strict=True)
    ]
    meta = pd.DataFrame(
        {
            "request_id": np.repeat(stored["request_id"].to_numpy(), sizes),
            "row": np.concatenate([np.arange(k, dtype="int32") for k in sizes]),
            "ts": np.repeat(stored["ts"].to_numpy(), sizes),
            "model_version": np.repeat(stored["model_version"].to_numpy(), sizes),
            "arm": np.repeat(stored["arm"].to_numpy(), sizes),
            "probability": np.concatenate(probs),
        }
    )
    meta["ts"] = pd.to_datetime(meta["ts"], utc=True)
    inputs = pd.DataFrame.from_records([r for rs in records for r in rs], columns=list(features))
    for c in numeric:
        inputs[c] = pd.to_numeric(inputs[c], errors="coerce").astype("float64")
    return pd.concat([meta, inputs], axis=1)


def read_feedback(params: Any, since: datetime | None = None) -> Any:
    """Outcomes fed back (``request_id, row, label, ts``); the latest per prediction wins."""
    import pandas as pd

    frame = _read(_location(params), "feedback", since)
    if frame is None:
        return pd.DataFrame(columns=FEEDBACK)
    frame = frame.sort_values("ts", kind="stable")
    return frame.drop_duplicates(["request_id", "row"], keep="last").reset_index(drop=True)


def joined(params: Any, since: datetime | None = None) -> Any:
    """Answers that have an outcome, with its ``label`` (and ``label_ts``)."""
    preds = read_predictions(params, since)
    fb = read_feedback(params).rename(columns={"ts": "label_ts"})
    return preds.merge(fb, on=["request_id", "row"], how="inner")


def record_outcomes(params: Any, frame: Any) -> int:
    """Append outcomes (``request_id``, optional ``row``, ``label``) to the log now."""
    out = frame.copy()
    if "row" not in out.columns:
        out["row"] = 0
    out["ts"] = datetime.now(UTC)
    out = out[FEEDBACK].astype({"request_id": str, "row": "int32", "label": str})
    if len(out):
        sink = open_sink(_location(params))
        try:
            sink.write("feedback", out)
        finally:
            sink.close()
    return len(out)


def _read(location: str, kind: str, since: datetime | None) -> Any:
    import pandas as pd

    if is_url(location):
        return _read_sql(location, kind, since)
    root = Path(location) / kind
    if not root.is_dir():
        return None
    first = since.astimezone(UTC).strftime(_HOUR) if since else ""
    files = [
        f
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name >= first
        for f in sorted(d.glob("*.parquet"))
    ]
    parts = []
    for f in files:
        try:
            parts.append(pd.read_parquet(f))
        except FileNotFoundError:  # merged away while listing: its rows are in the merged file
            continue
    if not parts:
        return None
    frame = pd.concat(parts, ignore_index=True)
    # the same stored row twice only while an hour is being merged (same id, arm and time)
    key = ["request_id", "arm", "ts"] if kind == "predictions" else ["request_id", "row", "ts"]
    frame = frame.drop_duplicates(key)
    if since is not None:
        frame = frame[frame["ts"] >= pd.Timestamp(since).tz_convert("UTC")]
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _read_sql(location: str, kind: str, since: datetime | None) -> Any:
    import pandas as pd

    sink = open_sink(location)
    assert isinstance(sink, PostgresSink)
    conn = sink.connect()
    table = "retrain_predictions" if kind == "predictions" else "retrain_feedback"
    cols = ", ".join(STORED if kind == "predictions" else FEEDBACK)
    sql = f"SELECT {cols} FROM {table}" + (" WHERE ts >= %s" if since else "") + " ORDER BY ts"
    try:
        with conn.cursor() as cur:
            cur.execute(sql, (since,) if since else None)
            rows = cur.fetchall()
    finally:
        sink.close()
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=FEEDBACK if kind == "feedback" else STORED)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame
