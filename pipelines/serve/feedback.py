"""Which outcomes ``POST /feedback`` takes: only for answers this server gave, recently.

:class:`RecentAnswers` is a bounded record of the last ``size`` answered request ids (none
older than ``ttl_seconds``), each with its number of rows and the labels already fed back.
An outcome for an id it does not hold (never answered here, pushed out by newer requests,
too old, or answered before a restart) or for a row beyond that answer's rows is refused; a
second, different label for the same row is a conflict (``relabel="reject"``) or an
audited correction (``relabel="correct"``: logged, and the latest label wins). The check of a
whole body comes first, then it is applied: a refused body changes nothing.

Recording an answer is one dict insert (and, when full, one eviction): about a microsecond on
the prediction path. Answers and outcomes are both handled on the server's event loop, one at
a time: no lock. Standard library only: the serving image carries it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from pipelines.serve.inputs import InputError

Relabel = Literal["reject", "correct"]


@dataclass(frozen=True)
class FeedbackPolicy:
    """``serve.feedback`` in params.yaml, as plain data (the image has no pydantic)."""

    memory: int = 200_000  # answered request ids remembered
    ttl_seconds: float = 86_400.0  # ... for at most this long
    relabel: Relabel = "reject"


class Conflict(InputError):
    """A different label for an answer that already has one (HTTP 409)."""


class RecentAnswers:
    """Request id -> (rows, answered at), least recent out first; the labels fed back by id
    and row beside it (only for the ids that have one)."""

    def __init__(self, policy: FeedbackPolicy | None = None) -> None:
        self.policy = policy or FeedbackPolicy()
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._labels: dict[str, dict[int, str]] = {}

    def record(self, request_id: str, rows: int, now: float) -> None:
        """An answer given (the hot path): remember its id and row count."""
        seen = self._seen
        old = seen.get(request_id)
        if old is None:
            seen[request_id] = (rows, now)
            if len(seen) > self.policy.memory:
                gone, _ = seen.popitem(last=False)
                if self._labels:
                    self._labels.pop(gone, None)
        else:  # the same X-Request-ID again (a retry): it keeps its labels
            seen[request_id] = (max(rows, old[0]), now)
            seen.move_to_end(request_id)

    def accept(
        self, outcomes: list[tuple[str, int, str]], now: float | None = None
    ) -> list[tuple[str, int, str]]:
        """The outcomes to log (a repeat of a known label is left out); raises
        :class:`InputError` (unknown id, row out of range) or :class:`Conflict`, naming the
        outcome and the field, before anything is applied."""
        now = time.time() if now is None else now
        ttl = self.policy.ttl_seconds
        fresh: dict[tuple[str, int], str] = {}
        for i, (rid, row, label) in enumerate(outcomes):
            known = self._seen.get(rid)
            if known is None or now - known[1] > ttl:
                state = "unknown" if known is None else "expired"
                raise InputError(
                    f"outcome {i}: request_id {rid!r} is {state} here: outcomes are taken "
                    f"for the last {self.policy.memory:,} answers of this server, up to "
                    f"{ttl / 3600:g} h after the answer",
                    "request_id",
                    f"{state}_request",
                )
            rows = known[0]
            if row >= rows:
                raise InputError(
                    f"outcome {i}: row {row} is outside request {rid!r}, which had {rows} row(s)",
                    "row",
                    "row_out_of_range",
                )
            before = fresh.get((rid, row), self._labels.get(rid, {}).get(row))
            if before is not None and before != label:
                if self.policy.relabel == "reject":
                    raise Conflict(
                        f"outcome {i}: request {rid!r} row {row} already has the label "
                        f"{before!r}; a different one is refused",
                        "label",
                        "conflict",
                    )
            if before != label:
                fresh[(rid, row)] = label
        for (rid, row), label in fresh.items():
            self._labels.setdefault(rid, {})[row] = label
        return [(rid, row, label) for (rid, row), label in fresh.items()]

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._seen

    def learn(self, request_id: str, rows: int, answered_at: float, labels: dict[int, str]) -> None:
        """An answer another replica gave (found in the shared log), with the labels it has."""
        if request_id in self._seen:
            return
        self.record(request_id, rows, answered_at)
        if labels:
            self._labels[request_id] = dict(labels)
