"""Nights for the DAG and Airflow tests: the session's base workspace with a first champion
(built once, copied per test), the environment a deployment gives the DAG, and readers of what a
night left (its record, notifications, the registry)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
MIRROR = Path(os.environ.get("RETRAIN_DATASET_MIRROR") or ROOT.parent / "shared/datasets/adult")


def base_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with a first champion, built once per session (shared by the DAG tests
    and the Airflow integration test); never run in directly: copy it."""
    if not (MIRROR / "adult.data").is_file():
        pytest.skip(f"dataset mirror not present: {MIRROR}")
    base = tmp_path_factory.getbasetemp() / "retrain-base"
    project = base / "project"
    if (base / ".ready").is_file():
        return project
    if base.exists():
        shutil.rmtree(base)
    from pipelines.edges import dvc as workspace
    from tests.support.workspace import make_workspace

    # all put back after: other datasets' tests follow this one
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("RETRAIN_PARAMS", raising=False)
        mp.setenv("RETRAIN_DATASET_MIRROR", str(MIRROR))
        params = make_workspace(project)
        workspace.repro(params)  # the first champion, v1
    (base / ".ready").touch()
    return project


def copy_workspace(base: Path, dest: Path) -> Path:
    """A private copy of the base workspace (git, DVC cache and remote, MLflow SQLite)."""
    shutil.copytree(base, dest, symlinks=True)
    return dest


def night_env(home: Path, ws: Path) -> dict[str, str]:
    """The environment an Airflow deployment of this DAG has (settings from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RETRAIN_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        RETRAIN_PARAMS=str(ws / "params.yaml"),
        RETRAIN_DATASET_MIRROR=str(MIRROR),
        RETRAIN_RETRIES="0",  # a failure in a test should fail now, not after back-off
        MLFLOW_TRACKING_URI=f"sqlite:///{ws}/mlflow.db",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        DVC_NO_ANALYTICS="1",
        GIT_PYTHON_REFRESH="quiet",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def write_batch(ws: Path, day: str, scenario: str) -> Path:
    from pipelines.config import load_params
    from pipelines.demo.simulate import write_scenario

    return write_scenario(load_params(ws / "params.yaml"), day, scenario)


def record(ws: Path, day: str) -> dict[str, Any]:
    return json.loads((ws / "reports" / "nights" / day / "summary.json").read_text())


def notifications(ws: Path) -> list[dict[str, Any]]:
    p = ws / "reports" / "notifications.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.is_file() else []


def mlflow_client(ws: Path) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{ws}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def mlflow_names(ws: Path) -> tuple[str, str]:
    """(registered model, experiment) from the workspace's params."""
    raw = yaml.safe_load((ws / "params.yaml").read_text())
    return raw["mlflow"]["registered_model"], raw["mlflow"]["experiment"]


def champion(ws: Path) -> str:
    model, _ = mlflow_names(ws)
    return str(mlflow_client(ws).get_model_version_by_alias(model, "champion").version)
