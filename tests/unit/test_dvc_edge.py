"""The DVC edge refuses a params file DVC does not track, and never makes a repository of a
folder that holds no pipeline (`retrain init` makes workspaces)."""

from __future__ import annotations

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
