"""The offline reference: a model's own ``predict_proba`` on the dataset's records.

What serving answers (the compiled scorer, :mod:`pipelines.serve.fastpath`) is held against
this reference: by the gate (:mod:`pipelines.stages.gate.evidence`, which scores with the
compiled scorer and checks it against the evaluation's offline predictions), by deploy's smoke
test, by ``retrain reproduce`` and by the parity tests. A registered version's model comes
from the one verifying load (:func:`pipelines.release.deploy.reference_scorer`).
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
