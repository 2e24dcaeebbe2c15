"""The demo loop's settings live in the workspace's own params.yaml while it runs: the file DVC
tracks is the file its night's stages read, and the file as it was comes back afterwards (also
after a loop that was killed, and after one that failed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.config import PARAMS_ENV, load_params
from pipelines.demo.settings import loop_settings, restore_params
from pipelines.edges.dvc import DvcError, dvc_env

ROOT = Path(__file__).resolve().parents[2]
# the keys under ``params:`` in dvc.yaml the loop's settings change
TRACKED = ("window",)


@pytest.fixture()
def params(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    return load_params(tmp_path / "params.yaml")


def tracked_by_dvc(params) -> dict:
    """The values DVC records for the stages: read from the file dvc.yaml's params come from."""
    raw = yaml.safe_load(params.paths.tracked_params.read_text())
    return {key: raw[key] for key in TRACKED}


def test_the_loops_night_reads_the_file_dvc_tracks(params):
    before = params.paths.tracked_params.read_text()
    loop = params.simulate.loop
    with loop_settings(params) as settings:
        assert settings.file == params.paths.tracked_params
        # what the night's stages get: the same file, by the environment DVC runs them in
        assert dvc_env(settings)[PARAMS_ENV] == str(params.paths.tracked_params)
        stages_read = load_params(dvc_env(settings)[PARAMS_ENV])
        assert stages_read.window.model_dump(include={"last_batches", "include_reference"}) == {
            "last_batches": loop.last_batches,
            "include_reference": loop.include_reference,
        }
        assert stages_read.window.holdout_fraction == loop.holdout_fraction
        assert stages_read.deploy.rollout == loop.rollout
        assert tracked_by_dvc(settings) == {"window": stages_read.window.model_dump(mode="json")}
        assert params.paths.params_before_loop.read_text() == before
    assert params.paths.tracked_params.read_text() == before
    assert not params.paths.params_before_loop.exists()


def test_a_failed_loop_puts_the_file_back(params):
    before = params.paths.tracked_params.read_text()
    with pytest.raises(RuntimeError, match="server did not get ready"):
        with loop_settings(params):
            raise RuntimeError("demo-loop: the server did not get ready")
    assert params.paths.tracked_params.read_text() == before
    assert not params.paths.params_before_loop.exists()


def test_a_killed_loops_file_is_put_back_when_the_next_starts(params):
    before = params.paths.tracked_params.read_text()
    with loop_settings(params):  # killed inside: what it leaves on disk
        left = params.paths.tracked_params.read_text()
        kept = params.paths.params_before_loop.read_text()
    params.paths.tracked_params.write_text(left)
    params.paths.params_before_loop.write_text(kept)

    with loop_settings(params):  # the next loop starts from the file as the user wrote it
        assert params.paths.params_before_loop.read_text() == before
    assert params.paths.tracked_params.read_text() == before
    assert restore_params(params) is False


def test_the_loop_refuses_a_file_dvc_does_not_track(params, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(params.paths.tracked_params.read_text())
    before = params.paths.tracked_params.read_text()
    with pytest.raises(DvcError, match="is not the workspace's params file"):
        with loop_settings(load_params(other)):
            pass
    assert params.paths.tracked_params.read_text() == before
