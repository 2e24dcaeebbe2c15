"""The groups of a sensitive attribute: its values, or, for a number, the range it falls in.

One function, :func:`sensitive_groups`, used by everything that groups rows by a sensitive
attribute (the fairness stage, the gate's view of the champion, the canary's arms), so a group
has one name everywhere. A numeric attribute is binned as ``fairness.bins`` says: fixed
``edges``, or ``quantiles`` of the rows being grouped (the gate judges champion and challenger
on the same rows, so both get the same groups). Groups are named by their range, ``[25, 45)``;
an attribute with more groups than ``fairness.max_groups`` is refused with the key to set, and
so is an intersection of attributes (:func:`cross_groups`, ``"Female x White"``) with more.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import numpy as np
import pandas as pd

from pipelines.config import BinsConfig, FairnessConfig

INTERSECTION = " x "  # crossed attributes and their groups: "sex x race", "Female x White"


class GroupingError(ValueError):
    """A sensitive attribute that cannot be grouped as configured; names the attribute."""


def _number(x: float) -> str:
    return f"{x:g}"


def bin_edges(values: np.ndarray, bins: BinsConfig) -> np.ndarray:
    """The configured edges, or the inner quantiles of ``values`` (repeated ones once)."""
    if bins.edges is not None:
        return np.asarray(bins.edges, dtype=np.float64)
    assert bins.quantiles is not None  # the config requires one of the two
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.empty(0)
    inner = np.quantile(present, np.arange(1, bins.quantiles) / bins.quantiles)
    return np.unique(inner)


def range_names(edges: np.ndarray) -> list[str]:
    """``(-inf, a)``, ``[a, b)``, ..., ``[z, inf)``: one name per bin, left edge included."""
    bounds = ["-inf", *(_number(e) for e in edges), "inf"]
    return [f"{'(' if i == 0 else '['}{lo}, {hi})" for i, (lo, hi) in enumerate(pairwise(bounds))]


def sensitive_groups(column: pd.Series, cfg: FairnessConfig) -> pd.Series:
    """``column``'s groups: its values, or its bins (``fairness.bins.<name>``) named by their
    range; missing stays missing. More distinct groups than ``fairness.max_groups``: an error
    naming the attribute and what to set."""
    name = str(column.name)
    bins = cfg.bins.get(name)
    if bins is None:
        n = column.nunique(dropna=True)
        if n > cfg.max_groups:
            raise GroupingError(
                f"sensitive attribute {name!r} has {n} distinct values, more than "
                f"fairness.max_groups ({cfg.max_groups}): group a number with "
                f"fairness.bins.{name} ({{edges: [...]}} or {{quantiles: N}})"
            )
        return column
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    text = column.notna().to_numpy() & np.isnan(values)
    if text.any():
        example = column[text].iloc[0]
        raise GroupingError(
            f"sensitive attribute {name!r} is binned (fairness.bins.{name}) but holds "
            f"{int(text.sum())} value(s) that are not numbers, e.g. {example!r}"
        )
    edges = bin_edges(values, bins)
    names = np.array(range_names(edges), dtype=object)
    out = np.full(len(values), None, dtype=object)
    present = ~np.isnan(values)
    out[present] = names[np.searchsorted(edges, values[present], side="right")]
    return pd.Series(out, index=column.index, name=column.name, dtype=object)


def cross_groups(labels: Mapping[str, np.ndarray], cfg: FairnessConfig) -> np.ndarray:
    """The groups of two or more attributes crossed (each attribute's labels, as grouped by
    :func:`sensitive_groups`), named ``"Female x White"``. More distinct groups than
    ``fairness.max_groups``: an error naming the intersection and the keys that decide it."""
    names = list(labels)
    crossed = np.asarray(labels[names[0]]).astype(str)
    for name in names[1:]:
        other = np.asarray(labels[name]).astype(str)
        crossed = np.char.add(np.char.add(crossed, INTERSECTION), other)
    n = len(np.unique(crossed))
    if n > cfg.max_groups:
        raise GroupingError(
            f"the intersection {INTERSECTION.join(names)!r} has {n} groups, more than "
            f"fairness.max_groups ({cfg.max_groups}): bin its attributes (fairness.bins), raise "
            "fairness.max_groups, or leave the intersection out (fairness.intersection and "
            "gate.fairness_include_intersection false)"
        )
    return crossed
