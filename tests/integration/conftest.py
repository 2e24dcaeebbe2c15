"""Fixtures shared by the integration tests: the container engine (podman or docker), or a skip
that says why there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def container_engine() -> str:
    """podman (installed by scripts/install-podman.sh when missing), or docker with a daemon."""
    from pipelines.release.deploy import detect_engine

    tools = ("podman", "nginx", "debootstrap")
    if not all(shutil.which(t) or Path(f"/usr/sbin/{t}").exists() for t in tools):
        can_install = os.geteuid() == 0 or shutil.which("sudo")
        if can_install:
            proc = subprocess.run(
                ["bash", str(ROOT / "scripts" / "install-podman.sh")],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if proc.returncode != 0:
                pytest.skip(f"scripts/install-podman.sh failed: {proc.stderr.strip()[-300:]}")
    engine = detect_engine("auto")
    if engine is None:
        pytest.skip("no container engine: podman missing and scripts/install-podman.sh not run")
    return engine
