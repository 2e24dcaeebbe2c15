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
