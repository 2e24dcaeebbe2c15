"""Synthetic live traffic for the canary tests: a population and the logged answers of an arm
whose scores separate the labels by a chosen strength."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from pipelines.config import Params


def population(n: int, seed: int) -> pd.DataFrame:
    """Requests with an outcome, sensitive attributes and a shared per-row noise term."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": (rng.random(n) < 0.3).astype(int),
            "sex": rng.choice(["Male", "Female"], n, p=[0.6, 0.4]),
            "race": rng.choice(["White", "Black"], n, p=[0.7, 0.3]),
            "age": rng.integers(18, 80, n),
            "noise": rng.normal(0.0, 1.0, n),
        }
    )


def answers(
    params: Params,
    pop: pd.DataFrame,
    arm: str,
    version: str,
    separation: float,
    seed: int,
    *,
    ids: str = "r",
    shared_noise: float = 0.0,
    female_shift: float = 0.0,
) -> pd.DataFrame:
    """The prediction log's rows (joined with outcomes) of one arm answering ``pop``.

    ``separation`` sets how well the model ranks (its ROC AUC); ``shared_noise`` the share of the
    per-row noise common to every model on the same request (it makes paired answers alike);
    ``female_shift`` moves the logits of one group (a fairness effect).
    """
    rng = np.random.default_rng(seed)
    own = rng.normal(0.0, 1.0, len(pop))
    noise = shared_noise * pop["noise"].to_numpy() + np.sqrt(1 - shared_noise**2) * own
    logit = separation * (2 * pop["y"].to_numpy() - 1) + noise - 0.8
    logit = logit + female_shift * (pop["sex"].to_numpy() == "Female")
    ds = params.dataset
    negative = ds.negative_label or f"not {ds.positive_label}"
    return pd.DataFrame(
        {
            "request_id": [f"{ids}{i // 2}" for i in range(len(pop))],
            "row": np.arange(len(pop)) % 2,
            "ts": pd.date_range(START, periods=len(pop), freq="s", tz="UTC"),
            "model_version": version,
            "arm": arm,
            "probability": 1.0 / (1.0 + np.exp(-logit)),
            "age": pop["age"].to_numpy(),
            "sex": pop["sex"].to_numpy(),
            "race": pop["race"].to_numpy(),
            "label": np.where(pop["y"] == 1, ds.positive_label, negative),
        }
    )


START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
