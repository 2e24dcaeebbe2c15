"""A second dataset through the whole nightly cycle with no code change: UCI Census-Income
(KDD), in a throwaway workspace whose params.yaml is params/census_kdd.yaml (paths rebased to the
workspace) and whose suite is expectations/census_kdd.json. Real DVC, MLflow (SQLite), GX and
Evidently; a modest 5,000-row batch. The tests share one workspace and run in order, like
consecutive nights.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.config import Params, load_params
from pipelines.demo import simulate
from pipelines.edges import dvc as workspace
from pipelines.edges import registry
from pipelines.night import run as nightly
from tests.support.workspace import GIT_ENV, ROOT, make_workspace

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("census_mirror_from_its_params")]

CENSUS_PARAMS = ROOT / "params" / "census_kdd.yaml"


def census_workspace(dest: Path) -> Params:
    """A project copy whose params.yaml is the census params file, its paths rebased from
    params/ to the workspace root, with smaller models and fewer resamples (as make_workspace's
    ``fast`` does for Adult)."""
    make_workspace(dest)
    census = load_params(CENSUS_PARAMS)
    if census.mirror is None or not (census.mirror / census.dataset.reference.name).is_file():
        pytest.skip(f"census mirror not present: {census.mirror}")
    raw = yaml.safe_load(CENSUS_PARAMS.read_text())
    raw["dataset"]["mirror"] = str(census.mirror.resolve())
    raw["paths"] = {
        "data": "data",
        "reports": "reports",
        "models": "models",
        "expectations": "expectations",
    }
    raw["nightly"].update(landing="data/landing", quarantine="data/quarantine")
    raw["mlflow"]["tracking_uri"] = "sqlite:///mlflow.db"
    raw["train"]["hyperparameters"]["max_iter"] = 60
    raw["evaluate"]["bootstrap_samples"] = 200
    raw["drift"]["report_sample_rows"] = 2000
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "commit", "-qam", "census params"], cwd=dest, check=True, env=env)
    return load_params(dest / "params.yaml")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Params]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        params = census_workspace(tmp_path_factory.mktemp("census") / "project")
        workspace.repro(params)  # prepare .. register on the full census files: the first model
        yield params


def test_first_pipeline_run_on_census(ws: Params) -> None:
    prepared = pd.read_parquet(ws.paths.prepared_reference)
    assert len(prepared) == 199_523 and prepared.shape[1] == 42
    assert set(prepared["income_gt_50k"].unique()) == {"50000+", "- 50000"}
    validation = json.loads((ws.paths.validation_json).read_text())
    assert validation["success"] and validation["suite"] == "census_kdd"
    drift = json.loads((ws.paths.stage("drift") / "drift.json").read_text())
    assert drift["engine"] == "fast" and drift["n_columns"] == 40
    assert (ws.paths.stage("drift") / "drift.html").stat().st_size > 100_000
    evaluation = json.loads((ws.paths.evaluation).read_text())
    assert evaluation["metrics"]["roc_auc"]["point"] > 0.9
    fairness = json.loads((ws.paths.fairness).read_text())
    assert {a["attribute"] for a in fairness["attributes"]} >= {"sex", "race"}
    registration = json.loads((ws.paths.registration).read_text())
    assert registration["model"] == "census-income"
    assert registration["champion"] == "1", registration  # the first census model passed


def test_model_uses_native_categorical_codes(ws: Params) -> None:
    from pipelines.stages.evaluate import load_model

    model = load_model(ws.paths.model, ws)
    assert [name for name, _ in model.steps] == ["classifier"]  # no one-hot matrix in front
    clf = model.named_steps["classifier"]
    assert clf.n_features_in_ == len(ws.dataset.features.all) == 40
    assert clf.is_categorical_.sum() == len(ws.dataset.features.categorical) == 33


def test_corrupt_census_batch_is_quarantined(ws: Params) -> None:
    day = "2026-05-01"
    batch = simulate.write_scenario(ws, day, "corrupt")
    rec = nightly.run_night(ws, day)
    assert rec.outcome == "batch_rejected"
    assert rec.validation is not None
    failed = " ".join(rec.validation.failed)
    assert "'age'" in failed and "__unseen_category__" in failed
    assert rec.quarantined_to is not None
    assert (Path(rec.quarantined_to) / batch.name).is_file()
    assert registry.champion_version(ws) == "1"


def test_census_night_with_a_batch_retrains_and_judges(ws: Params) -> None:
    day = "2026-05-02"
    simulate.write_scenario(ws, day, "stable")
    rec = nightly.run_night(ws, day, force_retrain=True)
    assert rec.validation is not None
    assert rec.validation.success and rec.rows == ws.simulate.rows
    assert rec.data_version
    assert rec.drift is not None
    assert not rec.drift.dataset_drift  # a plain sample of the held-out file
    assert rec.retrained and "forced" in rec.retrain_reasons
    assert rec.outcome in ("promoted", "not_promoted")
    assert rec.gate is not None
    assert rec.gate.verdict in ("pass", "fail", "insufficient") and rec.gate.reasons
    assert rec.champion is not None
    assert rec.champion.version == "1"  # compared with the champion on the same rows
    assert "roc_auc" in rec.champion.difference
    window = pd.read_parquet(ws.paths.window_train)
    assert len(window) > 199_523  # the reference plus the batch's training part
    summary = json.loads((ws.paths.night_record(day)).read_text())
    assert summary["outcome"] == rec.outcome


def test_night_with_nothing_new(ws: Params) -> None:
    champion = registry.champion_version(ws)
    rec = nightly.run_night(ws, "2026-05-03")
    assert rec.outcome == "no_batch" and rec.serving == champion
    out = workspace.dvc(ws, "status", capture=True).stdout
    assert "Data and pipelines are up to date" in out
