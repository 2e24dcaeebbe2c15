"""A promotion killed between its two alias writes, on a real SQLite MLflow registry: the next
registry call that promotes or rolls back completes it first, so ``previous`` never stays equal
to ``champion`` with rollback refused.

The versions are registered from an empty folder (no model is trained or loaded: the alias
moves are what is tested); the crash is a real process dying at the seam
``registry.promotion`` (``previous`` moved, ``champion`` not yet).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import Params
from pipelines.edges import registry
from tests.support import faults
from tests.support.registry import make_params

ROOT = Path(__file__).resolve().parents[2]
PROMOTE = (
    "import sys; from pipelines.config import load_params; from pipelines.edges import registry; "
    "registry.promote(load_params(sys.argv[1]), sys.argv[2], reason='crash test')"
)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty registry database with its tables made, copied per test (making them costs
    seconds)."""
    params = make_params(tmp_path_factory.mktemp("template"))
    registry.client(params).search_registered_models()
    return params.root / "mlflow.db"


@pytest.fixture
def ws(tmp_path: Path, migrated: Path, monkeypatch: pytest.MonkeyPatch) -> Params:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(registry.ACTOR_ENV, "tests")
    (tmp_path / "ws").mkdir()
    shutil.copy(migrated, tmp_path / "ws" / "mlflow.db")
    params = make_params(tmp_path / "ws")
    c = registry.client(params)
    name = params.mlflow.registered_model
    c.create_registered_model(name)
    source = params.root / "model"
    source.mkdir()
    for _ in range(3):
        c.create_model_version(name, source=str(source))
    registry.promote(params, "1", reason="first")
    registry.promote(params, "2", reason="second")
    return params


def _aliases(params: Params) -> tuple[str | None, str | None]:
    c = registry.client(params)
    name = params.mlflow.registered_model
    return registry.alias_version(c, name, "champion"), registry.alias_version(c, name, "previous")


def _crash_promoting(params: Params, version: str) -> None:
    env = {**os.environ, **faults.env(RETRAIN_CRASH_AT="registry.promotion")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", PROMOTE, str(params.root / "params.yaml"), version],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 137, proc.stderr[-2000:]


def test_a_promotion_killed_between_alias_moves_is_completed_by_the_next_rollback(ws):
    _crash_promoting(ws, "3")
    assert _aliases(ws) == ("2", "2")  # the half-done state: champion intact, previous moved
    tags = registry.client(ws).get_registered_model(ws.mlflow.registered_model).tags
    assert json.loads(tags[registry.INTENT])["version"] == "3"

    ev = registry.rollback(ws, reason="after the crash")  # not refused "already the champion"
    assert ev.version == "2" and _aliases(ws) == ("2", "3")
    history = [(e["kind"], e["version"]) for e in registry.read_history(ws)]
    assert history[-2:] == [("promotion", "3"), ("rollback", "2")]
    tags = registry.client(ws).get_registered_model(ws.mlflow.registered_model).tags
    assert registry.INTENT not in tags


class _Killed(BaseException):
    """Nothing of the promotion's code runs after it (it catches no BaseException)."""


def _die_at_promotion(name: str) -> None:
    if name == "registry.promotion":
        raise _Killed(name)


def test_the_repair_is_said_once_and_a_stale_intent_moves_nothing(ws, monkeypatch):
    _crash_promoting(ws, "3")
    line = registry.repair_promotion(ws)
    assert line and "completed an interrupted promotion" in line and "v3 is champion" in line
    assert _aliases(ws) == ("3", "2")
    assert registry.repair_promotion(ws) is None  # nothing half done any more

    monkeypatch.setattr(registry.seams, "point", _die_at_promotion)  # the same crash, in-process
    with pytest.raises(_Killed):
        registry.promote(ws, "1", reason="crash test")
    assert _aliases(ws) == ("3", "3")
    c = registry.client(ws)
    c.set_registered_model_alias(ws.mlflow.registered_model, "champion", "2")  # moved by hand
    line = registry.repair_promotion(ws)
    assert line and "dropped an interrupted promotion of v1" in line
    assert _aliases(ws)[0] == "2"
