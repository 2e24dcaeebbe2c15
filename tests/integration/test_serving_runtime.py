"""The serving image's code and packages are enough to serve: checked without a container.

`retrain deploy` copies the serving runtime (pipelines/serve/ without the deploy-side modules,
plus pipelines/seams.py) into the image and installs the pinned runtime packages only. Here
the image's entry point runs from that same copy, on uvicorn, in an interpreter that sees
neither the rest of the repository nor any package the image does not install, and serves a
baked model folder. A new runtime import (a module left out of the copy, a package missing from
the image's requirements) fails here, not in a container build on another machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from pipelines.release.containers import copy_runtime, runtime_requirements
from pipelines.serve.fastpath import frame_records
from pipelines.serve.model import SMOKE_FILE, SPEC_FILE, ServingSpec
from tests.support.registry import bake_signed

# The image's entry point, run from the copy only, where only the image's packages exist: the
# editable install's finder (which maps ``pipelines.*`` to the repository) is taken off the import
# path, and every package the image does not install is refused like a missing one (optional
# imports fall back as they would in the image). Argv: blocked names, then the entry point's.
LAUNCHER = r"""
import json, runpy, sys

BLOCKED = frozenset(json.loads(sys.argv[1]))


class NotInTheImage:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
        return None


sys.meta_path[:] = [NotInTheImage] + [
    f for f in sys.meta_path if getattr(f, "__name__", "") != "_EditableFinder"
]
sys.argv = ["pipelines.serve", *sys.argv[2:]]
runpy.run_module("pipelines.serve", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def baked_model(params, prefit, adult_current, tmp_path_factory) -> Path:
    """A model folder as the image carries it: MLmodel (skops), serving.json, smoke.json, and
    the signature and public key the deploy that verified it bakes beside it."""
    import skops.io
    import yaml

    model = prefit["a"]
    d = tmp_path_factory.mktemp("baked") / "model"
    d.mkdir()
    skops.io.dump(model, d / "model.skops")
    trusted = skops.io.get_untrusted_types(file=d / "model.skops")
    flavor = {"pickled_model": "model.skops", "serialization_format": "skops",
              "skops_trusted_types": trusted}  # fmt: skip
    (d / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": flavor}}))
    spec = ServingSpec.from_params(params)
    meta = {"spec": spec.to_dict(), "model_version": "3", "run_id": "r", "data_version": {}}
    (d / SPEC_FILE).write_text(json.dumps(meta))
    smoke = frame_records(adult_current.head(20), spec.fields)
    (d / SMOKE_FILE).write_text(json.dumps(smoke))
    bake_signed(params, d, "3", d.parent / "keys" / "model-signing.key")
    return d


def _not_in_the_image() -> list[str]:
    """Top-level modules of every installed distribution the image does not install (the
    project's own ``pipelines`` comes from the copy)."""
    image = {p.split("==")[0] for p in runtime_requirements()}
    blocked = set()
    for name, dists in packages_distributions().items():
        owners = {d.lower().replace("_", "-") for d in dists}
        if not owners & image and name not in sys.stdlib_module_names and name != "pipelines":
            blocked.add(name)
    return sorted(blocked)


def _get(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_the_image_code_serves_with_the_image_packages_only(baked_model, tmp_path):
    app_dir = tmp_path / "app"
    copy_runtime(app_dir)
    assert (app_dir / "pipelines" / "seams.py").is_file()
    assert not (app_dir / "pipelines" / "config.py").exists()
    assert not (app_dir / "pipelines" / "serve" / "deploy.py").exists()
    launcher = app_dir / "launch.py"
    launcher.write_text(LAUNCHER)
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(launcher), json.dumps(_not_in_the_image()),
             "--model-dir", str(baked_model), "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(app_dir)},
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            status = 0
            while status != 200 and proc.poll() is None and time.monotonic() < deadline:
                try:
                    status, _ = _get(url + "/ready")
                except OSError:
                    time.sleep(0.2)
            assert status == 200, log.read_text()[-3000:]
            record = json.loads((baked_model / SMOKE_FILE).read_text())[0]
            status, body = _get(url + "/predict", json.dumps(record).encode())
            assert status == 200 and json.loads(body)["model_version"] == "3", body
            status, version = _get(url + "/version")
            assert json.loads(version)["scorer"] == "compiled"
            status, metrics = _get(url + "/metrics")
            assert status == 200
            assert b'retrain_serve_prediction_probability_count{version="3"} 1.0' in metrics
        finally:
            proc.terminate()
            proc.wait(20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
