"""The workspace lock held across processes: a second night is refused, naming the holder, until
the holder dies (a killed night releases the workspace)."""

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
from pipelines.lock import NightBusyError, night_lock

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
