"""The ``fast`` drift engine: Evidently's statistics with numpy/scipy, one column at a time.

Each method follows Evidently's own implementation (``evidently/legacy/calculations/stattests``):
normed Wasserstein, Jensen-Shannon and PSI on Evidently's bins, K-S and chi-square p-values. It
gives the same numbers (to ~1e-14) without the plots and summaries Evidently also builds per
column, which dominate its run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

from pipelines.stages.drift.columns import ColumnData, Kind, is_drifted

_N_BINS_MIN_UNIQUE = 20  # Evidently bins a numeric column by histogram above 20 distinct values


def score_column(reference: pd.Series, current: pd.Series, kind: Kind, method: str) -> float:
    """The drift score of one column, as Evidently computes it, with numpy/scipy only.

    Both series must already be free of missing and infinite values and non-empty.
    """
    if method == "wasserstein":
        return _wasserstein_norm(reference, current)
    if method == "ks":
        from scipy import stats

        r, c = _floats(reference), _floats(current)
        return float(stats.ks_2samp(r, c)[1])
    if method == "jensenshannon":
        from scipy.spatial import distance

        p, q = _binned(reference, current, kind, fill_zeroes=False)
        return float(distance.jensenshannon(p, q))
    if method == "psi":
        p, q = _binned(reference, current, kind, fill_zeroes=True)
        return float(np.sum((p - q) * np.log(p / q)))
    if method == "chisquare":
        return _chisquare_pvalue(reference, current)
    raise ValueError(f"unknown drift method {method!r}")


def scores_fast(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[ColumnData]
) -> list[tuple[float, bool]]:
    """The engine: (score, drifted) per column, in order (the frames are not needed)."""
    out = []
    for c in columns:
        t = c.test
        score = score_column(c.reference, c.current, t.kind, t.method)
        out.append((score, is_drifted(t.method, score, t.threshold)))
    return out


def _floats(s: pd.Series) -> np.ndarray:
    return cast(np.ndarray, s.to_numpy(dtype=np.float64))


def _wasserstein_norm(reference: pd.Series, current: pd.Series) -> float:
    """The first Wasserstein distance over the reference's (population) std, floored at 1e-3."""
    norm = max(float(np.std(_floats(reference))), 0.001)
    return _wasserstein(reference, current) / norm


def _wasserstein(u: pd.Series, v: pd.Series) -> float:
    """``scipy.stats.wasserstein_distance(u, v)``: the area between the two empirical CDFs.

    scipy sorts every value (three sorts of up to N values); here each side is counted per
    distinct value (hashing) and only the distinct values are sorted. The CDFs are the same
    integer counts over N at the same points, so the result equals scipy's up to summation
    order, and it is several times faster on columns with repeated values.
    """
    uc, vc = u.value_counts(sort=False), v.value_counts(sort=False)
    grid = np.union1d(uc.index.to_numpy(dtype=np.float64), vc.index.to_numpy(dtype=np.float64))
    u_cdf = np.cumsum(uc.reindex(grid, fill_value=0).to_numpy()) / len(u)
    v_cdf = np.cumsum(vc.reindex(grid, fill_value=0).to_numpy()) / len(v)
    return float(np.sum(np.abs(u_cdf[:-1] - v_cdf[:-1]) * np.diff(grid)))


def _value_counts(s: pd.Series) -> pd.Series:
    """Counts of the values present (a categorical's unused categories left out), most common
    first, indexed by plain values."""
    vc = s.value_counts()
    if isinstance(s.dtype, pd.CategoricalDtype):
        vc = vc[vc.to_numpy() > 0]
        vc.index = pd.Index(np.asarray(vc.index, dtype=object))
    return vc


def _counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Value counts of both sides over the union of their values (aligned)."""
    rc, cc = _value_counts(reference), _value_counts(current)
    keys = rc.index.append(cc.index[~cc.index.isin(rc.index)])
    return (
        rc.reindex(keys, fill_value=0).to_numpy(dtype=np.float64),
        cc.reindex(keys, fill_value=0).to_numpy(dtype=np.float64),
    )


def _binned(
    reference: pd.Series, current: pd.Series, kind: Kind, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: shares per bin (numeric, >20 distinct values in the
    reference: Sturges histogram over both sides) or per value, zeros optionally smoothed."""
    if kind == "numeric" and reference.nunique() > _N_BINS_MIN_UNIQUE:
        r, c = _floats(reference), _floats(current)
        edges = np.histogram_bin_edges(np.concatenate([r, c]), bins="sturges")
        p = np.histogram(r, edges)[0] / len(r)
        q = np.histogram(c, edges)[0] / len(c)
    else:
        rc, cc = _counts(reference, current)
        p, q = rc / len(reference), cc / len(current)
    if fill_zeroes:
        p, q = _fill_zeroes(p), _fill_zeroes(q)
    return p, q


def _fill_zeroes(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64, copy=True)
    smallest = x[x != 0].min()
    x[x == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return x


def _chisquare_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Chi-square goodness of fit of the current counts to the reference shares."""
    from scipy import stats

    rc, cc = _counts(reference, current)
    expected = rc * (len(current) / len(reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cc, expected)[1])
