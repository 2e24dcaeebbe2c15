"""Exact per-feature contributions of a gradient-boosted tree model: path-dependent TreeSHAP,
in numpy, over all leaves of all trees at once.

For one leaf with value ``v`` whose path splits on the distinct columns ``U`` (``d = |U|``), let
``z_j`` be the share of the training rows that follow the path's splits on column ``j`` (the
product of child/parent covers over its repeated splits) and ``o_j`` whether the row satisfies
them. The path-dependent expectation of the leaf given the columns ``S`` is
``v * prod_{j in S} o_j * prod_{j in U - S} z_j``, and the Shapley value of column ``i`` is

    v * (o_i - z_i) * sum_k c_k * k! (d-k-1)! / d!,  c: coefficients of prod_{j!=i}(z_j + o_j t).

Since ``k! (d-k-1)! / d!`` is the Beta integral of ``s^k (1-s)^(d-1-k)`` over [0, 1], the sum is
``integral_0^1 prod_{j != i} (z_j + (o_j - z_j) s) ds``: a polynomial of degree ``d - 1`` in
``s``, which Gauss-Legendre quadrature with ``ceil(d/2)`` nodes integrates exactly. Every leaf's
columns are padded (``z = o = 1``: a factor 1, no contribution) and the work is a handful of
array operations. The contributions add up, with the expected value (the cover-weighted mean of
the leaf values plus the baseline), to the model's raw margin.

Columns of the encoded matrix are summed into the original feature they come from. Reads the
trees' private node arrays (fields listed in :mod:`pipelines.serve.internals`); trees with native
categorical splits are not explained. Pure numpy: this module runs inside the serving image and
in the gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.serve.inputs import InputError

EXPLAIN_MAX_RECORDS = 100  # records one /predict?explain=k request may ask explanations for
_CHUNK_CELLS = 4_000_000  # rows x leaves x nodes x columns per chunk: ~32 MB of float64


@dataclass
class _Bucket:
    """Leaves whose paths have about as many distinct columns, padded to ``D`` of them; arrays
    are slot-major (slot, leaf) so each slot's numbers are contiguous."""

    column: np.ndarray  # (D, P) encoded column of each slot (0 for padding)
    group: np.ndarray  # (D, P) original feature of each slot (0 for padding)
    lo: np.ndarray  # (D, P) the row follows the path when lo < x <= hi
    hi: np.ndarray
    nan_ok: np.ndarray  # (D, P) a missing value follows the path
    z: np.ndarray  # (D, P) cover fraction (1 for padding)
    value: np.ndarray  # (P,)
    w: np.ndarray  # (Q,) quadrature weights on [0, 1]
    off: np.ndarray  # (Q, D, P) the slot's factor z (1 - s) at each node s, row off the path
    on: np.ndarray  # (Q, D, P) the slot's factor z + (1 - z) s, row on the path


@dataclass
class TreeExplainer:
    """A fitted binary gradient-boosted tree model as TreeSHAP tables."""

    features: tuple[str, ...]  # the original features, in output order
    expected_value: float  # raw margin with no feature known
    buckets: list[_Bucket]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(rows, features) contributions to the raw margin for the preprocessed ``X``."""
        X = np.asarray(X, dtype=np.float64)
        n, F = X.shape[0], len(self.features)
        out = np.zeros((n, F))
        for b in self.buckets:
            D, P = b.column.shape
            step = max(1, _CHUNK_CELLS // max(1, P * D * len(b.w)))
            for a in range(0, n, step):
                out[a : a + step] += _bucket_contributions(b, X[a : a + step], F)
        return out

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The raw margin the contributions add up to (expected value + their sum)."""
        return np.asarray(self.expected_value + self.contributions(X).sum(axis=1))


def _bucket_contributions(b: _Bucket, X: np.ndarray, F: int) -> np.ndarray:
    n = X.shape[0]
    D = b.column.shape[0]
    xs = X[:, b.column]  # (n, D, P)
    o = (xs > b.lo) & (xs <= b.hi)
    missing = np.isnan(xs)
    if missing.any():
        o = np.where(missing, b.nan_ok, o)
    f = np.where(o[:, None], b.on, b.off)  # (n, Q, D, P)
    total = f[:, :, 0].copy()  # (n, Q, P): the product over the slots
    for j in range(1, D):
        total *= f[:, :, j]
    # the product over the other slots (every factor is > 0 at the interior nodes), integrated
    integral = total[:, 0, None] / f[:, 0] * b.w[0]  # (n, D, P)
    for q in range(1, len(b.w)):
        integral += total[:, q, None] / f[:, q] * b.w[q]
    phi = (o - b.z) * integral * b.value
    ids = (b.group.ravel()[None, :] + F * np.arange(n)[:, None]).ravel()
    return np.bincount(ids, weights=phi.ravel(), minlength=n * F).reshape(n, F)


