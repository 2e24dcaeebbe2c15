"""Scenario batches for exercising the nightly cycle on real data.

Each scenario draws rows from the dataset's published held-out file (already cleaned) and
changes them in one named way. Columns are chosen from the dataset config (params
``simulate``), never by name here:

- ``stable``           a plain random sample: no drift expected.
- ``covariate_drift``  rows with a numeric feature above a high quantile: the inputs shift.
- ``label_shift``      resampled so the positive label is far more common: the target shifts.
- ``corrupt``          quality and schema violations (see ``CORRUPTIONS``), for quarantine.
- ``biased``           positive labels of one sensitive group flipped to negative: a model
                       retrained on it learns to disfavour that group.

And for the live loop's traffic (``retrain demo-loop``), ``concept_change``: the outcomes follow
a changed relationship (labels flipped above a quantile of one numeric feature).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import ConceptConfig, DatasetConfig, Params, SimulateConfig
from pipelines.data import write_table

SCENARIOS = ("stable", "covariate_drift", "label_shift", "corrupt", "biased")
CORRUPTIONS = ("out_of_range", "unknown_category", "nulls", "missing_column", "wrong_type")


def _sample(
    df: pd.DataFrame, n: int, rng: np.random.Generator, weights: np.ndarray | None = None
) -> pd.DataFrame:
    replace = n > len(df)
    idx = rng.choice(len(df), size=n, replace=replace, p=weights)
    return df.iloc[idx].reset_index(drop=True)


def stable(
    df: pd.DataFrame, ds: DatasetConfig, cfg: SimulateConfig, rng: np.random.Generator
) -> pd.DataFrame:
    return _sample(df, cfg.rows, rng)


def covariate_drift(
    df: pd.DataFrame, ds: DatasetConfig, cfg: SimulateConfig, rng: np.random.Generator
) -> pd.DataFrame:
    col = cfg.covariate_column or ds.features.numeric[0]
    cut = df[col].quantile(cfg.covariate_quantile)
    return _sample(df[df[col] > cut], cfg.rows, rng)


def label_shift(
    df: pd.DataFrame, ds: DatasetConfig, cfg: SimulateConfig, rng: np.random.Generator
) -> pd.DataFrame:
    pos = (df[ds.target] == ds.positive_label).to_numpy()
    n_pos = int(round(cfg.rows * cfg.label_shift_positive_rate))
    return (
        pd.concat([_sample(df[pos], n_pos, rng), _sample(df[~pos], cfg.rows - n_pos, rng)])
        .sample(frac=1.0, random_state=int(rng.integers(2**31)))
        .reset_index(drop=True)
    )


def poison_group(df: pd.DataFrame, ds: DatasetConfig, cfg: SimulateConfig) -> tuple[str, str]:
    """The attribute and group to poison: from params, else the group least often positive."""
    attr = cfg.poison_attribute or ds.sensitive[0]
    if cfg.poison_group is not None:
        return attr, cfg.poison_group
    rates = (df[ds.target] == ds.positive_label).groupby(df[attr]).mean()
    counts = df[attr].value_counts()
    rates = rates[counts[rates.index] >= 100]
    return attr, str(rates.idxmin())


def biased(
    df: pd.DataFrame, ds: DatasetConfig, cfg: SimulateConfig, rng: np.random.Generator
) -> pd.DataFrame:
    out = _sample(df, cfg.biased_rows, rng)
    attr, group = poison_group(df, ds, cfg)
    hit = (out[attr] == group) & (out[ds.target] == ds.positive_label)
    flip = hit & (rng.random(len(out)) < cfg.poison_rate)
    negative = ds.negative_label or f"not {ds.positive_label}"
    out.loc[flip, ds.target] = negative
    return out


def concept_change(
    rows: pd.DataFrame, source: pd.DataFrame, ds: DatasetConfig, cfg: ConceptConfig, seed: int
) -> pd.DataFrame:
    """``rows`` whose outcomes follow a changed, learnable relationship
    (``simulate.loop.concept``): the labels of the rows above a quantile (over ``source``) of one
    numeric feature flipped, a ``flip_rate`` share of them (seeded); ``rows`` itself when no
    concept column is set."""
    if cfg.column is None:
        return rows
    if cfg.column not in ds.features.numeric:
        raise ValueError(
            f"simulate.loop.concept.column: {cfg.column!r} is not a numeric feature "
            f"{list(ds.features.numeric)}"
        )
    negative = ds.negative_label or next(
        v for v in source[ds.target].dropna().unique() if v != ds.positive_label
    )
    hit = (rows[cfg.column] > source[cfg.column].quantile(cfg.quantile)).to_numpy()
    hit &= np.random.default_rng(seed).random(len(rows)) < cfg.flip_rate
    y = rows[ds.target].to_numpy(dtype=object).copy()
    hit &= pd.notna(y)
    positive = y == ds.positive_label
    y[hit & positive] = negative
    y[hit & ~positive] = ds.positive_label
    return rows.assign(**{ds.target: y})


def corrupt(
    df: pd.DataFrame,
    ds: DatasetConfig,
    cfg: SimulateConfig,
    rng: np.random.Generator,
    kinds: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Apply each corruption in ``kinds`` (default ``cfg.corruptions``) to a stable sample."""
    out = _sample(df, cfg.rows, rng).astype({c: object for c in ds.features.numeric})
    n = len(out)
    some = rng.random(n) < 0.05  # 5% of rows for value-level problems
    num = ds.features.numeric[0]
    cat = ds.features.categorical[0] if ds.features.categorical else None
    for kind in kinds or cfg.corruptions:
        if kind == "out_of_range":
            out.loc[some, num] = -999.0
        elif kind == "unknown_category" and cat:
            out.loc[some, cat] = "__unseen_category__"
        elif kind == "nulls":
            col = ds.features.numeric[-1]
            out.loc[rng.random(n) < 0.5, col] = None
        elif kind == "missing_column":
            out = out.drop(columns=[ds.features.all[-1]])
        elif kind == "wrong_type":
            col = ds.features.numeric[min(1, len(ds.features.numeric) - 1)]
            out.loc[some, col] = "not-a-number"
        else:
            raise ValueError(f"unknown corruption {kind!r}; choose from {list(CORRUPTIONS)}")
    return out


GENERATORS: dict[str, Callable[..., pd.DataFrame]] = {
    "stable": stable,
    "covariate_drift": covariate_drift,
    "label_shift": label_shift,
    "corrupt": corrupt,
    "biased": biased,
}


def make_batch(
    source: pd.DataFrame, scenario: str, ds: DatasetConfig, cfg: SimulateConfig, seed: int
) -> pd.DataFrame:
    """Pure core: a scenario batch drawn from ``source``."""
    if scenario not in GENERATORS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {list(SCENARIOS)}")
    return GENERATORS[scenario](source, ds, cfg, np.random.default_rng(seed))


def write_scenario(
    params: Params, day: str, scenario: str, seed: int | None = None, fmt: str = "csv"
) -> Path:
    """Write ``landing/<day>.<fmt>`` for a scenario, drawn from the published held-out file;
    a CSV is written in the dataset's own format (``dataset.separator``, header, quoting)."""

    source = pd.read_parquet(params.paths.prepared_current)
    seed = params.simulate.seed if seed is None else seed
    day_seed = seed + int(day.replace("-", ""))
    batch = make_batch(source, scenario, params.dataset, params.simulate, day_seed)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown batch format {fmt!r} (csv or parquet)")
    path = params.path(params.nightly.landing) / f"{day}.{fmt}"
    return write_table(batch, path, params.dataset)  # in the dataset's own format
