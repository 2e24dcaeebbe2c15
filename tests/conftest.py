"""Shared fixtures: the project's params, the real Adult data (cleaned), throwaway workspaces."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.config import Params, load_params
from pipelines.serve.model import ServingSpec

ROOT = Path(__file__).resolve().parents[1]

# One compute thread per test worker: `make test` runs one worker per core, and the models'
# OpenMP threads (two per process by default) then oversubscribe the cores; OpenMP threads
# spin while they wait, so a fit under that contention took 3-4x as long (34 s against 9 s
# for the Census-KDD fit). Set before anything loads OpenMP; nights the tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture(scope="session")
def params() -> Params:
    """The project's own params.yaml (Adult)."""
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def spec(params: Params) -> ServingSpec:
    """What serving reads and answers, from the project's params."""
    return ServingSpec.from_params(params)


@pytest.fixture(scope="session")
def adult(params: Params, tmp_path_factory: pytest.TempPathFactory):
    """Cleaned Adult reference (adult.data) and current (adult.test) frames, from the mirror."""
    from pipelines.stages.prepare import prepare

    if params.mirror is None or not (params.mirror / params.dataset.reference.name).is_file():
        pytest.skip(f"dataset mirror not present: {params.mirror}")
    return prepare(params, tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="session")
def adult_reference(adult) -> pd.DataFrame:
    return adult.reference


@pytest.fixture(scope="session")
def adult_current(adult) -> pd.DataFrame:
    return adult.current


@pytest.fixture(scope="module")
def census_mirror_from_its_params():
    """For the census tests: the mirror comes from params/census_kdd.yaml. RETRAIN_DATASET_MIRROR
    (one dataset's override, perhaps set for Adult) must not redirect it, here or in the stages'
    processes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RETRAIN_DATASET_MIRROR", raising=False)
        yield


@pytest.fixture(scope="session")
def prefit(params: Params, adult_reference: pd.DataFrame) -> dict[str, object]:
    """Small models on Adult, fitted once per session (a few seconds in all) and shared by the
    tiers that score but must not train: ``a`` (4,000 rows, 20 iterations) and ``b`` (3,000
    other rows, 5 iterations: a weaker second model)."""
    from pipelines.stages.train import fit

    def small(rows: int, seed: int, max_iter: int) -> object:
        cfg = params.train.model_copy(update={"hyperparameters": {"max_iter": max_iter}})
        return fit(adult_reference.sample(rows, random_state=seed), params.dataset, cfg)

    return {"a": small(4000, 0, 20), "b": small(3000, 1, 5)}


# Under pytest-xdist (`make test`: -n 2) a module's tests stay on one worker, so its module
# fixtures are built once; modules that share machine-wide state share a group and run one
# after the other on one worker: the container tests (one engine, one image cache, the offline
# base image) and the LocalExecutor Airflow tests (one set of servers, `local_airflow`,
# switched between their workspaces).
GROUPS = {
    "test_serving_image.py": "containers",
    "test_redeploy.py": "containers",
    "test_stack.py": "containers",
    "test_airflow_postgres.py": "airflow-local",
    "test_approval.py": "airflow-local",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Work units of a module each, or of a group of modules (:data:`GROUPS`); the largest
    first."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return GROUPS.get(module.rsplit("/", 1)[-1], module)

    return ByModule(config, log)
