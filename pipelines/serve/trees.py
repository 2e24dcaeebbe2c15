"""A fitted binary HistGradientBoostingClassifier scored without scikit-learn's per-call cost.

First choice: every tree walked for every row in one call compiled by numba
(:mod:`pipelines.serve.treewalk`; 1 record in about 4 µs, 100 records in about 0.6 ms on 200
trees). Without numba, two numpy paths, described here. For a handful of rows, scikit-learn's
predictor costs one Cython call per tree. Here all trees are padded to the same number of
internal nodes and leaves, so a batch is scored with a few numpy calls: every node's decision
at once, a matrix product of those decisions with each leaf's path (how many left turns lead
to it), and one gather of the leaf values; then the trees are added in scikit-learn's order,
starting from the baseline, so the raw score is the same float64 sum. Larger batches walk
each tree with scikit-learn's own compiled routine (``_predict_from_raw_data``, what its
predictor calls per tree), called directly; the sum is the same, in the same order.

Reads private attributes of the fitted classifier (listed in :mod:`pipelines.serve.internals`);
trees with native categorical splits are not compiled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.serve.treewalk import FlatTrees, flat_trees

SMALL_BATCH = 64  # rows: the batched lookup wins up to this, the per-tree walk above
_NO_BITSETS = np.zeros((0, 8), dtype=np.uint32)  # no categorical feature is known
_NO_MAP = np.zeros(0, dtype=np.uint32)


@dataclass
class Padded:
    """All trees padded to the same number of internal nodes and leaves (the numpy lookup)."""

    feature: np.ndarray  # (T*I,) feature of each internal node
    threshold: np.ndarray  # (T*I,) go left when x <= threshold
    paths: np.ndarray  # (T, I, L) +1 leaf under the left child, -1 right, 0 not below
    lefts: np.ndarray  # (T, L) number of left turns to reach each leaf (-1: padding)
    values: np.ndarray  # (T*L,) leaf values
    n_trees: int
    n_internal: int
    n_leaves: int

    def raw(self, X: np.ndarray, baseline: float) -> np.ndarray:
        n = X.shape[0]
        T, I, L = self.n_trees, self.n_internal, self.n_leaves  # noqa: E741
        dec = (X[:, self.feature] <= self.threshold).view(np.uint8).astype(np.float32)
        S = np.matmul(dec.reshape(n, T, I).transpose(1, 0, 2), self.paths)  # (T, n, L)
        leaf = (S == self.lefts[:, None, :]).argmax(axis=2).T  # (n, T)
        terms = np.empty((n, T + 1))
        terms[:, 0] = baseline
        terms[:, 1:] = self.values[leaf + np.arange(T) * L]
        # scikit-learn adds the trees one by one, in order: a cumulative sum does the same
        return np.cumsum(terms, axis=1)[:, -1]


def padded(nodes_list: list[np.ndarray]) -> Padded:
    """scikit-learn's node arrays (numerical splits only) as padded decision/leaf tables."""
    T = len(nodes_list)
    I = max(1, max(int((n["is_leaf"] == 0).sum()) for n in nodes_list))  # noqa: E741
    L = max(int((n["is_leaf"] != 0).sum()) for n in nodes_list)
    feature = np.zeros((T, I), dtype=np.intp)
    threshold = np.full((T, I), np.inf)
    paths = np.zeros((T, I, L), dtype=np.float32)
    lefts = np.full((T, L), -1.0, dtype=np.float32)
    values = np.zeros((T, L))
    for t, nodes in enumerate(nodes_list):
        internal: dict[int, int] = {}
        n_leaf = 0
        stack: list[tuple[int, list[tuple[int, int]]]] = [(0, [])]
        while stack:
            k, path = stack.pop()
            nd = nodes[k]
            if nd["is_leaf"]:
                values[t, n_leaf] = nd["value"]
                lefts[t, n_leaf] = sum(1 for _, s in path if s > 0)
                for a, s in path:
                    paths[t, a, n_leaf] = s
                n_leaf += 1
                continue
            a = internal.setdefault(k, len(internal))
            feature[t, a] = int(nd["feature_idx"])
            threshold[t, a] = float(nd["num_threshold"])
            stack.append((int(nd["right"]), [*path, (a, -1)]))
            stack.append((int(nd["left"]), [*path, (a, 1)]))
    return Padded(feature.ravel(), threshold.ravel(), paths, lefts, values.ravel(), T, I, L)


@dataclass
class TreeTables:
    """All trees of a HistGradientBoostingClassifier, as the compiled walk reads them or, where
    it is not there, as padded numpy tables and scikit-learn's per-tree routine."""

    baseline: float
    nodes: list[np.ndarray] = field(default_factory=list)  # each tree's scikit-learn nodes
    cat_bitsets: list[np.ndarray] = field(default_factory=list)  # (none: no categorical split)
    flat: FlatTrees | None = None  # every tree in one compiled walk (None: numba unavailable)
    padded: Padded | None = None  # the numpy lookup (built only without the compiled walk)
    walker: str = "tables"  # how a batch is scored: "compiled walk" or "tables" and why

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The raw score by the padded tables (built on first use)."""
        if self.padded is None:
            self.padded = padded(self.nodes)
        return self.padded.raw(X, self.baseline)

    def walk(self, X: np.ndarray) -> np.ndarray:
        """The raw score, each tree walked by scikit-learn's compiled routine, added in order
        from the baseline as scikit-learn adds them."""
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        X = np.ascontiguousarray(X, dtype=np.float64)
        total = np.zeros(X.shape[0])
        total += self.baseline
        out = np.empty(X.shape[0])
        for nodes, bits in zip(self.nodes, self.cat_bitsets, strict=True):
            _predict_from_raw_data(nodes, X, bits, _NO_BITSETS, _NO_MAP, 1, out)
            total += out
        return total


def tree_tables(clf: Any) -> TreeTables | None:
    """The classifier's trees ready to score; None when they cannot be (multi-class,
    categorical). The compiled walk when numba is there, else the padded tables."""
    preds = getattr(clf, "_predictors", None)
    if not preds or any(len(p) != 1 for p in preds):
        return None  # multi-class: not compiled
    nodes_list = [p[0].nodes for p in preds]
    if any(n["is_categorical"].any() for n in nodes_list):
        return None
    baseline = np.asarray(clf._baseline_prediction, dtype=np.float64).ravel()
    if baseline.shape != (1,):
        return None
    tables = TreeTables(float(baseline[0]), nodes_list, [p[0].raw_left_cat_bitsets for p in preds])
    flat = flat_trees(nodes_list, tables.baseline, int(clf.n_features_in_))
    if isinstance(flat, str):
        tables.padded, tables.walker = padded(nodes_list), f"tables ({flat})"
    else:
        tables.flat, tables.walker = flat, "compiled walk"
    return tables


def predict_proba(clf: Any, trees: TreeTables, X: np.ndarray) -> np.ndarray:
    """Positive-class probabilities of the preprocessed ``X``: every tree in one compiled walk
    when numba is there; else the tables for small batches, scikit-learn's per-tree routine for
    larger ones; then the model's own link."""
    if trees.flat is not None:
        raw = trees.flat.raw(X)
    else:
        raw = trees.raw(X) if X.shape[0] <= SMALL_BATCH else trees.walk(X)
    return np.asarray(clf._loss.predict_proba(raw[:, None])[:, 1], dtype=np.float64)