def tree_explainer(
    clf: Any, column_features: Sequence[int | None], features: Sequence[str]
) -> TreeExplainer | None:
    """TreeSHAP tables of a binary HistGradientBoostingClassifier; ``column_features[c]`` is the
    index (into ``features``) of the original feature of encoded column ``c``. None when the
    trees cannot be explained (multi-class, categorical splits, a split on an unmapped column)."""
    preds = getattr(clf, "_predictors", None)
    if not preds or any(len(p) != 1 for p in preds):
        return None
    nodes_list = [p[0].nodes for p in preds]
    if any(n["is_categorical"].any() for n in nodes_list):
        return None
    baseline = np.asarray(clf._baseline_prediction, dtype=np.float64).ravel()
    if baseline.shape != (1,):
        return None
    leaves: list[tuple[float, dict[int, list[float]]]] = []
    for nodes in nodes_list:
        leaves += _leaf_paths(nodes)
    expected = float(baseline[0])
    for value, cols in leaves:
        expected += value * float(np.prod([c[3] for c in cols.values()]))
    for _, cols in leaves:
        for c in cols:
            if c >= len(column_features) or column_features[c] is None:
                return None
    by_width: dict[int, list[tuple[float, dict[int, list[float]]]]] = {}
    for leaf in leaves:
        # buckets of even widths (d/2 quadrature nodes either way): little padding, few buckets
        d = len(leaf[1])
        width = d + d % 2 if d > 1 else 1
        by_width.setdefault(width, []).append(leaf)
    buckets = [_bucket(w, group, column_features) for w, group in sorted(by_width.items())]
    return TreeExplainer(tuple(features), expected, buckets)


def _leaf_paths(nodes: np.ndarray) -> list[tuple[float, dict[int, list[float]]]]:
    """Each leaf's value and, per column split on its path, [lo, hi, nan_ok, cover fraction]."""
    out: list[tuple[float, dict[int, list[float]]]] = []
    stack: list[tuple[int, dict[int, list[float]]]] = [(0, {})]
    while stack:
        k, cols = stack.pop()
        nd = nodes[k]
        if nd["is_leaf"]:
            out.append((float(nd["value"]), cols))
            continue
        c, thr = int(nd["feature_idx"]), float(nd["num_threshold"])
        nan_left = bool(nd["missing_go_to_left"])
        parent = float(nd["count"])
        for child, left in ((int(nd["left"]), True), (int(nd["right"]), False)):
            lo, hi, nan_ok, z = cols.get(c, [-np.inf, np.inf, 1.0, 1.0])
            share = float(nodes[child]["count"]) / parent if parent > 0 else 0.0
            if left:
                entry = [lo, min(hi, thr), float(nan_ok and nan_left), z * share]
            else:
                entry = [max(lo, thr), hi, float(nan_ok and not nan_left), z * share]
            stack.append((child, {**cols, c: entry}))
    return out


