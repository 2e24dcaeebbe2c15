"""The workspace lock held across processes: a second night is refused, naming the holder, until
the holder dies (a killed night releases the workspace); the night's stage processes never
outlive it beside a second night (stopped: it ends them; killed -9: the next taker does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipelines.config import Params, load_params
from pipelines.lock import NightBusyError, night_lock, run_in_group

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path: Path) -> Params:
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    return load_params(tmp_path / "params.yaml")


HOLD = textwrap.dedent(
    """
    import sys, time
    from pipelines.config import load_params
    from pipelines.lock import night_lock
    with night_lock(load_params(sys.argv[1])):
        print("held", flush=True)
        time.sleep(120)
    """
)


def _holder(ws: Params) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(ws.root / "params.yaml")],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_night_is_refused_naming_the_holder_until_the_holder_dies(ws):
    proc = _holder(ws)
    try:
        with pytest.raises(NightBusyError, match=rf"held by pid {proc.pid} on "):
            with night_lock(ws, timeout=0):
                pass
        os.killpg(proc.pid, signal.SIGKILL)  # a killed night releases the workspace
        proc.wait(timeout=30)
        t0 = time.monotonic()
        with night_lock(ws, timeout=10):
            assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


# A night-like holder: under the lock it runs a "stage" (like `dvc repro`) through the
# project's own runner; the stage starts a grandchild (like a training stage) and writes its pid.
STAGE = textwrap.dedent(
    """
    import subprocess, sys, time
    g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    open(sys.argv[1], "w").write(str(g.pid))
    time.sleep(120)
    """
)
NIGHT = textwrap.dedent(
    """
    import sys
    from pipelines.config import load_params
    from pipelines.lock import night_lock, run_in_group
    with night_lock(load_params(sys.argv[1])):
        print("held", flush=True)
        run_in_group([sys.executable, "-c", sys.argv[2], sys.argv[3]])
    """
)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _night_with_a_stage(ws: Params, tmp_path: Path) -> tuple[subprocess.Popen, int]:
    pidfile = tmp_path / "grandchild.pid"
    proc = subprocess.Popen(
        [sys.executable, "-c", NIGHT, str(ws.root / "params.yaml"), STAGE, str(pidfile)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    deadline = time.monotonic() + 30
    while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, int(pidfile.read_text())


def test_a_night_killed_9_leaves_no_stage_running_beside_the_next(ws, tmp_path, capfd):
    proc, grandchild = _night_with_a_stage(ws, tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)  # the night only: its stages are a group of their own
        proc.wait(timeout=30)
        time.sleep(0.5)
        assert _running(grandchild), "the stage should outlive a night killed -9 until the next"
        with night_lock(ws, timeout=10):
            assert not _running(grandchild)  # ended before the next night starts
            assert not ws.paths.lock.with_name(ws.paths.lock.name + ".stages").exists()
        assert "left running by a killed night" in capfd.readouterr().err
    finally:
        if _running(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_a_stopped_night_ends_its_stages_before_it_lets_the_lock_go(ws, tmp_path):
    proc, grandchild = _night_with_a_stage(ws, tmp_path)
    try:
        os.kill(proc.pid, signal.SIGTERM)  # a stopped task, `kill`
        proc.wait(timeout=30)
        assert not _running(grandchild)
        assert not ws.paths.lock.with_name(ws.paths.lock.name + ".stages").exists()
        with night_lock(ws, timeout=0):
            pass
    finally:
        if _running(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_a_stage_ends_with_its_children_and_its_answer(ws, tmp_path):
    out = run_in_group(
        [sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], capture=True
    )
    assert (out.returncode, out.stdout.strip()) == (3, "out")
