"""Fixtures shared by the integration tests: the container engine (podman or docker), or a skip
that says why there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.airflow_servers import MLFLOW_UI, Deployment

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


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Airflow's schema on PostgreSQL, migrated once per session; every deployment's database
    is a copy of it."""
    from tests.support.airflow_servers import migrated_template

    with migrated_template(tmp_path_factory.mktemp("airflow_template")) as name:
        yield name


@pytest.fixture(scope="session")
def local_airflow(
    airflow_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One set of servers (api-server, scheduler, dag-processor; LocalExecutor on PostgreSQL)
    for the session: each test module switches it to a workspace of its own
    (:func:`tests.support.airflow_servers.use_workspace`) and waits for its runs to end."""
    from tests.support.airflow_servers import airflow_deployment, fresh_database
    from tests.support.nights import base_workspace

    base = base_workspace(tmp_path_factory)  # built once per session, before any server
    settings = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # how often the scheduler answers timed-out approvals with their defaults (15 s)
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "3",
        # the MLflow UI as a user's browser reaches it: the notes' and the buttons' links
        "RETRAIN_MLFLOW_UI_URL": MLFLOW_UI,
    }
    root = tmp_path_factory.mktemp("airflow_local")
    with fresh_database("airflow_local", template=airflow_template) as database:
        with airflow_deployment(
            root, base, database, settings, migrated=True, variable_in_env=False
        ) as dep:
            yield dep


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything in tests/integration starts real servers or processes: marked so, whether
    its module says it or not (``make test-fast`` leaves the marker out)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
