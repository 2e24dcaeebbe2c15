"""Exact explanations: the vectorized path-dependent TreeSHAP against a brute-force Shapley
computation (every subset of a tree's columns, the path-dependent expectation computed by
walking the tree), the contributions adding up to the model's raw margin on the Adult test
rows, and the ranking measures the gate and the monitor read."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.data import feature_frame
from pipelines.serve import explain
from pipelines.serve.fastpath import CompiledScorer, frame_records
from tests.support.serving import StaticSource


@pytest.fixture(scope="module")
def matrix(prefit, adult_current, params) -> dict[str, np.ndarray]:
    """Each prefit model's preprocessed Adult test rows."""
    frame = feature_frame(adult_current, params.dataset)
    return {k: m.steps[0][1].transform(frame) for k, m in prefit.items()}


def _expectation(nodes: np.ndarray, x: np.ndarray, known: set[int], k: int = 0) -> float:
    """The path-dependent expectation of one tree given the columns ``known``: follow ``x`` at
    a split on a known column, else average both children by their training covers."""
    nd = nodes[k]
    if nd["is_leaf"]:
        return float(nd["value"])
    left, right = int(nd["left"]), int(nd["right"])
    c = int(nd["feature_idx"])
    if c in known:
        go_left = x[c] <= nd["num_threshold"] if not np.isnan(x[c]) else nd["missing_go_to_left"]
        return _expectation(nodes, x, known, left if go_left else right)
    cl, cr = float(nodes[left]["count"]), float(nodes[right]["count"])
    return (
        cl * _expectation(nodes, x, known, left) + cr * _expectation(nodes, x, known, right)
    ) / (cl + cr)


def _brute_force(nodes: np.ndarray, x: np.ndarray) -> dict[int, float]:
    """Shapley values of one tree's columns by the definition: the expectation given every
    subset of the columns, then each column's weighted marginal over the subsets without it."""
    cols = sorted({int(c) for c in nodes["feature_idx"][nodes["is_leaf"] == 0]})
    d = len(cols)
    value = [
        _expectation(nodes, x, {c for b, c in enumerate(cols) if mask >> b & 1})
        for mask in range(1 << d)
    ]
    phi = {}
    for b, c in enumerate(cols):
        total = 0.0
        for mask in range(1 << d):
            if not mask >> b & 1:
                size = bin(mask).count("1")
                w = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
                total += w * (value[mask | 1 << b] - value[mask])
        phi[c] = total
    return phi


def test_contributions_equal_brute_force_shapley_values(prefit, matrix, spec):
    model = prefit["b"]
    clf = model.steps[1][1]
    X = matrix["b"][:3]
    width = X.shape[1]
    # one explainer per tree (encoded columns as the features): Shapley values add over trees
    for tree in clf._predictors[:2]:
        one = _OneTree(clf, tree)
        ex = explain.tree_explainer(one, list(range(width)), [str(c) for c in range(width)])
        assert ex is not None
        got = ex.contributions(X)
        for r in range(len(X)):
            want = np.zeros(width)
            for c, v in _brute_force(tree[0].nodes, X[r]).items():
                want[c] = v
            np.testing.assert_allclose(got[r], want, rtol=0, atol=1e-12)
        # the expected value is the cover-weighted mean leaf plus the baseline
        none = _expectation(tree[0].nodes, X[0], set())
        assert ex.expected_value == pytest.approx(none + float(clf._baseline_prediction[0, 0]))


class _OneTree:
    """One tree of a fitted classifier, as the tables read it."""

    def __init__(self, clf, tree) -> None:
        self._predictors = [tree]
        self._baseline_prediction = clf._baseline_prediction