def _bucket(
    width: int,
    leaves: list[tuple[float, dict[int, list[float]]]],
    column_features: Sequence[int | None],
) -> _Bucket:
    P = len(leaves)
    column = np.zeros((width, P), dtype=np.intp)
    group = np.zeros((width, P), dtype=np.intp)
    lo = np.full((width, P), -np.inf)
    hi = np.full((width, P), np.inf)
    nan_ok = np.ones((width, P), dtype=bool)
    z = np.ones((width, P))
    value = np.zeros(P)
    for p, (v, cols) in enumerate(leaves):
        value[p] = v
        for j, (c, (a, b, ok, share)) in enumerate(sorted(cols.items())):
            g = column_features[c]
            assert g is not None
            column[j, p], group[j, p] = c, g
            lo[j, p], hi[j, p], nan_ok[j, p], z[j, p] = a, b, bool(ok), share
    # an empty child (never in a fitted tree): keep every factor > 0 for the division
    z = np.maximum(z, np.finfo(np.float64).tiny)
    q = max(1, -(-width // 2))
    x, w = np.polynomial.legendre.leggauss(q)
    s = (x + 1) / 2
    s = s[:, None, None]
    off = z * (1 - s)
    on = z + (1 - z) * s
    return _Bucket(column, group, lo, hi, nan_ok, z, value, w / 2, off, on)


# --------------------------------------------------------------------------- reading them
def explain_option(query: bytes, n_records: int) -> int:
    """``k`` from a request's ``?explain=k`` (0: not asked). ``k`` is a positive integer (more
    than the features: all of them); at most :data:`EXPLAIN_MAX_RECORDS` records per request."""
    if b"explain" not in query:
        return 0
    from urllib.parse import parse_qs

    given = parse_qs(query.decode("latin-1")).get("explain")
    if not given:
        return 0
    text = given[-1]
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"explain must be a positive integer, got {text[:20]!r}", "explain")
    if n_records > EXPLAIN_MAX_RECORDS:
        raise InputError(
            f"explanations for {n_records} records: at most {EXPLAIN_MAX_RECORDS} per request",
            "explain",
            "too_many_to_explain",
        )
    return min(int(text), 10_000)


def top_contributions(
    explainer: TreeExplainer, phi: np.ndarray, records: Sequence[Mapping[str, Any]], k: int
) -> list[dict[str, Any]]:
    """Per record: the base value and the ``k`` largest contributions by magnitude, each with
    the feature's value in the record (JSON-ready)."""
    out = []
    names = explainer.features
    for row, rec in zip(phi, records, strict=True):
        order = np.argsort(-np.abs(row), kind="stable")[:k]
        out.append(
            {
                "base_value": explainer.expected_value,
                "contributions": [
                    {
                        "feature": names[i],
                        "value": rec.get(names[i]),
                        "contribution": float(row[i]),
                    }
                    for i in order
                ],
            }
        )
    return out


def global_importance(explainer: TreeExplainer, X: np.ndarray) -> dict[str, float]:
    """Mean |contribution| per original feature over the rows of ``X``, largest first."""
    if len(X) == 0:
        return {}
    mean = np.abs(explainer.contributions(X)).mean(axis=0)
    order = np.argsort(-mean, kind="stable")
    return {explainer.features[i]: float(mean[i]) for i in order}


def ranking_ndcg(reference: Mapping[str, float], other: Mapping[str, float]) -> float:
    """nDCG of ``other``'s ranking of the features, with ``reference``'s importances as the
    relevance: 1 when both rank the features the same (ties aside), lower as the features the
    reference finds important fall down the other's ranking."""
    gains = {f: max(float(v), 0.0) for f, v in reference.items()}
    ideal = sorted(gains.values(), reverse=True)
    ranked = sorted(other, key=lambda f: -float(other[f]))
    ranked += [f for f in sorted(gains, key=lambda f: -gains[f]) if f not in other]
    discount = 1.0 / np.log2(np.arange(2, len(ranked) + 2))
    idcg = float(np.dot(ideal, discount[: len(ideal)]))
    if idcg <= 0:
        return 1.0
    dcg = float(np.dot([gains.get(f, 0.0) for f in ranked], discount[: len(ranked)]))
    return dcg / idcg


def rank_changes(
    reference: Mapping[str, float], other: Mapping[str, float], top: int = 5
) -> list[dict[str, Any]]:
    """The features whose rank moved most between ``reference`` and ``other`` (1 = first)."""

    def ranks(imp: Mapping[str, float]) -> dict[str, int]:
        return {f: r for r, f in enumerate(sorted(imp, key=lambda f: -float(imp[f])), 1)}

    ra, rb = ranks(reference), ranks(other)
    moved: list[dict[str, Any]] = [
        {
            "feature": f,
            "reference_rank": ra[f],
            "rank": rb[f],
            "reference_importance": float(reference[f]),
            "importance": float(other[f]),
        }
        for f in ra
        if f in rb and ra[f] != rb[f]
    ]
    moved.sort(key=lambda m: (-abs(m["rank"] - m["reference_rank"]), m["reference_rank"]))
    return moved[:top]


@dataclass(frozen=True)
class RankingComparison:
    """How alike two importance rankings of the same features are: the nDCG of the second
    against the first (:func:`ranking_ndcg`), the features that moved most, and whether the
    nDCG fell below ``bound``. ``ndcg`` is None when there was nothing to compare (``note``
    says why). The gate (challenger against champion) and the monitor (live against
    reference) each keep the two rankings beside it under their own names."""

    ndcg: float | None
    bound: float
    rows: int
    changes: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def flagged(self) -> bool:
        return self.ndcg is not None and self.ndcg < self.bound


def compare_rankings(
    reference: Mapping[str, float] | None,
    other: Mapping[str, float] | None,
    bound: float,
    rows: int,
    note: str = "",
) -> RankingComparison:
    """Pure: ``other``'s ranking against ``reference``'s; not compared (``ndcg`` None, with
    ``note`` or a reason) when either is missing or empty."""
    if not reference or not other:
        why = note or ("nothing to compare with" if not reference else "nothing to compare")
        return RankingComparison(None, bound, rows, [], why)
    return RankingComparison(
        ranking_ndcg(reference, other), bound, rows, rank_changes(reference, other), note
    )
