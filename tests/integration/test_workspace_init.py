"""`retrain init DIR --params FILE` makes a workspace for a dataset (git + DVC, the pipeline,
FILE as its params.yaml), and `retrain run --params FILE` with any other file is refused
before it touches a folder: DVC tracks one file, the stages must read that one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.config import load_params

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
ENV.pop("RETRAIN_DATASET_MIRROR", None)
ENV.pop("RETRAIN_PARAMS", None)


def retrain(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=cwd,
        env=ENV,
        text=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A dataset's params file in a folder of its own, its mirror relative to that folder,
    with its reviewed suite beside it."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    mirror = (ROOT / raw["dataset"]["mirror"]).resolve()
    if not (mirror / raw["dataset"]["reference"]["name"]).is_file():
        pytest.skip(f"dataset mirror not present: {mirror}")
    folder = tmp_path / "mine"
    (folder / "expectations").mkdir(parents=True)
    raw["dataset"]["mirror"] = os.path.relpath(mirror, folder)
    (folder / "adult.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    suite = ROOT / "expectations" / f"{raw['validate']['suite']}.json"
    (folder / "expectations" / suite.name).write_bytes(suite.read_bytes())
    return folder / "adult.yaml"


def test_run_with_another_params_file_is_refused_and_touches_nothing(source: Path) -> None:
    before = sorted(p.name for p in source.parent.iterdir())
    proc = retrain(source.parent, "run", "--params", str(source))
    assert proc.returncode == 1
    assert "is not the workspace's params file: DVC tracks" in proc.stderr
    assert "retrain init DIR --params" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in source.parent.iterdir()) == before  # no git, no DVC


def test_init_makes_a_workspace_whose_stages_read_what_dvc_tracks(
    source: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    proc = retrain(tmp_path, "init", str(ws), "--params", str(source))
    assert proc.returncode == 0, proc.stderr
    assert "next:   cd" in proc.stdout
    for name in (".git", ".dvc", "dvc.yaml", "pipelines", "expectations/adult.json"):
        assert (ws / name).exists(), name
    params = load_params(ws / "params.yaml")
    mirror = load_params(source).mirror
    assert mirror is not None and params.mirror == mirror.resolve()  # relative mirror found
    # the pipeline's first stage runs there, on the workspace's own params.yaml
    from pipelines.edges.dvc import DvcError, dvc

    out = dvc(params, "repro", "prepare", capture=True)
    assert "Running stage 'prepare'" in out.stdout
    good = params.paths.prepared_reference.read_bytes()
    # a failed prepare says why in one line, and DVC keeps the last good data (persist)
    tracked = ws / "params.yaml"
    raw = yaml.safe_load(tracked.read_text())
    raw["dataset"]["separator"] = ";"
    tracked.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(DvcError) as err:
        dvc(params, "repro", "prepare", capture=True)
    assert "prepare: error: " in str(err.value) and "Traceback" not in str(err.value)
    assert "one column read where 15 were expected with separator ';'" in str(err.value)
    assert params.paths.prepared_reference.read_bytes() == good
    # a second init with a different file is refused unless forced
    other = source.with_name("other.yaml")
    other.write_text(source.read_text().replace("retrain-adult", "retrain-other"))
    again = retrain(tmp_path, "init", str(ws), "--params", str(other))
    assert again.returncode == 1 and "differs from" in again.stderr and "--force" in again.stderr
    forced = retrain(tmp_path, "init", str(ws), "--params", str(other), "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_params(ws / "params.yaml").mlflow.experiment == "retrain-other"
