"""docker/workspace-init.sh, run as `make stack` runs it (on every start), against temporary
folders instead of the image's project and the workspace volume: a user's edits to the
workspace's configuration survive `make stack-down; make stack`, with or without a new image,
and a change of both on the same lines is refused, with where configuration lives."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "workspace-init.sh"
PARAMS = "seed: 7\ntrain:\n  max_iter: 100\n  learning_rate: 0.1\ngate:\n  margin: 0.01\n"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def image(root: Path, params: str = PARAMS, code: str = "v1") -> Path:
    """A project folder as the pipeline image has it (/opt/retrain/project)."""
    src = root / "image"
    shutil.rmtree(src, ignore_errors=True)
    for d in ("pipelines", "dags", "expectations", "params", ".dvc"):
        (src / d).mkdir(parents=True)
    (src / "pipelines" / "code.py").write_text(f"VERSION = {code!r}\n")
    (src / "dags" / "night.py").write_text("")
    (src / "expectations" / "suite.json").write_text("{}")
    (src / "params" / "other.yaml").write_text("seed: 1\n")
    (src / "params.yaml").write_text(params)
    for f in ("dvc.yaml", "pyproject.toml", ".dvcignore", ".gitignore", ".dvc/config"):
        (src / f).write_text("")
    return src


def init(src: Path, ws: Path) -> subprocess.CompletedProcess[str]:
    ws.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETRAIN_", "GIT_"))}
    env |= {"RETRAIN_PROJECT_SRC": str(src), "RETRAIN_WORKSPACE_VOLUME": "retrain_workspace"}
    return subprocess.run(
        ["sh", str(SCRIPT), str(ws)], env=env, capture_output=True, text=True, timeout=60
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


def test_a_fresh_workspace_gets_the_image_s_project_and_a_second_run_changes_nothing(tmp_path):
    src, ws = image(tmp_path), tmp_path / "ws"
    assert "workspace-init: " in ok(init(src, ws))
    assert (ws / "params.yaml").read_text() == PARAMS
    assert (ws / "params" / "other.yaml").read_text() == "seed: 1\n"
    assert (ws / "pipelines" / "code.py").read_text() == "VERSION = 'v1'\n"
    assert "unchanged at" in ok(init(src, ws))


def test_edits_survive_a_restart_with_the_same_image(tmp_path):
    src, ws = image(tmp_path), tmp_path / "ws"
    ok(init(src, ws))
    edit(ws / "params.yaml", "max_iter: 100", "max_iter: 300")
    edit(ws / "params" / "other.yaml", "seed: 1", "seed: 2")
    (ws / "params" / "mine.yaml").write_text("seed: 3\n")  # a file of the user's own
    out = ok(init(src, ws))  # make stack-down; make stack
    assert "params.yaml: your edits are kept" in out
    assert "max_iter: 300" in (ws / "params.yaml").read_text()
    assert (ws / "params" / "other.yaml").read_text() == "seed: 2\n"
    assert (ws / "params" / "mine.yaml").read_text() == "seed: 3\n"
    ok(init(src, ws))  # and again: still the user's
    assert "max_iter: 300" in (ws / "params.yaml").read_text()


def test_edits_merge_with_a_new_image_s_changes_elsewhere(tmp_path):
    ws = tmp_path / "ws"
    ok(init(image(tmp_path), ws))
    edit(ws / "params.yaml", "max_iter: 100", "max_iter: 300")
    new = PARAMS.replace("margin: 0.01", "margin: 0.02") + "deploy:\n  approval: none\n"
    out = ok(init(image(tmp_path, new, code="v2"), ws))
    assert "params.yaml: your edits merged with the image's changes" in out
    text = (ws / "params.yaml").read_text()
    assert "max_iter: 300" in text and "margin: 0.02" in text and "approval: none" in text
    assert (ws / "pipelines" / "code.py").read_text() == "VERSION = 'v2'\n"


def test_an_unedited_file_takes_the_new_image_s(tmp_path):
    ws = tmp_path / "ws"
    ok(init(image(tmp_path), ws))
    new = PARAMS.replace("max_iter: 100", "max_iter: 200")
    ok(init(image(tmp_path, new), ws))
    assert (ws / "params.yaml").read_text() == new


def test_a_clash_is_refused_saying_where_configuration_lives_and_replaces_nothing(tmp_path):
    ws = tmp_path / "ws"
    ok(init(image(tmp_path), ws))
    edit(ws / "params.yaml", "max_iter: 100", "max_iter: 300")
    mine = (ws / "params.yaml").read_text()
    new = PARAMS.replace("max_iter: 100", "max_iter: 150")
    src = image(tmp_path, new, code="v2")
    proc = init(src, ws)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REFUSED: nothing was replaced" in proc.stderr
    assert "same lines of: params.yaml" in proc.stderr
    assert "Configuration lives in the workspace" in proc.stderr
    assert "retrain_workspace" in proc.stderr and "params.yaml.image" not in proc.stdout
    assert (ws / "params.yaml").read_text() == mine  # the user's, untouched
    assert (ws / "params.yaml.image").read_text() == new  # the image's, beside it
    assert (ws / "pipelines" / "code.py").read_text() == "VERSION = 'v1'\n"  # not replaced
    # merged by hand: the next start keeps the user's file as it is and goes on
    edit(ws / "params.yaml", "max_iter: 300", "max_iter: 250")
    out = ok(init(src, ws))
    assert "params.yaml: yours, as you left it" in out
    assert "max_iter: 250" in (ws / "params.yaml").read_text()
    assert not (ws / "params.yaml.image").exists()
    assert (ws / "pipelines" / "code.py").read_text() == "VERSION = 'v2'\n"
    ok(init(src, ws))  # and stays so: the image's file is now the known base
    assert "max_iter: 250" in (ws / "params.yaml").read_text()


def test_a_workspace_made_before_the_base_was_kept_uses_its_last_commit(tmp_path):
    """A volume initialised by the earlier script (which overwrote params.yaml and committed):
    the last commit's params.yaml is what the image gave; an edit since is the user's."""
    src, ws = image(tmp_path), tmp_path / "ws"
    ok(init(src, ws))
    shutil.rmtree(ws / ".git" / "retrain-image")
    edit(ws / "params.yaml", "max_iter: 100", "max_iter: 300")
    assert "your edits are kept" in ok(init(src, ws))
    assert "max_iter: 300" in (ws / "params.yaml").read_text()
