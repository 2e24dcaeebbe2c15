"""The compiled scorer against the installed scikit-learn: what it reads is there, by name.

The scorer reads private attributes of the fitted HistGradientBoostingClassifier (and fitted
attributes of the preprocessing). A scikit-learn upgrade that renames or drops any of them must
fail here naming it, not surface as a slower server (the scorer would fall back to the model's
own ``predict_proba``) or, worse, as different answers. What the attributes mean is checked by
value: the compiled answers must be bit-identical to ``predict_proba`` on the Adult test rows.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import numpy.lib.recfunctions as rfn
import pytest

from pipelines.serve.fastpath import CompiledScorer, frame_records
from pipelines.serve.internals import (
    SKLEARN_INTERNALS,
    InternalsChanged,
    Reliance,
    check_internals,
    fitted_parts,
    is_a,
)


@pytest.fixture(scope="module")
def model(params, adult_reference):
    """The project's model (its preprocessing and classifier), small: 20 trees on 4000 rows."""
    from pipelines.stages.train import fit

    cfg = params.train.model_copy(update={"hyperparameters": {"max_iter": 20}})
    return fit(adult_reference.sample(4000, random_state=0), params.dataset, cfg)


def test_the_fitted_model_has_everything_the_compiled_scorer_reads(model, spec):
    applied = check_internals(model)
    # every listed attribute is one this model has: none is checked vacuously
    assert set(applied) == set(SKLEARN_INTERNALS)
    sc = CompiledScorer(model, spec.fields)
    assert sc.mode == "compiled", sc.reason


def test_compiled_answers_are_bit_identical_to_predict_proba_on_adult_test(
    model, spec, adult_current
):
    sc = CompiledScorer(model, spec.fields)
    frame = adult_current[list(spec.fields.names)]
    want = model.predict_proba(frame)[:, 1]
    records = frame_records(adult_current, spec.fields)
    one_row = np.concatenate([sc.predict_records([r]) for r in records[:500]])
    batches = np.concatenate(
        [sc.predict_records(records[i : i + 50]) for i in range(0, len(records), 50)]
    )
    assert np.array_equal(one_row, want[:500])
    assert np.array_equal(batches, want)


def _drop(model, rel: Reliance, monkeypatch: pytest.MonkeyPatch):
    """A copy of ``model`` without ``rel`` (an upgrade that renamed or removed it)."""
    broken = copy.deepcopy(model)
    owners = [p for p in fitted_parts(broken) if is_a(p, rel.owner)]
    assert owners, rel
    for obj in owners:
        if rel.kind == "field":
            obj.nodes = rfn.drop_fields(obj.nodes, [rel.part], usemask=False)
        elif rel.kind == "method":
            target = type(getattr(obj, rel.name))
            monkeypatch.delattr(_defining_class(target, rel.part), rel.part)
        elif rel.kind == "keyword":
            method = getattr(obj, rel.name)
            params = [p for p in inspect.signature(method).parameters if p != rel.part]
            namespace: dict = {}
            exec(f"def changed({', '.join(params)}): pass", namespace)  # noqa: S102
            monkeypatch.setattr(obj, rel.name, namespace["changed"])
        elif rel.name in vars(obj):
            delattr(obj, rel.name)
        else:  # a method or class attribute
            monkeypatch.delattr(_defining_class(type(obj), rel.name), rel.name)
    return broken


def _defining_class(cls: type, name: str) -> type:
    return next(k for k in cls.__mro__ if name in vars(k))


@pytest.mark.parametrize("rel", SKLEARN_INTERNALS, ids=str)
def test_a_missing_attribute_is_named(model, spec, rel, monkeypatch):
    broken = _drop(model, rel, monkeypatch)
    with pytest.raises(InternalsChanged) as err:
        check_internals(broken)
    message = str(err.value)
    assert str(rel) in message, message
    assert "scikit-learn" in message
    # and the server then answers with the model itself, saying why
    sc = CompiledScorer(broken, spec.fields)
    assert sc.mode == "model" and str(rel) in sc.reason


def test_the_trees_are_walked_by_the_compiled_walk(model, spec):
    sc = CompiledScorer(model, spec.fields)
    assert sc.walker == "compiled walk"


def test_without_numba_the_numpy_paths_answer_the_same(model, spec, adult_current, monkeypatch):
    from pipelines.serve import treewalk

    monkeypatch.setattr(treewalk, "kernel", lambda: (None, "numba is not installed"))
    sc = CompiledScorer(model, spec.fields)
    assert sc.mode == "compiled" and sc.walker == "tables (numba is not installed)"
    frame = adult_current[list(spec.fields.names)]
    records = frame_records(adult_current, spec.fields)
    got = np.concatenate([sc.predict_records(records[i : i + 100]) for i in range(0, 1000, 100)])
    assert np.array_equal(got, model.predict_proba(frame.iloc[:1000])[:, 1])


@pytest.mark.parametrize("nan_share", [0.0, 0.3])
def test_compiled_walk_routes_missing_values_as_the_trees_learned(nan_share):
    """Missing values in training (trees learn a side for them) and at scoring, on both sides:
    the walk's raw scores are the model's own, bit for bit, one row and a batch."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from pipelines.serve import trees

    rng = np.random.default_rng(7)
    X = rng.normal(size=(2000, 5))
    X[rng.random(X.shape) < nan_share] = np.nan
    y = (np.nan_to_num(X[:, 0], nan=1.0) + rng.normal(size=2000) > 0.3).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=25, random_state=0).fit(X, y)
    tables = trees.tree_tables(clf)
    assert tables is not None and tables.flat is not None
    Xt = rng.normal(size=(300, 5))
    Xt[rng.random(Xt.shape) < 0.25] = np.nan
    want = clf._raw_predict(Xt).ravel()
    assert np.array_equal(tables.flat.raw(Xt), want)
    assert np.array_equal(
        np.concatenate([tables.flat.raw(Xt[i : i + 1]) for i in range(50)]), want[:50]
    )
    assert np.array_equal(trees.predict_proba(clf, tables, Xt), clf.predict_proba(Xt)[:, 1])
