"""The DVC edge refuses a params file DVC does not track, and never makes a repository of a
folder that holds no pipeline (`retrain init` makes workspaces)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.config import load_params
from pipelines.edges.dvc import DvcError, check_params_file, ensure

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_workspace_params_yaml_runs_the_pipeline(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text)
    (tmp_path / "census.yaml").write_text(text)
    check_params_file(load_params(tmp_path / "params.yaml"))
    with pytest.raises(DvcError) as err:
        check_params_file(load_params(tmp_path / "census.yaml"))
    msg = str(err.value)
    assert f"DVC tracks {tmp_path / 'params.yaml'}" in msg
    assert f"retrain init DIR --params {tmp_path / 'census.yaml'}" in msg


def test_a_folder_without_a_pipeline_is_not_made_a_repository(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    with pytest.raises(DvcError, match=r"is not a workspace \(no dvc.yaml\): make one with"):
        ensure(load_params(tmp_path / "params.yaml"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_a_params_file_kept_in_a_subfolder_becomes_a_self_contained_workspace(tmp_path):
    """params/census_kdd.yaml spells the project's folders from params/ (../data/census): in
    a workspace of its own they are the workspace's, and the mirror is found from anywhere."""
    from pipelines.config import parse_params
    from pipelines.edges.workspace import params_for_workspace

    source = ROOT / "params" / "census_kdd.yaml"
    origin = load_params(source)
    text, raw = params_for_workspace(source, origin)
    assert text.startswith("# made by `retrain init` from ")
    ws = parse_params(raw, root=tmp_path)
    assert ws.paths.data == tmp_path / "data" / "census"
    assert ws.paths.suite == tmp_path / "expectations" / "census_kdd.json"
    assert ws.paths.landing == tmp_path / "data" / "census" / "landing"
    assert raw["mlflow"]["tracking_uri"] == "sqlite:///mlflow.db"  # the workspace's own store
    assert ws.dataset.mirror == origin.path(origin.dataset.mirror or "").resolve()
    adult = ROOT / "params.yaml"  # relative mirror only: rewritten; nothing else moves
    text, raw = params_for_workspace(adult, load_params(adult))
    assert raw["paths"]["data"] == "data" and Path(raw["dataset"]["mirror"]).is_absolute()


def test_the_stages_get_the_night_s_actor_and_approval_and_dvc_keeps_its_git_hints_to_itself(
    tmp_path,
):
    import subprocess
    import sys

    from pipelines.edges.dvc import DVC_CLI, dvc_env

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    params = load_params(tmp_path / "params.yaml")
    env = dvc_env(params, "airflow:retrain_nightly/manual__1", "required")
    assert env["RETRAIN_ACTOR"] == "airflow:retrain_nightly/manual__1"
    assert env["RETRAIN_APPROVAL"] == "required"  # the form's choice, for `register`
    untouched = dvc_env(params, "x").get("RETRAIN_APPROVAL")  # none asked: as the env has it
    assert untouched == os.environ.get("RETRAIN_APPROVAL")
    # DVC's command line as the night runs it: a stage's output, no `git add` hint
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    cmd = [sys.executable, "-c", DVC_CLI]
    subprocess.run([*cmd, "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:\n    cmd: echo hi > out.txt\n    outs:\n      - out.txt\n"
    )
    out = subprocess.run(
        [*cmd, "repro", "-s", "a"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    said = out.stdout + out.stderr
    assert "Running stage 'a'" in said and "Updating lock file 'dvc.lock'" in said
    assert "git add" not in said and "autostage" not in said
    failed = subprocess.run(
        [*cmd, "repro", "-s", "nosuch"], cwd=tmp_path, env=env, text=True, capture_output=True
    )
    assert failed.returncode != 0 and "nosuch" in failed.stderr  # errors still said
