"""The prediction log read back, for the monitor, the canary decision and the outcomes landed.

The readers give one row per answered record, whatever shape its request came in (records or
columns): ``request_id, row, ts, model_version, arm, probability`` and then the features as
they arrived (``row`` is the record's index in its request; ``arm`` is ``champion``,
``canary`` or ``shadow``, the mirrored answer nobody received). An outcome row is
``request_id, row, label, ts``: the true label, known later.

Never in the serving image (:mod:`pipelines.predlog.writer` is what serving needs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.predlog.sinks import (
    _HOUR,
    FEEDBACK,
    META,
    STORED,
    PostgresSink,
    as_records,
    is_url,
    open_sink,
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

    records = [
        as_records(orjson.loads(j) if isinstance(j, bytes | str) else j) for j in stored["inputs"]
    ]
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
    """Outcomes fed back (``request_id, row, label, ts``) since ``since``; the latest per
    prediction wins."""
    import pandas as pd

    frame = _read(_location(params), "feedback", since)
    if frame is None:
        return pd.DataFrame(columns=FEEDBACK)
    frame = frame.sort_values("ts", kind="stable")
    return frame.drop_duplicates(["request_id", "row"], keep="last").reset_index(drop=True)


def join(predictions: Any, feedback: Any) -> Any:
    """Answers that have an outcome, with its ``label`` (and ``label_ts``)."""
    fb = feedback.rename(columns={"ts": "label_ts"})
    return predictions.merge(fb, on=["request_id", "row"], how="inner")


def read_span(params: Any, since: datetime) -> tuple[Any, Any]:
    """The answers logged since ``since`` and the outcomes fed back since then (an outcome
    comes after its answer): one read of each, bounded by ``since``, not by the history."""
    return read_predictions(params, since), read_feedback(params, since)


def joined(params: Any, since: datetime | None = None) -> Any:
    """Answers since ``since`` that have an outcome, with its ``label`` (and ``label_ts``)."""
    return (
        join(*read_span(params, since))
        if since
        else join(read_predictions(params), read_feedback(params))
    )


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
