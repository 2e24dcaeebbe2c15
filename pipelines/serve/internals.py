"""What the compiled scorer reads from fitted scikit-learn objects, and a check that it is there.

The compiled scorer (:mod:`pipelines.serve.preprocess`, :mod:`pipelines.serve.trees`) and the
explanations (:mod:`pipelines.serve.explain`) read the fitted pipeline's numbers directly, some
of them private to scikit-learn (no deprecation cycle protects those). Every attribute they read
is listed in :data:`SKLEARN_INTERNALS`; :func:`check_internals` looks for each one on the parts
of a fitted model and raises :class:`InternalsChanged` naming every one that is missing or
changed. The scorer runs the check
before compiling (a model that fails it is served by its own ``predict_proba``, with the
message as the reason) and tests/model/test_sklearn_internals.py runs it on a freshly fitted
model, so a scikit-learn upgrade that moves any of them fails loudly, by name.

What the attributes *mean* (``x <= threshold`` goes left, trees add up in order, ...) is checked
by value: the scorer compares itself with the model's ``predict_proba`` on probe rows when it is
built, bit for bit.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reliance:
    """One thing read from a fitted object of class ``owner``.

    ``kind``: ``attribute`` (``owner.name`` exists), ``field`` (``owner.name`` is a structured
    array with the field ``part``), ``method`` (``owner.name.part`` is callable) or ``keyword``
    (``owner.name`` is callable with the keyword argument ``part``).
    """

    owner: str
    name: str
    part: str = ""
    kind: str = "attribute"
    private: bool = False

    def __str__(self) -> str:
        where = f"{self.owner}.{self.name}"
        if self.kind == "field":
            return f"{where}[{self.part!r}]"
        if self.kind == "method":
            return f"{where}.{self.part}()"
        if self.kind == "keyword":
            return f"{where}({self.part}=...)"
        return where


_HGB = "HistGradientBoostingClassifier"
# the last two: the explanations' covers and missing-value directions
NODE_FIELDS = ("is_leaf", "value", "feature_idx", "num_threshold", "left", "right",
               "is_categorical", "count", "missing_go_to_left")  # fmt: skip

SKLEARN_INTERNALS: tuple[Reliance, ...] = (
    # private to scikit-learn
    Reliance(_HGB, "_predictors", private=True),
    Reliance(_HGB, "_baseline_prediction", private=True),
    Reliance(_HGB, "_loss", "predict_proba", "method", private=True),
    *(Reliance("TreePredictor", "nodes", f, "field", private=True) for f in NODE_FIELDS),
    # (and the module function each tree is walked with, imported by name in trees.walk:
    # sklearn.ensemble._hist_gradient_boosting._predictor._predict_from_raw_data)
    Reliance("TreePredictor", "raw_left_cat_bitsets", private=True),
    # public: fitted attributes and parameters
    Reliance(_HGB, "classes_"),
    Reliance(_HGB, "n_features_in_"),  # the compiled walk checks every split's feature
    Reliance("Pipeline", "steps"),
    Reliance("ColumnTransformer", "transformers_"),
    Reliance("SimpleImputer", "missing_values"),
    Reliance("SimpleImputer", "add_indicator"),
    Reliance("SimpleImputer", "statistics_"),
    Reliance("StandardScaler", "with_mean"),
    Reliance("StandardScaler", "with_std"),
    Reliance("StandardScaler", "mean_"),
    Reliance("StandardScaler", "scale_"),
    Reliance("OneHotEncoder", "categories_"),
)


class InternalsChanged(RuntimeError):
    """A fitted model lacks something the compiled scorer reads; the message names each."""

    def __init__(self, problems: list[str]) -> None:
        import sklearn

        self.problems = problems
        super().__init__(
            f"scikit-learn {sklearn.__version__}: the compiled scorer reads what this fitted "
            f"model does not have: {'; '.join(problems)} (see pipelines/serve/internals.py)"
        )


def check_internals(model: Any) -> list[Reliance]:
    """Check every listed attribute on the parts of ``model`` that have it.

    Returns the entries that applied (those whose owner class is part of the model); raises
    :class:`InternalsChanged` naming every missing or changed one.
    """
    problems: list[str] = []
    parts = list(_walk(model, problems))
    applied: list[Reliance] = []
    for rel in SKLEARN_INTERNALS:
        owners = [p for p in parts if is_a(p, rel.owner)]
        if not owners:
            continue
        applied.append(rel)
        for obj in owners:
            why = _problem(obj, rel)
            if why:
                problems.append(f"{rel} {why}")
                break  # one message per entry, however many trees share the problem
    if problems:
        raise InternalsChanged(problems)
    return applied


def fitted_parts(model: Any) -> list[Any]:
    """Every fitted object inside ``model``: itself, pipeline steps, transformers, trees."""
    return list(_walk(model, []))


def is_a(obj: Any, owner: str) -> bool:
    """``obj`` is an instance of a class named ``owner`` (scikit-learn need not be imported)."""
    return any(k.__name__ == owner for k in type(obj).__mro__)


def _problem(obj: Any, rel: Reliance) -> str:
    """'' when ``rel`` holds on ``obj``, else what is wrong."""
    try:
        value = getattr(obj, rel.name)
    except AttributeError:
        return "is missing"
    if rel.kind == "field":
        names = getattr(getattr(value, "dtype", None), "names", None)
        if names is None:
            return f"is not a structured array (got {type(value).__name__})"
        if rel.part not in names:
            return f"is missing (fields: {', '.join(names)})"
    elif rel.kind == "method":
        if not callable(getattr(value, rel.part, None)):
            return f"is missing (on {type(value).__name__})"
    elif rel.kind == "keyword":
        if not callable(value):
            return "is not callable"
        try:
            params = inspect.signature(value).parameters
        except (TypeError, ValueError):
            return "has no readable signature"
        if rel.part not in params:
            return f"has no keyword {rel.part!r} (signature: {inspect.signature(value)})"
    return ""


def _walk(obj: Any, problems: list[str]) -> Iterator[Any]:
    """``obj`` and the fitted objects inside it; problems met on the way go to ``problems``."""
    yield obj
    if is_a(obj, "Pipeline"):
        for step in getattr(obj, "steps", None) or []:
            yield from _walk(step[1], problems)
    elif is_a(obj, "ColumnTransformer"):
        for entry in getattr(obj, "transformers_", None) or []:
            if not isinstance(entry[1], str):
                yield from _walk(entry[1], problems)
    elif is_a(obj, _HGB):
        preds = getattr(obj, "_predictors", None)
        if preds is None:
            return
        try:
            for per_iteration in preds:
                yield from per_iteration
        except TypeError:
            problems.append(
                f"{_HGB}._predictors is not a list (per iteration) of lists of TreePredictor "
                f"(got {type(preds).__name__})"
            )
