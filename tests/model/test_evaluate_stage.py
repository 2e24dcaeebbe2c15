"""Stage `evaluate`'s edge: its files and exit codes, on a small synthetic (non-Adult) dataset
with a model fitted once for the module (the unit tier trains nothing)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.config import load_params
from pipelines.stages.evaluate import Evaluation, main


# --------------------------------------------------------------------------- the stage edge
def write_workspace(root: Path, rows: int = 1500, seed: int = 0) -> Path:
    """A small non-Adult dataset (with missing sensitive values), its params file, a model."""
    from pipelines.data import write_parquet
    from pipelines.edges import tracking
    from pipelines.stages.train import fit

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    logit = 1.5 * x1 - x2 + (colour == "red")
    target = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    grp = rng.choice(np.asarray(["a", "b", None], dtype=object), rows, p=[0.6, 0.35, 0.05])
    region = rng.choice(["north", "south"], rows)
    df = pd.DataFrame(
        {"x1": x1, "x2": x2, "colour": colour, "grp": grp, "region": region, "label": target}
    )
    raw = {
        "dataset": {
            "name": "synthetic",
            "reference": {"name": "reference.csv"},
            "current": {"name": "current.csv"},
            "columns": list(df.columns),
            "target": "label",
            "positive_label": "yes",
            "negative_label": "no",
            "features": {"numeric": ["x1", "x2"], "categorical": ["colour"]},
            "sensitive": ["grp", "region"],
        },
        "validate": {"suite": "synthetic"},
        "train": {"classifier": "logistic_regression"},
        "evaluate": {"bootstrap_samples": 100},
        "mlflow": {"registered_model": "synthetic"},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(path)
    ref_path, cur_path = (params.paths.prepared_reference, params.paths.prepared_current)
    half = rows // 2
    write_parquet(df.iloc[:half].reset_index(drop=True), ref_path)
    write_parquet(df.iloc[half:].reset_index(drop=True), cur_path)
    model = fit(df.iloc[:half], params.dataset, params.train)
    import mlflow.sklearn

    mlflow.sklearn.save_model(
        model,
        params.paths.model,
        skops_trusted_types=tracking.trusted_types(model),
        pip_requirements=["scikit-learn"],  # skips MLflow's requirement inference (~15 s)
    )
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return write_workspace(tmp_path_factory.mktemp("evaluate-ws"))


def test_main_writes_its_files(workspace, capsys):
    assert main(["--params", str(workspace)]) == 0
    out = workspace.parent / "reports" / "evaluate"
    for name in (
        "metrics.json",
        "evaluation.json",
        "predictions.parquet",
        "plots/roc.json",
        "plots/confusion.json",
        "plots/calibration.json",
        "plots/roc.png",
        "plots/confusion.png",
        "plots/calibration.png",
        "calibrator.json",
    ):
        assert (out / name).is_file(), name
    assert not list(out.rglob(".*.tmp"))
    ev = Evaluation.from_dict(json.loads((out / "evaluation.json").read_text()))
    assert ev.n == 750 and ev.metrics["roc_auc"].point > 0.75
    flat = json.loads((out / "metrics.json").read_text())
    assert flat["roc_auc"] == ev.metrics["roc_auc"].point
    assert (out / "plots" / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert set(json.loads((out / "plots" / "roc.json").read_text())[0]) == {"fpr", "tpr"}
    assert set(json.loads((out / "plots" / "confusion.json").read_text())[0]) == {
        "actual",
        "predicted",
    }
    preds = pd.read_parquet(out / "predictions.parquet")
    assert list(preds.columns) == ["y_true", "proba", "y_pred", "grp", "region"]
    assert preds["grp"].isna().sum() > 0  # missing sensitive values kept for the fairness stage
    assert ((preds["proba"] >= 0.5).astype(int) == preds["y_pred"]).all()
    printed = capsys.readouterr().out
    assert "roc_auc" in printed and "95% CI" in printed


def test_the_calibrator_is_kept_with_the_logged_model_once(tmp_path, capsys):
    """The calibrator fitted on the held-out rows joins the logged model's files (so the gate's
    digests and the version's signature cover it), as plain JSON; a rerun leaves it be."""
    import mlflow
    import mlflow.artifacts
    import mlflow.sklearn

    from pipelines.edges import tracking
    from pipelines.files import write_json
    from pipelines.serve.model import load_sklearn
    from pipelines.serve.trust import file_digests
    from pipelines.stages.evaluate.calibration import CALIBRATOR_FILE, Calibrator

    (tmp_path / "ws").mkdir()
    ws = write_workspace(tmp_path / "ws")
    params = load_params(ws)
    tracking.setup(params)
    model = load_sklearn(params.paths.model)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            sk_model=model, name="model", skops_trusted_types=tracking.trusted_types(model),
            pip_requirements=["scikit-learn"],
        )  # fmt: skip
    write_json(params.paths.train_record, {"model_uri": info.model_uri})
    assert main(["--params", str(ws)]) == 0
    assert f"added to {info.model_uri}" in capsys.readouterr().out
    got = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=info.model_uri, dst_path=str(tmp_path / "dl"),
            tracking_uri=params.tracking_uri,
        )
    )  # fmt: skip
    kept = json.loads((got / CALIBRATOR_FILE).read_text())
    assert kept == json.loads(params.paths.evaluate_out().calibrator.read_text())
    cal = Calibrator.from_dict(kept)
    assert cal.rows == 750 and 0 < cal.apply(np.array([0.5]))[0] < 1
    assert CALIBRATOR_FILE in file_digests(got)  # what the gate records and register signs
    assert main(["--params", str(ws)]) == 0
    assert f"already kept with {info.model_uri}" in capsys.readouterr().out


