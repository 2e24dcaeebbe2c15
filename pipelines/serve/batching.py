"""The micro-batcher: every request queued in one event-loop turn is scored with one model call.

Concurrent single-record requests so share the per-call cost (building the matrix, the tree
lookup). A small batch is scored on the event loop: tens of microseconds. A batch of at least
``thread_rows`` rows whose scorer walks its trees in compiled code that releases the GIL (the
compiled walk, :mod:`pipelines.serve.treewalk`) is scored on one worker thread instead, so the
loop reads, checks and encodes the next requests on the other core meanwhile. Batches keep
their order: one worker thread, first in first out.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.serve.metrics import ServingMetrics
    from pipelines.serve.model import LoadedModel

_Item = tuple["LoadedModel", Any, int, "asyncio.Future[Any]"]
THREAD_ROWS = 32  # rows in one model call from which it is scored off the event loop


class MicroBatcher:
    """Queues encoded requests; scores them per model at the end of the event-loop turn."""

    def __init__(self, metrics: ServingMetrics, thread_rows: int | None = THREAD_ROWS) -> None:
        self.metrics = metrics
        self.thread_rows = thread_rows  # None: every batch on the event loop
        self._pending: list[_Item] = []
        self._scheduled = False
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, model: LoadedModel, X: Any, n: int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((model, X, n, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        self._scheduled = False
        # normally one model; during a swap, requests encoded for each model stay with it
        by_model: dict[int, list[_Item]] = {}
        for item in pending:
            by_model.setdefault(id(item[0]), []).append(item)
        for items in by_model.values():
            if self._off_loop(items):
                self._score_in_thread(items)
            else:
                self._resolve(items, *self._score(items))

    def _off_loop(self, items: list[_Item]) -> bool:
        if self.thread_rows is None or sum(it[2] for it in items) < self.thread_rows:
            return False
        return bool(getattr(items[0][0].scorer, "releases_gil", False))

    def _score_in_thread(self, items: list[_Item]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="score")
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._pool, self._score, items)
        done.add_done_callback(lambda f: self._resolve(items, *f.result()))

    def close(self) -> None:
        """Stop the worker thread (after the batches it holds)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    @staticmethod
    def _score(items: list[_Item]) -> tuple[Any, Exception | None]:
        sc = items[0][0].scorer
        try:
            return sc.predict_encoded(sc.concat([it[1] for it in items])), None
        except Exception as err:  # noqa: BLE001 - resolved per request below
            return None, err

    def _resolve(self, items: list[_Item], proba: Any, err: Exception | None) -> None:
        if err is not None:
            if len(items) > 1:  # score one by one, so one bad part fails alone
                for it in items:
                    self._resolve([it], *self._score([it]))
                return
            if not items[0][3].done():
                items[0][3].set_exception(err)
            return
        self.metrics.observe_batch(items[0][0].version, proba)
        start = 0
        for _, _, n, fut in items:
            if not fut.done():
                fut.set_result(proba[start : start + n])
            start += n