def test_contributions_add_up_to_the_raw_margin_on_the_test_rows(prefit, matrix, spec):
    model = prefit["a"]
    scorer = CompiledScorer(model, spec.fields)
    ex = scorer.explainer()
    assert ex is not None and ex.features == spec.fields.names
    X = matrix["a"]
    phi = ex.contributions(X)
    assert phi.shape == (len(X), len(spec.fields.names))
    raw = model.steps[1][1].decision_function(X)
    assert np.max(np.abs(ex.expected_value + phi.sum(axis=1) - raw)) <= 1e-6
    # a feature whose columns no tree splits on contributes nothing
    used = {int(c) for p in model.steps[1][1]._predictors for c in p[0].nodes["feature_idx"]}
    col_of = scorer._column_features()
    for f, name in enumerate(spec.fields.names):
        if not any(col_of[c] == f for c in used):
            assert not phi[:, f].any(), name


def test_contributions_equal_the_reference_tree_explainer(prefit, matrix, spec):
    """The dev extra's reference implementation of path-dependent TreeSHAP (tree_path_dependent,
    compiled): the same values per encoded column, summed per feature, on Adult test rows."""
    shap = pytest.importorskip("shap")
    model = prefit["a"]
    scorer = CompiledScorer(model, spec.fields)
    ex = scorer.explainer()
    assert ex is not None
    X = matrix["a"][:500]
    reference = shap.TreeExplainer(model.steps[1][1], feature_perturbation="tree_path_dependent")
    per_column = np.asarray(reference.shap_values(X))
    want = np.zeros((len(X), len(ex.features)))
    for c, f in enumerate(scorer._column_features()):
        if f is not None:
            want[:, f] += per_column[:, c]
    np.testing.assert_allclose(ex.contributions(X), want, rtol=0, atol=1e-9)
    assert ex.expected_value == pytest.approx(float(np.ravel(reference.expected_value)[0]))


def test_top_contributions_per_record(prefit, adult_current, spec):
    scorer = CompiledScorer(prefit["a"], spec.fields)
    records = frame_records(adult_current.head(5), spec.fields)
    enc = scorer.encode(records)
    out = scorer.explain_encoded(enc, records, 3)
    assert out is not None and len(out) == 5
    proba = scorer.predict_encoded(enc)
    full = scorer.explain_encoded(enc, records, len(spec.fields.names))
    assert full is not None
    for rec, one, whole, p in zip(records, out, full, proba, strict=True):
        assert len(one["contributions"]) == 3
        sizes = [abs(c["contribution"]) for c in one["contributions"]]
        assert sizes == sorted(sizes, reverse=True)
        assert one["contributions"] == whole["contributions"][:3]
        assert all(c["value"] == rec[c["feature"]] for c in one["contributions"])
        margin = whole["base_value"] + sum(c["contribution"] for c in whole["contributions"])
        assert 1 / (1 + math.exp(-margin)) == pytest.approx(p, abs=1e-9)


def test_models_the_tables_cannot_read_are_not_explained(prefit, spec):
    from sklearn.linear_model import LogisticRegression

    model = prefit["a"]
    assert explain.tree_explainer(LogisticRegression(), [0], ["x"]) is None
    clf = model.steps[1][1]
    used = max(int(c) for p in clf._predictors for c in p[0].nodes["feature_idx"])
    # a split on a column no feature owns: refused, never attributed to a wrong feature
    assert explain.tree_explainer(clf, [None] * (used + 1), ["x"]) is None
    assert explain.tree_explainer(clf, [0] * used, ["x"]) is None
    assert explain.tree_explainer(clf, [0] * (used + 1), ["x"]) is not None


def test_global_importance_and_ranking_measures():
    imp = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}
    assert explain.ranking_ndcg(imp, imp) == pytest.approx(1.0)
    swapped = {"a": 2.0, "b": 3.0, "c": 1.0, "d": 0.0}
    reversed_ = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0}
    hi, lo = explain.ranking_ndcg(imp, swapped), explain.ranking_ndcg(imp, reversed_)
    assert 1.0 > hi > lo > 0.0
    # by hand: dcg = 2 + 3/log2(3) + 1/2, idcg = 3 + 2/log2(3) + 1/2
    assert hi == pytest.approx((2 + 3 / math.log2(3) + 0.5) / (3 + 2 / math.log2(3) + 0.5))
    moved = explain.rank_changes(imp, reversed_, top=2)
    assert [m["feature"] for m in moved] == ["a", "d"]
    assert moved[0]["reference_rank"] == 1 and moved[0]["rank"] == 4
    assert explain.rank_changes(imp, imp) == []


