"""`retrain status` against a real MLflow tracking server (issue 16): the aliases it reads with one
REST call are the ones the MLflow client sees, a model not registered yet has none, a server
that does not answer is named in one line, and the command, in a fresh interpreter, imports
no MLflow, scikit-learn or pandas, on a server or on a local SQLite store.

One ``mlflow server`` on a SQLite store in a temporary folder (job execution off), a
registered model with three versions and its aliases made through the MLflow client.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.config import load_params
from pipelines.edges.aliases import AliasesUnavailable, read_aliases
from pipelines.night.record import save_record
from pipelines.records import NightRecord
from tests.support.browser import free_port
from tests.support.mlflow_server import mlflow_server

ROOT = Path(__file__).resolve().parents[2]
MODEL = "status-check"
SECRET = "s3" + "cret-in-url"  # a password in an address (built here: no literal in git)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("status")
    store = f"sqlite:///{root / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=store, registry_uri=store)
    c.create_registered_model(MODEL)
    (root / "model").mkdir()
    for _ in range(3):
        c.create_model_version(MODEL, source=str(root / "model"))
    c.set_registered_model_alias(MODEL, "champion", "3")
    c.set_registered_model_alias(MODEL, "previous", "2")
    expected = {k: str(v) for k, v in c.get_registered_model(MODEL).aliases.items()}
    with mlflow_server(root, store, timeout=90) as url:
        yield {"url": url, "expected": expected, "root": root}


def test_the_aliases_over_rest_are_the_clients(server):
    assert server["expected"] == {"champion": "3", "previous": "2"}
    assert read_aliases(server["url"], MODEL) == server["expected"]
    assert read_aliases(server["url"] + "/", MODEL) == server["expected"]
    assert read_aliases(server["url"], "not-registered-yet") == {}


def test_a_server_that_does_not_answer_is_named_at_once(server):
    gone = f"http://user:{SECRET}@127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(AliasesUnavailable, match="not reachable") as err:
        read_aliases(gone, MODEL, timeout=2)
    assert time.monotonic() - t0 < 5
    assert SECRET not in str(err.value)  # the address is shown masked


def test_retrain_status_reads_the_server_without_mlflow(server):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["mlflow"]["registered_model"] = MODEL
    ws = server["root"] / "ws"
    ws.mkdir()
    (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    code = (
        "import sys; from pipelines import cli; rc = cli.main(['status']);"
        "print('HEAVY', [m for m in ('mlflow', 'sklearn', 'pandas') if m in sys.modules]);"
        "sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": server["url"]}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ws, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert f"model {MODEL}: champion v3, previous v2, pending -, rollout -" in out.stdout
    assert f"registry: {server['url']}" in out.stdout
    assert "HEAVY []" in out.stdout


def test_status_loads_no_mlflow_sklearn_or_pandas(tmp_path):
    """What keeps `retrain status` under a second: the heavy libraries stay unimported."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["mlflow"]["tracking_uri"] = "sqlite:///mlflow.db"  # none yet: nothing is made
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(tmp_path / "ws" / "params.yaml")
    night = NightRecord(date="2026-03-01", started_at="2026-03-01T02:00:00+00:00", reports="/r")
    save_record(params, night.model_copy(update={"outcome": "no_batch"}))
    code = (
        "import sys; from pipelines import cli; rc = cli.main(['status', '--params', sys.argv[1]]);"
        "heavy = [m for m in ('mlflow', 'sklearn', 'pandas') if m in sys.modules];"
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(
        [sys.executable, "-c", code, str(params.file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert re.search(r"^model \S+: champion -, previous -, pending -, rollout -$", out.stdout, re.M)
    assert "2026-03-01: no batch" in out.stdout
    assert "no deployment recorded" in out.stdout
    assert not (tmp_path / "ws" / "mlflow.db").exists()
