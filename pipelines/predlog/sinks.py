"""The prediction log's storage: where rows go and in which shape (the writer and the readers
both go through here, so they cannot drift apart).

A folder (the local default): Parquet parts under ``predictions/<YYYY-MM-DDTHH>/`` and
``feedback/<YYYY-MM-DDTHH>/``, rolled by hour (when the hour turns, a process merges its parts
of the closed hour into one file; rows the writer could not store go to ``dead-letter/``,
:func:`dead_letter_folder`); or PostgreSQL (a ``postgresql://`` URL: tables
``retrain_predictions`` and ``retrain_feedback``, created when missing, inputs as JSONB).

Stored is one row per *request* (:data:`STORED`): the meta data, the probabilities as JSON and
the inputs as the JSON the client sent (a list of records, or an object holding them:
``{"records": [...]}`` or ``{"columns": [...], "data": [...]}``; the readers turn each into
records, :func:`as_records`). A sink takes an Arrow table (the writer's) or a pandas frame; the
folder's Parquet is written and merged by pyarrow, without the GIL for the encoding and the
files. The serving image carries this module: pyarrow and psycopg2 are imported only when a
sink writes or reads.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.settings import mask_url

log = logging.getLogger("pipelines.predlog")

META = ["request_id", "row", "ts", "model_version", "arm", "probability"]
STORED = ["request_id", "ts", "model_version", "arm", "probabilities", "inputs"]
FEEDBACK = ["request_id", "row", "label", "ts"]
_HOUR = "%Y-%m-%dT%H"


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
        table = as_table(frame)
        # whole hours since the epoch: integer math, a string only per distinct hour
        # (nanoseconds whatever unit the frame holds: `retrain labels` stamps microseconds)
        hours = _epoch_ns(table) // 3_600_000_000_000
        distinct = np.unique(hours).tolist()
        for h in distinct:
            part = table if len(distinct) == 1 else table.filter(hours == h)
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
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = sorted(hour_dir.glob(f"part-{self._token}-*.parquet"))
        if len(parts) < 2:
            return
        merged = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive")
        _write_parquet(merged, hour_dir / f"hour-{self._token}-{int(time.time() * 1e3)}.parquet")
        for p in parts:  # readers drop the duplicates they may see for a moment
            p.unlink(missing_ok=True)


def as_table(frame: Any) -> Any:
    """An Arrow table: the writer's as it is, a pandas frame converted (``retrain labels``)."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    return pa.Table.from_pandas(frame, preserve_index=False)


def _epoch_ns(table: Any) -> np.ndarray:
    import pyarrow as pa

    ts = table.column("ts").cast(pa.timestamp("ns", tz="UTC"))
    return np.asarray(ts.cast(pa.int64()).to_numpy(), dtype=np.int64)


def _column(table: Any, name: str) -> list[Any]:
    import pyarrow as pa

    col = table.column(name)
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("us", tz="UTC"), safe=False)
    return col.to_pylist()  # type: ignore[no-any-return]


def _write_parquet(table: Any, dst: Path) -> None:
    """Whole or not at all (a full disk leaves no part file behind: :mod:`pipelines.files`)."""
    import pyarrow.parquet as pq

    from pipelines.files import write_atomic

    write_atomic(dst, lambda tmp: pq.write_table(table, tmp))


def as_records(inputs: Any) -> list[Any]:
    """One stored request's inputs (parsed JSON) as its records, whatever shape it came in."""
    if type(inputs) is dict:
        if "columns" in inputs:
            cols = inputs["columns"]
            return [dict(zip(cols, row, strict=True)) for row in inputs["data"]]
        return list(inputs["records"])
    return list(inputs)


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
        "CREATE INDEX IF NOT EXISTS retrain_feedback_id ON retrain_feedback (request_id);"
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
        table = as_table(frame)
        # microseconds, as PostgreSQL keeps them: plain datetimes
        cols = {c: _column(table, c) for c in table.column_names}
        if kind == "predictions":
            rows: Iterable[tuple[Any, ...]] = zip(
                cols["request_id"], cols["ts"], cols["model_version"], cols["arm"],
                [orjson.loads(p) for p in cols["probabilities"]],
                [j.decode() if isinstance(j, bytes) else j for j in cols["inputs"]],
                strict=True,
            )  # fmt: skip
            sql = "INSERT INTO retrain_predictions VALUES %s"
        else:
            rows = zip(
                cols["request_id"], [int(i) for i in cols["row"]], cols["label"], cols["ts"],
                strict=True,
            )  # fmt: skip
            sql = "INSERT INTO retrain_feedback VALUES %s"
        with conn, conn.cursor() as cur:
            execute_values(cur, sql, list(rows), page_size=1000)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def dead_letter_folder(location: str) -> Path | None:
    """Where a folder log keeps the rows its sink refused (JSON lines); None for a URL (serving
    then passes the workspace's log folder's, or ``RETRAIN_DEAD_LETTER``; else it logs them)."""
    return None if is_url(location) else Path(location) / "dead-letter"


def open_sink(location: str) -> FolderSink | PostgresSink:
    if location.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
        return PostgresSink(location.replace("postgres://", "postgresql://", 1))
    if is_url(location):
        raise LogError(
            f"prediction log: unsupported location {mask_url(location)!r} "
            "(a folder or postgresql://)"
        )
    return FolderSink(location)