# --------------------------------------------------------------------------- /predict?explain=k


@pytest.fixture()
def client(prefit, spec):
    from starlette.testclient import TestClient

    from pipelines.serve.app import ServingApp
    from pipelines.serve.model import LoadedModel, ModelHolder

    loaded = LoadedModel("7", CompiledScorer(prefit["a"], spec.fields), run_id="r1")
    app = ServingApp(ModelHolder(StaticSource(loaded)), spec, max_records=200)
    with TestClient(app, raise_server_exceptions=False) as c:
        app.holder.refresh()
        yield c


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_predict_answers_with_the_top_contributions_when_asked(client, adult_current, spec):
    records = frame_records(adult_current.head(3), spec.fields)
    plain = client.post("/predict", json=records[0]).json()
    assert "explanation" not in plain
    one = client.post("/predict?explain=2", json=records[0]).json()
    assert one["probability"] == plain["probability"]
    top = one["explanation"]["contributions"]
    assert [set(c) for c in top] == [{"feature", "value", "contribution"}] * 2
    assert top[0]["value"] == records[0][top[0]["feature"]]
    everything = client.post("/predict?explain=1000", json=records[0]).json()["explanation"]
    margin = everything["base_value"] + sum(c["contribution"] for c in everything["contributions"])
    assert len(everything["contributions"]) == len(spec.fields.names)
    assert 1 / (1 + math.exp(-margin)) == pytest.approx(one["probability"], abs=1e-9)
    batch = client.post("/predict?explain=3", json=records).json()
    assert len(batch["explanations"]) == 3
    assert (
        batch["explanations"][0]
        == client.post("/predict?explain=3", json=records[0]).json()["explanation"]
    )
    names = list(records[0])
    columns = {"columns": names, "data": [[r[c] for c in names] for r in records]}
    by_columns = client.post("/predict?explain=3", json=columns).json()
    assert by_columns["explanations"] == batch["explanations"]  # the columnar shape alike


@pytest.mark.filterwarnings("ignore:Using `httpx`")
@pytest.mark.parametrize(
    ("query", "rows", "kind"),
    [("explain=0", 1, "invalid"), ("explain=-2", 1, "invalid"), ("explain=top", 1, "invalid"),
     ("explain=3", 101, "too_many_to_explain")],
)  # fmt: skip
def test_a_bad_explain_option_is_a_clear_4xx(client, adult_current, spec, query, rows, kind):
    records = frame_records(adult_current.head(rows), spec.fields)
    r = client.post(f"/predict?{query}", json=records[0] if rows == 1 else records)
    assert r.status_code == 422, r.text
    assert r.json()["kind"] == kind and r.json()["field"] == "explain"


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_a_model_served_by_itself_answers_explain_with_a_clear_422(prefit, spec, adult_current):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    from starlette.testclient import TestClient

    from pipelines.serve.app import ServingApp
    from pipelines.serve.model import LoadedModel, ModelHolder

    odd = Pipeline([("noop", FunctionTransformer()), *prefit["a"].steps])
    scorer = CompiledScorer(odd, spec.fields)
    assert scorer.mode == "model" and scorer.explainer() is None
    app = ServingApp(ModelHolder(StaticSource(LoadedModel("3", scorer, run_id="r"))), spec)
    record = frame_records(adult_current.head(1), spec.fields)[0]
    with TestClient(app, raise_server_exceptions=False) as c:
        app.holder.refresh()
        assert c.post("/predict", json=record).status_code == 200
        r = c.post("/predict?explain=3", json=record)
        assert r.status_code == 422 and r.json()["kind"] == "not_explained"
