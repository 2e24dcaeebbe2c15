"""The workspace lock: one night at a time in a workspace, whoever runs it.

A lock file on the workspace's data folder (``Paths.lock``), held with ``flock`` through
``filelock``: the CLI, ``dvc repro`` and Airflow workers on any machine that mounts the same
workspace volume exclude each other, and a killed holder releases it with its process. Beside
it, ``<lock>.holder`` says who holds it, for the refusal message.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from filelock import FileLock, Timeout

from pipelines.config import Params


class NightBusyError(RuntimeError):
    """Another night holds the workspace lock."""


@contextmanager
def night_lock(params: Params, timeout: float | None = None) -> Iterator[None]:
    """Hold the workspace for one night; refuse (after ``nightly.lock_timeout_seconds``, 0: at
    once) with a message naming the holder when another night has it."""
    path = params.paths.lock
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = path.with_name(path.name + ".holder")
    wait = params.nightly.lock_timeout_seconds if timeout is None else timeout
    lock = FileLock(path, timeout=wait, poll_interval=0.5, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        who = holder.read_text().strip() if holder.is_file() else "unknown"
        raise NightBusyError(
            f"another night is running in {params.root} (lock {path}, held by {who or 'unknown'});"
            " not starting a second one"
        ) from None
    try:
        since = datetime.now(UTC).isoformat(timespec="seconds")
        holder.write_text(f"pid {os.getpid()} on {socket.gethostname()} since {since}\n")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
