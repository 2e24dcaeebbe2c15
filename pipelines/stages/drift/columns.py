"""What the drift stage tests, column by column, and on which values.

:func:`column_tests` turns the ``drift`` params into one :class:`ColumnTest` per feature and one
for the target; :func:`usable` gives the values a statistic sees (missing and infinite values
dropped, as Evidently drops them); :func:`is_drifted` is Evidently's verdict for a score.
Both engines and the report share these, so they score the same columns on the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pipelines.config import ConfigError, DatasetConfig, DriftConfig

Kind = Literal["numeric", "categorical"]

# Evidently's decision rule per method: distances drift at or above the threshold, p-values
# at or below (K-S) / strictly below (chi-square) the significance level.
RULES: dict[str, str] = {
    "wasserstein": ">=",
    "jensenshannon": ">=",
    "psi": ">=",
    "ks": "<=",
    "chisquare": "<",
}
_NUMERIC_ONLY = {"wasserstein", "ks"}


@dataclass(frozen=True)
class ColumnTest:
    """What to compute for one column: its type, method and threshold."""

    column: str
    kind: Kind
    method: str
    threshold: float


@dataclass(frozen=True, eq=False)
class ColumnData:
    """One column to score: its test and each side's usable values (missing and infinite values
    dropped, as Evidently drops them), never empty."""

    test: ColumnTest
    reference: pd.Series
    current: pd.Series


def column_tests(dataset: DatasetConfig, cfg: DriftConfig) -> tuple[list[ColumnTest], ColumnTest]:
    """The feature tests (numeric first, then categorical) and the target test, from config."""
    if cfg.categorical_method in _NUMERIC_ONLY:
        raise ConfigError(
            f"drift.categorical_method: {cfg.categorical_method!r} works on numeric columns only "
            "(use jensenshannon, chisquare or psi)"
        )
    features = [
        ColumnTest(c, "numeric", cfg.numeric_method, cfg.numeric_threshold)
        for c in dataset.features.numeric
    ] + [
        ColumnTest(c, "categorical", cfg.categorical_method, cfg.categorical_threshold)
        for c in dataset.features.categorical
    ]
    target = ColumnTest(dataset.target, "categorical", cfg.target_method, cfg.target_threshold)
    return features, target


def is_drifted(method: str, score: float, threshold: float) -> bool:
    """Evidently's verdict for a score of this method."""
    rule = RULES[method]
    if rule == ">=":
        return bool(score >= threshold)
    if rule == "<=":
        return bool(score <= threshold)
    return bool(score < threshold)


def usable(s: pd.Series) -> pd.Series:
    """The values a statistic sees: missing and infinite ones dropped.

    Plain numeric columns come back as float64 arrays; text columns as categoricals, so each
    side is hashed once and every count after that is a ``bincount`` of small integer codes
    (at a million rows this is most of the fast engine's time). The values are the same either
    way; only their dtype differs.
    """
    if s.dtype.kind in "iuf":
        v = s.to_numpy(dtype=np.float64)
        return pd.Series(v[np.isfinite(v)], name=s.name, copy=False)
    if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype | pd.StringDtype):
        cat = s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")
        codes = cat.cat.codes.to_numpy()
        kept = pd.Categorical.from_codes(codes[codes >= 0], dtype=cat.dtype)
        return pd.Series(kept, name=s.name, copy=False)
    if pd.api.types.is_numeric_dtype(s):
        s = s.replace([np.inf, -np.inf], np.nan)
    return s.dropna()
