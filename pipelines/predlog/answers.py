"""Answers any serving replica gave, found in the shared prediction log.

Each serving process remembers its own recent answers (:mod:`pipelines.serve.feedback`), so
behind a balancer an outcome often reaches a replica that did not give the answer. When the
prediction log is PostgreSQL (the stack's), such a replica looks the request ids up there: an
answer logged within ``ttl`` (not a probe) is learned with its row count, its time and the
labels already fed back for it, and then judged by the same rules as its own answers (unknown,
expired, row out of range, a conflicting label). An answer still waiting in another replica's
writer (``serve.flush_seconds``) is not found yet: the client is told the id is unknown and may
send it again. A lookup that fails (the database down) finds nothing and is logged; it never
takes an outcome without its answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pipelines.predlog.sinks import PostgresSink

log = logging.getLogger("pipelines.predlog")


@dataclass(frozen=True)
class Answer:
    rows: int
    answered_at: float  # seconds since the epoch
    labels: dict[int, str] = field(default_factory=dict)  # outcomes already fed back


class SharedAnswers:
    """Looks request ids up in a PostgreSQL prediction log (one connection, reused)."""

    def __init__(self, url: str) -> None:
        self.sink = PostgresSink(url)

    def lookup(self, ids: list[str], ttl_seconds: float) -> dict[str, Answer]:
        if not ids:
            return {}
        since = time.time() - ttl_seconds
        try:
            conn = self.sink.connect()
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT request_id, max(cardinality(probabilities)), "
                    "max(extract(epoch FROM ts)) FROM retrain_predictions "
                    "WHERE request_id = ANY(%s) AND arm <> 'probe' "
                    "AND ts >= to_timestamp(%s) GROUP BY request_id",
                    (list(ids), since),
                )
                found = {str(r): Answer(int(n), float(t)) for r, n, t in cur.fetchall()}
                if found:
                    cur.execute(
                        "SELECT request_id, row, label FROM retrain_feedback "
                        "WHERE request_id = ANY(%s) ORDER BY ts",
                        (list(found),),
                    )
                    for r, row, label in cur.fetchall():
                        found[str(r)].labels[int(row)] = str(label)  # the latest wins
            conn.rollback()  # read only: end the transaction
            return found
        except Exception as err:  # noqa: BLE001 - a lookup that fails finds nothing
            log.warning("feedback: looking answers up in the shared log failed: %s", err)
            self.sink.close()
            return {}

    def close(self) -> None:
        self.sink.close()
