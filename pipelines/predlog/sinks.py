"""The prediction log's storage: where rows go and in which shape (the writer and the readers
both go through here, so they cannot drift apart).

A folder (the local default): Parquet parts under ``predictions/<YYYY-MM-DDTHH>/`` and
``feedback/<YYYY-MM-DDTHH>/``, rolled by hour (when the hour turns, a process merges its parts
of the closed hour into one file; rows the writer could not store go to ``dead-letter/``,
:func:`dead_letter_folder`); or PostgreSQL (a ``postgresql://`` URL: tables
``retrain_predictions`` and ``retrain_feedback``, created when missing, inputs as JSONB).

Stored is one row per *request* (:data:`STORED`): the meta data, and the probabilities and the
records as JSON. The serving image carries this module: pandas, pyarrow and psycopg2 are
imported only when a sink writes or reads.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.settings import mask_url

log = logging.getLogger("pipelines.predlog")

META = ["request_id", "row", "ts", "model_version", "arm", "probability"]
STORED = ["request_id", "ts", "model_version", "arm", "probabilities", "inputs"]
FEEDBACK = ["request_id", "row", "label", "ts"]
_HOUR = "%Y-%m-%dT%H"
_NUMPY = 0x10  # orjson.OPT_SERIALIZE_NUMPY (orjson is imported by the writer thread only)


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
        # (nanoseconds whatever unit the frame holds: `retrain labels` stamps microseconds)
        ts = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("ns")
        hours = ts.astype("int64") // 3_600_000_000_000
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
    """Whole or not at all (a full disk leaves no part file behind: :mod:`pipelines.files`)."""
    from pipelines.files import write_atomic

    write_atomic(dst, lambda tmp: frame.to_parquet(tmp, index=False))


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
