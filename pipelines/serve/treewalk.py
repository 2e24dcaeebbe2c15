"""Every tree of a fitted gradient-boosted model walked for every row in one compiled call.

scikit-learn's predictor walks one tree per call: for a 100-record request on 200 trees, the
200 calls' own overhead (argument checks, a parallel region per call) costs as much as the
walking. Here the nodes of all trees are laid out in flat arrays (feature, threshold, where a
missing value goes, children, leaf flag, leaf value; the children renumbered into the one
array) and a loop compiled by numba walks each row through every tree, adding the leaf values
to the baseline in scikit-learn's order: the same comparisons (``x <= threshold``, a missing
value to the side the tree learned) and the same float64 additions, so the raw scores are
bit-identical to the model's (checked by the scorer's self-check on every load, and by tests).

numba is optional: without it (or when compiling fails) :func:`flat_trees` says why and the
scorer keeps its numpy tables and scikit-learn's per-tree routine. The compiled function is
built once per process, on first use, and called on a tiny input right away so that the first
request does not pay for compilation.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("pipelines.serve")

_LOCK = threading.Lock()
_KERNEL: Any = None
_KERNEL_ERROR = ""


def _compile() -> Any:
    import math

    import numba

    @numba.njit(nogil=True, cache=False)
    def walk_all(  # type: ignore[no-untyped-def]
        X, feature, threshold, nan_left, left, right, is_leaf, value, roots, baseline, out
    ):
        for i in range(X.shape[0]):
            total = 0.0
            total += baseline
            for t in range(roots.shape[0]):
                k = roots[t]
                while not is_leaf[k]:
                    x = X[i, feature[k]]
                    if math.isnan(x):
                        k = left[k] if nan_left[k] else right[k]
                    elif x <= threshold[k]:
                        k = left[k]
                    else:
                        k = right[k]
                total += value[k]
            out[i] = total

    return walk_all


def kernel() -> tuple[Any, str]:
    """The compiled walk (built once per process) and '' , or None and why it is not there."""
    global _KERNEL, _KERNEL_ERROR
    with _LOCK:
        if _KERNEL is None and not _KERNEL_ERROR:
            try:
                _KERNEL = _compile()
            except ImportError:
                _KERNEL_ERROR = "numba is not installed"
            except Exception as err:  # noqa: BLE001 - a compiler problem: keep the numpy path
                _KERNEL_ERROR = f"numba failed: {type(err).__name__}: {err}"
        return _KERNEL, _KERNEL_ERROR


@dataclass(frozen=True)
class FlatTrees:
    """All trees' nodes in flat arrays the compiled walk reads; ``raw`` is the model's raw
    score (its decision function) for a preprocessed matrix."""

    feature: np.ndarray  # (N,) int64
    threshold: np.ndarray  # (N,) float64: go left when x <= threshold
    nan_left: np.ndarray  # (N,) uint8: a missing value goes left
    left: np.ndarray  # (N,) int64, index into these arrays
    right: np.ndarray  # (N,) int64
    is_leaf: np.ndarray  # (N,) uint8
    value: np.ndarray  # (N,) float64 (leaves)
    roots: np.ndarray  # (T,) int64: each tree's first node
    baseline: float
    walk: Any  # the compiled function

    def raw(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty(X.shape[0])
        self.walk(
            X, self.feature, self.threshold, self.nan_left, self.left, self.right,
            self.is_leaf, self.value, self.roots, self.baseline, out,
        )  # fmt: skip
        return out


def flat_trees(nodes: list[np.ndarray], baseline: float, n_features: int) -> FlatTrees | str:
    """The trees (scikit-learn's node arrays, numerical splits only) ready for the compiled
    walk, warmed up on one row; or why they cannot be walked that way."""
    walk, why = kernel()
    if walk is None:
        return why
    sizes = np.array([len(n) for n in nodes], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    allnodes = np.concatenate(nodes)
    shift = np.repeat(roots, sizes)
    is_leaf = np.ascontiguousarray(allnodes["is_leaf"], dtype=np.uint8)
    left = np.where(is_leaf == 1, 0, allnodes["left"].astype(np.int64) + shift)
    right = np.where(is_leaf == 1, 0, allnodes["right"].astype(np.int64) + shift)
    feature = np.where(is_leaf == 1, 0, allnodes["feature_idx"].astype(np.int64))
    if len(feature) and (feature.min() < 0 or feature.max() >= n_features):
        return "a tree splits on a feature the preprocessed matrix does not have"
    flat = FlatTrees(
        np.ascontiguousarray(feature),
        np.ascontiguousarray(allnodes["num_threshold"], dtype=np.float64),
        np.ascontiguousarray(allnodes["missing_go_to_left"], dtype=np.uint8),
        np.ascontiguousarray(left),
        np.ascontiguousarray(right),
        is_leaf,
        np.ascontiguousarray(allnodes["value"], dtype=np.float64),
        roots,
        float(baseline),
        walk,
    )
    try:
        flat.raw(np.zeros((1, n_features)))  # compiles for these types now, not on a request
    except Exception as err:  # noqa: BLE001 - keep the numpy path
        return f"numba failed: {type(err).__name__}: {err}"
    return flat
