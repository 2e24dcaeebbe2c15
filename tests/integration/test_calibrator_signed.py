"""The calibrator the evaluate stage keeps with a logged model travels with the version: the
gate's digests and the signed manifest cover it, the monitor reads it only after the version
verifies, and a calibrator changed after signing is refused (a throwaway SQLite registry)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.edges import registry, tracking
from pipelines.monitor.run import champion_calibrator
from pipelines.stages.evaluate.calibration import CALIBRATOR_FILE, Calibrator, fit_calibrator
from pipelines.stages.train import feature_frame, fit, positive_proba
from tests.support.registry import make_params, sign_as_the_gate


@pytest.fixture(scope="module")
def signed(tmp_path_factory, adult_reference, adult_current):
    """A version trained, its calibrator kept before the gate, registered, signed, promoted."""
    root = tmp_path_factory.mktemp("calibrator-registry")
    params = make_params(root, "calibrator-test")
    cfg = params.train.model_copy(update={"hyperparameters": {"max_iter": 20}})
    train = adult_reference.sample(4000, random_state=0)
    model = fit(train, params.dataset, cfg)
    params.paths.window_eval.parent.mkdir(parents=True, exist_ok=True)
    train.to_parquet(params.paths.window_eval.parent / "train.parquet")
    rec = tracking.log_training_run(
        params, model, X_example=feature_frame(train, params.dataset).head(5),
        train_path=params.paths.window_eval.parent / "train.parquet",
        metrics={"train_rows": len(train)}, out_dir=params.paths.model,
    )  # fmt: skip
    held = adult_current.head(3000)
    y = (held[params.dataset.target] == params.dataset.positive_label).to_numpy()
    cal = fit_calibrator(y, positive_proba(model, feature_frame(held, params.dataset)))
    path = root / CALIBRATOR_FILE
    path.write_text(json.dumps(cal.to_dict()))
    assert tracking.keep_with_model(params, rec["model_uri"], path) is True
    assert tracking.keep_with_model(params, rec["model_uri"], path) is False  # once
    version = registry.register(params, rec["run_id"], rec["model_uri"], rec["tags"])
    sign_as_the_gate(params, version, rec["run_id"], rec["model_uri"])
    registry.promote(params, version, reason="test")
    return params, version, rec, cal


def test_the_monitor_reads_the_signed_calibrator(signed):
    from pipelines.release.signing import verify_version

    params, version, _, cal = signed
    assert CALIBRATOR_FILE in verify_version(params, version).files
    got = champion_calibrator(params, version)
    assert got is not None and got == Calibrator.from_dict(cal.to_dict())
    s = np.linspace(0, 1, 11)
    assert np.array_equal(got.apply(s), cal.apply(s))


def test_a_calibrator_changed_after_signing_is_refused(signed, tmp_path, caplog):
    from mlflow import MlflowClient

    params, version, rec, cal = signed
    forged = cal.to_dict() | {"probabilities": [1.0] * len(cal.probabilities)}
    path = tmp_path / CALIBRATOR_FILE
    path.write_text(json.dumps(forged))
    c = MlflowClient(params.tracking_uri, params.tracking_uri)
    c.log_model_artifact(rec["model_uri"].removeprefix("models:/"), str(path))  # overwrite
    assert champion_calibrator(params, version) is None
    assert "files differ from what was signed" in caplog.text