def test_main_with_explicit_paths(workspace, tmp_path):
    data = workspace.parent / "data" / "prepared" / "reference.parquet"
    model = workspace.parent / "models" / "model"
    out = tmp_path / "elsewhere"
    args = ["--params", str(workspace), "--data", str(data), "--model", str(model)]
    assert main([*args, "--out", str(out)]) == 0
    assert json.loads((out / "evaluation.json").read_text())["n"] == 750


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--data", "nowhere.parquet"], "nowhere.parquet: file not found"),
        (["--model", "no-model-here"], "not an MLflow model folder"),
    ],
)
def test_main_bad_input_exits_2_with_one_line(workspace, tmp_path, capsys, extra, message):
    assert main(["--params", str(workspace), "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evaluate: error:") and message in err and "\n" not in err


def test_too_little_data_is_recorded_not_an_error(workspace, tmp_path, capsys):
    """Single-class held-out rows (or one row copied many times) are too little evidence: the
    stage writes an unmeasured evaluation and exits 0, and the gate says "not enough evidence"
    (it exited 2 and stopped the night before)."""
    df = pd.read_parquet(workspace.parent / "data" / "prepared" / "current.parquet")
    only_no = tmp_path / "only_no.parquet"
    df[df["label"] == "no"].to_parquet(only_no)
    assert main(["--params", str(workspace), "--data", str(only_no), "--out", str(tmp_path)]) == 0
    assert "not measured" in capsys.readouterr().out
    ev = Evaluation.from_dict(json.loads((tmp_path / "evaluation.json").read_text()))
    assert "single class" in ev.note and math.isnan(ev.metrics["roc_auc"].point)
    copies = tmp_path / "copies.parquet"
    pd.concat([df.head(1)] * 879, ignore_index=True).to_parquet(copies)
    out = tmp_path / "copies"
    assert main(["--params", str(workspace), "--data", str(copies), "--out", str(out)]) == 0
    ev = Evaluation.from_dict(json.loads((out / "evaluation.json").read_text()))
    assert ev.n == 879 and ev.note


def test_copies_of_a_row_count_once(workspace, tmp_path):
    df = pd.read_parquet(workspace.parent / "data" / "prepared" / "current.parquet")
    doubled = tmp_path / "doubled.parquet"
    pd.concat([df, df], ignore_index=True).to_parquet(doubled)
    assert main(["--params", str(workspace), "--data", str(doubled), "--out", str(tmp_path)]) == 0
    ev = Evaluation.from_dict(json.loads((tmp_path / "evaluation.json").read_text()))
    assert ev.n == 2 * len(df) and ev.distinct_rows == len(df.drop_duplicates())


def test_main_bad_params_exits_2(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text("dataset: [1, 2]\n")
    assert main(["--params", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("evaluate: error:")
