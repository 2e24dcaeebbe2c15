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


def test_a_monitor_pass_publishes_the_estimate_and_its_check(signed, adult_current):
    """`retrain monitor`'s pass on a logged window: the estimate on every answer of the
    champion, estimate against realised on those with outcomes, in the verdict, MLflow and
    the Prometheus text file."""
    from datetime import UTC, datetime

    import orjson
    import pandas as pd
    from mlflow import MlflowClient

    from pipelines.monitor.run import run_monitor
    from pipelines.predlog.readers import record_outcomes
    from pipelines.predlog.sinks import open_sink
    from pipelines.serve.model import load_sklearn

    params, version, _, _ = signed
    ds = params.dataset
    rows = adult_current.iloc[3000:4000].reset_index(drop=True)
    feats = [*ds.features.numeric, *ds.features.categorical]
    proba = positive_proba(load_sklearn(params.paths.model), feature_frame(rows, ds))
    records = rows[feats].astype(object).where(rows[feats].notna(), None).to_dict("records")
    stored = pd.DataFrame(
        {
            "request_id": [f"q{i}" for i in range(len(rows))],
            "ts": datetime.now(UTC),
            "model_version": version,
            "arm": "champion",
            "probabilities": [orjson.dumps([float(p)]).decode() for p in proba],
            "inputs": [orjson.dumps([r]).decode() for r in records],
        }
    )
    sink = open_sink(str(params.prediction_log))
    sink.write("predictions", stored)
    sink.close()
    half = rows.head(500)
    record_outcomes(
        params,
        pd.DataFrame({"request_id": [f"q{i}" for i in range(500)], "label": half[ds.target]}),
    )
    res = run_monitor(params, land=False, mlflow=True)
    v = res.verdict
    assert v.champion_version == version and v.rows == 1000 and v.labelled_rows == 500
    assert v.estimated is not None and v.estimated["rows"] == 1000
    assert v.estimated_drop is None  # no evaluated baseline kept on this test version
    assert v.concept_change is not None and v.concept_change["rows"] == 500
    assert v.concept_change["outside"] is False
    prom = params.paths.monitor_out().metrics.read_text()
    assert 'retrain_live_estimated_metric{bound="estimate",metric="roc_auc"}' in prom
    assert "retrain_live_concept_change 0.0" in prom
    got = MlflowClient(params.tracking_uri).get_run(res.mlflow_run).data.metrics
    assert got["estimated_roc_auc_point"] == pytest.approx(v.estimated["point"])
    assert got["concept_change"] == 0.0


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
