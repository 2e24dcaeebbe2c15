"""The one code path that turns records into probabilities, shared by the server and the gate.

The gate's serving check loads a model version through :func:`load_scorer` and compares its
predictions with the offline ones, so a model that cannot be served is never promoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import DatasetConfig
from pipelines.data import feature_frame


@dataclass
class Scorer:
    model: Any
    dataset: DatasetConfig
    model_uri: str

    def predict_proba(self, data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Probability of the positive label for each record."""
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame.from_records(data)
        X = feature_frame(frame, self.dataset)
        return np.asarray(self.model.predict_proba(X)[:, 1], dtype=np.float64)


def load_scorer(model_uri: str, dataset: DatasetConfig) -> Scorer:
    """Load a model (``models:/name@alias``, ``runs:/...`` or a local folder) for scoring."""
    import mlflow.sklearn

    return Scorer(mlflow.sklearn.load_model(model_uri), dataset, model_uri)


def serving_check(
    scorer: Scorer, frame: pd.DataFrame, expected: np.ndarray, tol: float = 1e-6
) -> tuple[bool, str]:
    """Do the served predictions equal the offline ones on ``frame``?"""
    got = scorer.predict_proba(frame)
    if got.shape != expected.shape:
        return False, f"served {got.shape} predictions for {expected.shape} offline ones"
    diff = float(np.max(np.abs(got - expected))) if len(got) else 0.0
    ok = diff <= tol
    return ok, (
        f"{scorer.model_uri}: {len(got)} predictions, max |served - offline| = {diff:.2e}"
        f" ({'within' if ok else 'beyond'} {tol:g})"
    )
