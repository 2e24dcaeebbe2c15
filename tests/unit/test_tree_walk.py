"""The compiled tree walk on hand-made trees: each comparison, each side a missing value goes,
the baseline and the order of the additions, and the reasons it steps aside."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.serve import treewalk

NODE = np.dtype(
    [("value", "<f8"), ("count", "<u4"), ("feature_idx", "<i8"), ("num_threshold", "<f8"),
     ("missing_go_to_left", "u1"), ("left", "<u4"), ("right", "<u4"), ("gain", "<f8"),
     ("depth", "<u4"), ("is_leaf", "u1"), ("bin_threshold", "u1"), ("is_categorical", "u1"),
     ("bitset_idx", "<u4")]
)  # fmt: skip


def _stump(feature: int, threshold: float, nan_left: bool, lo: float, hi: float) -> np.ndarray:
    """One split: x[feature] <= threshold -> ``lo``, else ``hi``; a missing value as learned."""
    t = np.zeros(3, dtype=NODE)
    t[0] = (0.0, 0, feature, threshold, int(nan_left), 1, 2, 0.0, 0, 0, 0, 0, 0)
    t[1]["is_leaf"], t[1]["value"] = 1, lo
    t[2]["is_leaf"], t[2]["value"] = 1, hi
    return t


def _leaf(value: float) -> np.ndarray:
    t = np.zeros(1, dtype=NODE)
    t[0]["is_leaf"], t[0]["value"] = 1, value
    return t


def _reference(trees: list[np.ndarray], baseline: float, X: np.ndarray) -> np.ndarray:
    """The walk written plainly: baseline first, then each tree's leaf value in order."""
    out = np.zeros(len(X))
    out += baseline
    for t in trees:
        vals = np.empty(len(X))
        for i, x in enumerate(X):
            k = 0
            while not t[k]["is_leaf"]:
                v = x[t[k]["feature_idx"]]
                go_left = (
                    bool(t[k]["missing_go_to_left"]) if np.isnan(v) else v <= t[k]["num_threshold"]
                )
                k = int(t[k]["left"] if go_left else t[k]["right"])
            vals[i] = t[k]["value"]
        out += vals
    return out


@pytest.fixture(scope="module")
def walkable():
    walk, why = treewalk.kernel()
    if walk is None:
        pytest.skip(why)


def test_each_side_and_missing_values_as_learned(walkable):
    trees = [_stump(0, 1.0, True, -1.0, 1.0), _stump(1, -0.5, False, 0.25, -0.75), _leaf(0.1)]
    flat = treewalk.flat_trees(trees, 0.3, 2)
    assert isinstance(flat, treewalk.FlatTrees)
    X = np.array([[1.0, -0.5], [1.0000001, 0.0], [np.nan, np.nan], [-np.inf, np.inf]])
    got = flat.raw(X)
    assert got.tolist() == [0.3 - 1.0 + 0.25 + 0.1, 0.3 + 1.0 - 0.75 + 0.1,
                            0.3 - 1.0 - 0.75 + 0.1, 0.3 - 1.0 - 0.75 + 0.1]  # fmt: skip
    assert np.array_equal(got, _reference(trees, 0.3, X))


def test_the_additions_keep_their_order(walkable):
    """Floats do not add associatively: the walk adds as the model does, baseline first."""
    trees = [_leaf(1e16), _leaf(1.0), _leaf(-1e16)]
    flat = treewalk.flat_trees(trees, 1.0, 1)
    assert isinstance(flat, treewalk.FlatTrees)
    assert flat.raw(np.zeros((1, 1)))[0] == ((1.0 + 1e16) + 1.0) + -1e16


def test_random_deep_trees_match_the_plain_walk(walkable):
    rng = np.random.default_rng(3)
    trees = []
    for _ in range(20):  # a chain of splits, each leaf on the left, of random depth
        depth = int(rng.integers(1, 8))
        t = np.zeros(2 * depth + 1, dtype=NODE)
        for d in range(depth):
            k = 2 * d
            t[k]["feature_idx"] = rng.integers(0, 4)
            t[k]["num_threshold"] = rng.normal()
            t[k]["missing_go_to_left"] = rng.integers(0, 2)
            t[k]["left"], t[k]["right"] = k + 1, k + 2
            t[k + 1]["is_leaf"], t[k + 1]["value"] = 1, rng.normal()
        t[-1]["is_leaf"], t[-1]["value"] = 1, rng.normal()
        trees.append(t)
    X = rng.normal(size=(200, 4))
    X[rng.random(X.shape) < 0.2] = np.nan
    flat = treewalk.flat_trees(trees, -0.2, 4)
    assert isinstance(flat, treewalk.FlatTrees)
    assert np.array_equal(flat.raw(X), _reference(trees, -0.2, X))


def test_a_split_on_a_feature_the_matrix_lacks_is_refused(walkable):
    why = treewalk.flat_trees([_stump(5, 0.0, True, 0.0, 1.0)], 0.0, 3)
    assert why == "a tree splits on a feature the preprocessed matrix does not have"


def test_without_numba_it_says_so(monkeypatch):
    monkeypatch.setattr(treewalk, "kernel", lambda: (None, "numba is not installed"))
    assert treewalk.flat_trees([_leaf(1.0)], 0.0, 1) == "numba is not installed"
