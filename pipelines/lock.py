"""The workspace lock: one night at a time in a workspace, whoever runs it.

A lock file on the workspace's data folder (``Paths.lock``), held with ``flock`` through
``filelock``: the CLI, ``dvc repro`` and Airflow workers on any machine that mounts the same
workspace volume exclude each other, and a killed holder releases it with its process. Beside
it, ``<lock>.holder`` says who holds it, for the refusal message.

The night's stage processes (``dvc repro`` and the stages it starts) run in a process group of
their own (:func:`run_in_group`), written to ``<lock>.stages`` while they run: the holder ends
that group before it lets the lock go, and whoever takes the lock next ends a group a killed
holder left behind (same host and boot only: a group elsewhere cannot be seen, so the taker
refuses to start beside it while that file says one may still run).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from pipelines.config import Params

_held: list[Path] = []  # the ``<lock>.stages`` file of the lock this process holds, if any


class NightBusyError(RuntimeError):
    """Another night holds the workspace lock."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _alive(pgid: int) -> bool:
    """A process of the group still runs (zombies, which nobody may reap yet, do not count)."""
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            try:
                state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, ValueError):
                continue
            if int(pgrp) == pgid and state != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_group(pgid: int, grace: float = 5.0, leader: subprocess.Popen[str] | None = None) -> bool:
    """End a process group: SIGTERM, then SIGKILL after ``grace`` seconds. True when it is gone.
    ``leader``: the group's first process when it is our child (reaped here, else it would
    stay in the group as a zombie)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if leader is not None:
                leader.poll()
            if not _alive(pgid):
                return True
            time.sleep(0.05)
    return not _alive(pgid)


def _end_stale_stages(stages: Path) -> str | None:
    """End the stage group a killed holder left (``<lock>.stages``); a line saying what was
    done, or None when there was none. Raises NightBusyError when it may run where it cannot
    be ended (another host, or it would not die)."""
    if not stages.is_file():
        return None
    try:
        info: dict[str, Any] = json.loads(stages.read_text())
        pgid = int(info["pgid"])
    except (ValueError, KeyError, TypeError):
        stages.unlink(missing_ok=True)
        return None
    here = info.get("host") == socket.gethostname() and info.get("boot") == _boot_id()
    if not here:
        raise NightBusyError(
            f"the last night's stage processes (process group {pgid} on {info.get('host')}, "
            f"{stages}) may still run on another host or boot; end them there and delete "
            f"{stages}, then start again"
        )
    alive = _alive(pgid)
    if alive and not end_group(pgid):
        raise NightBusyError(
            f"the last night's stage processes (process group {pgid}) would not end; "
            "not starting beside them"
        )
    stages.unlink(missing_ok=True)
    if not alive:
        return None
    return f"ended process group {pgid} left running by a killed night ({info.get('cmd')})"


def run_in_group(
    cmd: Sequence[str], *, capture: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a process group of its own and wait for it; the whole group (its
    children too) is ended when this returns or is interrupted. Under :func:`night_lock` the
    group is written to ``<lock>.stages``, so a taker after a killed holder can end it."""
    out = subprocess.PIPE if capture else None
    proc = subprocess.Popen(
        list(cmd), text=True, stdout=out, stderr=out, start_new_session=True, **kwargs
    )
    stages = _held[-1] if _held else None
    if stages is not None:
        info = {
            "pgid": proc.pid,
            "host": socket.gethostname(),
            "boot": _boot_id(),
            "cmd": " ".join(cmd[1:4]),
        }
        stages.write_text(json.dumps(info) + "\n")
    try:
        stdout, stderr = proc.communicate()
    finally:
        end_group(proc.pid, leader=proc)  # a stage's own children; everything on an interrupt
        proc.wait()
        if stages is not None:
            stages.unlink(missing_ok=True)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def night_lock(params: Params, timeout: float | None = None) -> Iterator[None]:
    """Hold the workspace for one night; refuse (after ``nightly.lock_timeout_seconds``, 0: at
    once) with a message naming the holder when another night has it."""
    path = params.paths.lock
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = path.with_name(path.name + ".holder")
    stages = path.with_name(path.name + ".stages")
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
    # SIGTERM (a stopped task, `kill`) unwinds like an exception, so the stages end first
    main = sys.platform != "win32" and _is_main_thread()
    old = signal.getsignal(signal.SIGTERM) if main else None
    if main and old == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        note = _end_stale_stages(stages)
        if note:
            print(f"retrain: {note}", file=sys.stderr)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        holder.write_text(f"pid {os.getpid()} on {socket.gethostname()} since {since}\n")
        _held.append(stages)
        try:
            yield
        finally:
            _held.remove(stages)
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
        if main and old == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
