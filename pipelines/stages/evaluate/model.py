"""The model side of the evaluate stage: load a logged model, score rows with it, and keep the
per-row predictions (with the sensitive attributes) for the fairness stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import Params
from pipelines.stages.evaluate.result import EvaluationError


def load_model(model: str | Path, params: Params) -> Any:
    """Load an MLflow sklearn model from a folder, or from a ``models:/`` / ``runs:/`` URI, in the
    one format the project fixes (:func:`pipelines.serve.model.load_sklearn`: skops with the
    project's trusted types; never pickle, never the types ``MLmodel`` declares)."""
    import shutil
    import tempfile

    from pipelines.serve.model import load_sklearn

    ref = str(model)
    tmp: Path | None = None
    try:
        if ":/" in ref and not Path(ref).exists():
            import mlflow.artifacts

            tmp = Path(tempfile.mkdtemp(prefix="evaluate-model-"))
            folder = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=ref, dst_path=str(tmp), tracking_uri=params.tracking_uri
                )
            )
        elif not (Path(ref) / "MLmodel").is_file():
            raise EvaluationError(f"{ref}: not an MLflow model folder (no MLmodel file)")
        else:
            folder = Path(ref)
        return load_sklearn(folder)
    except EvaluationError:
        raise
    except Exception as err:  # noqa: BLE001 - any loader failure is reported with the model
        raise EvaluationError(f"{ref}: cannot load model: {type(err).__name__}: {err}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def positive_scores(model: Any, df: pd.DataFrame, params: Params) -> np.ndarray:
    """The model's probability of the positive class (label 1) for each row of ``df``."""
    from pipelines.stages.train import feature_frame

    try:
        proba = model.predict_proba(feature_frame(df, params.dataset))
    except Exception as err:  # noqa: BLE001 - report which model failed on which data
        raise EvaluationError(f"model cannot score the data: {type(err).__name__}: {err}") from None
    classes = list(getattr(model, "classes_", [0, 1]))
    if 1 not in classes:
        raise EvaluationError(f"model classes {classes} do not include the positive class 1")
    return np.asarray(proba[:, classes.index(1)], dtype=np.float64)


def distinct_row_ids(df: pd.DataFrame, params: Params) -> np.ndarray:
    """An id per row, equal for copies of one row (features and label alike): the bootstrap
    draws distinct rows, so copies count once."""
    columns = [c for c in (*params.dataset.features.all, params.dataset.target) if c in df]
    hashes = pd.util.hash_pandas_object(df[columns], index=False).to_numpy()
    return np.unique(hashes, return_inverse=True)[1]


def predictions_frame(
    df: pd.DataFrame, y: np.ndarray, proba: np.ndarray, params: Params
) -> pd.DataFrame:
    """Per-row predictions plus the sensitive attributes, for the fairness stage."""
    base = {"y_true", "proba", "y_pred"}
    clash = sorted(base & set(params.dataset.sensitive))
    if clash:
        raise EvaluationError(f"sensitive column name(s) {clash} clash with prediction columns")
    out = pd.DataFrame(
        {
            "y_true": y.astype(np.int64),
            "proba": proba,
            "y_pred": (proba >= params.evaluate.decision_threshold).astype(np.int64),
        }
    )
    for col in params.dataset.sensitive:
        out[col] = df[col].to_numpy()
    return out
