"""docker-compose.yml, the server path: it is a valid compose file, everything it builds from or
mounts exists, its commands and flags exist in the pinned Airflow and MLflow, and every project
setting it passes is one the code reads."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _command(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_compose_validates() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose (Debian package) not installed")
    proc = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr


def test_build_files_and_mounts_exist(compose: dict) -> None:
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: {src}"


def test_dag_folder_is_the_mounted_repository(compose: dict) -> None:
    for name in ("airflow-scheduler", "airflow-dag-processor"):
        svc = compose["services"][name]
        folder = svc["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert mounts.get("/workspace") == "."
        assert (ROOT / Path(folder).relative_to("/workspace") / "retrain_nightly.py").is_file()


def test_project_settings_are_read_by_the_code(compose: dict) -> None:
    code = "\n".join(p.read_text() for d in ("pipelines", "dags") for p in (ROOT / d).rglob("*.py"))
    env = compose["services"]["airflow-scheduler"]["environment"]
    for key in env:
        if key.startswith(("RETRAIN_", "MLFLOW_")):
            assert f'"{key}"' in code, f"{key} is set in docker-compose.yml but read nowhere"


def test_commands_and_flags_exist_in_the_pinned_tools(compose: dict) -> None:
    for name, svc in compose["services"].items():
        cmd = _command(svc)
        if not cmd or cmd[0] not in ("airflow", "mlflow"):
            continue
        words = [w for w in cmd[1:] if not w.startswith("-")][:2]
        sub = [w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)]
        sub = sub[:2] if cmd[0] == "airflow" and sub[0] == "db" else sub[:1]
        proc = subprocess.run(
            [str(BIN / cmd[0]), *sub, "--help"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{name}: {' '.join(cmd[:3])}: {proc.stderr[-500:]}"
        for flag in (w for w in cmd if w.startswith("--")):
            assert flag in proc.stdout, f"{name}: {flag} unknown to {cmd[0]} {' '.join(sub)}"
