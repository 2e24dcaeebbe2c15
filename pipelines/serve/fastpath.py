"""A compiled scorer: the fitted pipeline turned into precomputed numpy work, done once per model.

One-row ``predict_proba`` through a scikit-learn ColumnTransformer pipeline costs milliseconds,
nearly all of it per-call overhead (DataFrame construction, validation, one Cython call per
tree). The compiled scorer keeps the model's own numbers and does only the arithmetic:

* the preprocessing as fill/subtract/divide steps and per-column category tables
  (:mod:`pipelines.serve.preprocess`);
* a HistGradientBoosting classifier as one batched decision/leaf lookup for small batches and
  scikit-learn's own predictor on one thread for large ones, then the model's own link function
  (:mod:`pipelines.serve.trees`).

Any other preprocessing or classifier keeps its own ``transform`` / ``predict_proba``. Before
compiling, the scikit-learn attributes the compiled path reads are checked
(:mod:`pipelines.serve.internals`); after, the compiled path is compared with the model's
``predict_proba`` on probe rows. If either fails, the scorer serves the model itself (never a
wrong answer) and ``reason`` says why. Records are checked and encoded by
:mod:`pipelines.serve.inputs`, whose names are re-exported here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.serve import explain, trees
from pipelines.serve.columns import Columns, encode_columns, records_columns
from pipelines.serve.inputs import (
    NUMERIC_TYPES,
    Encoded,
    FieldSpec,
    InputError,
    ModelError,
    check_signature,
    concat,
    encode_records,
    frame_records,
)
from pipelines.serve.internals import InternalsChanged, check_internals
from pipelines.serve.preprocess import CategoricalBlock, NumericBlock, numeric_steps, tabulate

__all__ = [
    "NUMERIC_TYPES",
    "Columns",
    "CompiledScorer",
    "Encoded",
    "FieldSpec",
    "InputError",
    "ModelError",
    "check_signature",
    "frame_records",
]

log = logging.getLogger(__name__)
COLUMN_WISE = 16  # records: from this many in a request, read column by column


class CompiledScorer:
    """Scores validated records with the model's own numbers and none of its per-call overhead.

    ``mode`` says how: ``compiled`` (numpy preprocessing and, for gradient-boosted trees, the
    batched tree lookup) or ``model`` (the fitted pipeline's own ``predict_proba``).
    """

    def __init__(self, model: Any, spec: FieldSpec, probe: Any = None) -> None:
        self.model = model
        self.spec = spec
        self.field_set = spec.field_set
        self.mode = "model"
        self.reason = ""
        self._numeric: NumericBlock | None = None
        self._numeric_pos: list[int] = []
        self._categorical: CategoricalBlock | None = None
        self._layout: list[tuple[str, np.ndarray]] = []  # ("numeric"|"categorical", out columns)
        self._width = 0
        self._clf: Any = None
        self._trees: trees.TreeTables | None = None
        self._explainer: explain.TreeExplainer | None = None
        self._explainer_built = False
        try:
            self._compile()
            self.mode = "compiled"
        except (_NotCompiled, InternalsChanged) as why:
            self.reason = str(why)
        except Exception as err:  # noqa: BLE001 - an unexpected structure: use the model itself
            self.reason = f"cannot compile: {type(err).__name__}: {err}"
        if self.mode == "compiled":
            bad = self._self_check(probe)
            if bad:
                self.mode, self.reason = "model", bad
        if self.mode != "compiled":
            log.warning("serving with the model's own predict_proba: %s", self.reason)

    @property
    def walker(self) -> str:
        """How the trees are walked ("compiled walk", or "tables" and why), '' without trees."""
        return self._trees.walker if self._trees is not None else ""

    # ---- compile
    def _compile(self) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        m = self.model
        check_internals(m)
        if not isinstance(m, Pipeline) or len(m.steps) != 2:
            raise _NotCompiled("model is not a Pipeline(preprocess, classifier)")
        pre, clf = m.steps[0][1], m.steps[1][1]
        if not isinstance(pre, ColumnTransformer):
            raise _NotCompiled("preprocessing is not a ColumnTransformer")
        if list(getattr(clf, "classes_", [0, 1])) != [0, 1]:
            raise _NotCompiled("classifier is not a 0/1 binary classifier")
        offset = 0
        numeric_cols: list[str] = []
        for name, trans, cols in pre.transformers_:
            if isinstance(trans, str) and trans == "drop":
                continue
            cols = list(cols) if not isinstance(cols, str) else [cols]
            if not cols:
                continue
            if any(not isinstance(c, str) for c in cols):
                raise _NotCompiled(f"transformer {name!r} selects columns by position")
            if all(c in self.spec.numeric for c in cols):
                steps = numeric_steps(trans)
                if steps is None:
                    raise _NotCompiled(f"numeric transformer {name!r} not recognised")
                if numeric_cols:
                    raise _NotCompiled("more than one numeric transformer")
                numeric_cols = cols
                self._numeric = NumericBlock(tuple(cols), steps)
                self._layout.append(("numeric", np.arange(offset, offset + len(cols))))
                offset += len(cols)
            elif all(c in self.spec.categorical for c in cols):
                if self._categorical is not None:
                    raise _NotCompiled("more than one categorical transformer")
                block = tabulate(trans, cols)
                if block is None:
                    raise _NotCompiled(f"categorical transformer {name!r} is not per-column")
                self._categorical = block
                self._layout.append(("categorical", np.arange(offset, offset + block.width)))
                offset += block.width
            else:
                raise _NotCompiled(f"transformer {name!r} mixes numeric and categorical columns")
        self._width = offset
        self._numeric_pos = [self.spec.numeric.index(c) for c in numeric_cols]
        self._clf = clf
        if type(clf).__name__ == "HistGradientBoostingClassifier":
            self._trees = trees.tree_tables(clf)

    def _self_check(self, probe: Any) -> str:
        """'' when compiled == model on the probe rows (plus synthetic ones), else why not."""
        frame = self._probe_frame(probe)
        try:
            want = np.asarray(self.model.predict_proba(frame)[:, 1], dtype=np.float64)
            # both code paths: a handful of rows (single requests) and a large batch
            got = np.concatenate([self.predict_frame(frame.head(8)), self.predict_frame(frame)[8:]])
        except Exception as err:  # noqa: BLE001 - any failure means: do not use the fast path
            return f"compiled path failed its check: {type(err).__name__}: {err}"
        if got.shape != want.shape or not np.array_equal(got, want):
            diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else math.inf
            return f"compiled path differs from the model by {diff:.3g} on probe rows"
        return ""

    def _probe_frame(self, probe: Any) -> Any:
        """Probe rows: every known category, missing and unknown values, varied numbers."""
        import pandas as pd

        rng = np.random.default_rng(0)
        n = 64
        if self._categorical:
            n = max(n, max(len(c.codes) for c in self._categorical.columns) + 2)
        data: dict[str, Any] = {}
        for c in self.spec.numeric:
            v = rng.normal(0.0, 1.0, n) * 10.0 ** rng.integers(0, 6, n)
            v[rng.random(n) < 0.1] = np.nan
            data[c] = v
        for c in self.spec.categorical:
            col = self._categorical.column(c) if self._categorical else None
            known = list(col.codes) if col else ["a"]
            vals: list[Any] = [known[i % len(known)] for i in range(n)]
            vals[-1] = None
            if col is not None and col.unknown_ok:
                vals[-2] = "an unseen category"
            data[c] = rng.permutation(np.array(vals, dtype=object))
        frame = pd.DataFrame(data)[list(self.spec.names)]
        if probe is not None and len(probe):
            frame = pd.concat([probe[list(self.spec.names)], frame], ignore_index=True)
        for c in self.spec.categorical:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), np.nan)
        for c in self.spec.numeric:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
        return frame

    # ---- hot path
    def encode(self, records: Sequence[Any] | Columns) -> Encoded:
        """Check records (JSON objects), or a columnar batch, and return them as numbers and
        category codes; many records are read column by column (:mod:`pipelines.serve.columns`).

        Raises :class:`InputError` naming the record and field. The matrix itself is built per
        batch in :meth:`predict_encoded`, so concurrent requests share that cost.
        """
        coded = None
        if self.mode == "compiled":
            coded = self._categorical.columns if self._categorical else []
        if isinstance(records, Columns):
            return encode_columns(records, self.spec, coded)
        if len(records) >= COLUMN_WISE:
            cols = records_columns(records, self.spec)
            if cols is not None:
                return encode_columns(cols, self.spec, coded, "record")
        return encode_records(records, self.spec, coded)

    def matrix(self, enc: Encoded) -> Any:
        """The model input for encoded records: the preprocessed matrix (or, in model mode,
        the DataFrame the pipeline was fitted on)."""
        n = len(enc.num)
        num = np.array(enc.num, dtype=np.float64).reshape(n, len(self.spec.numeric))
        if self.mode != "compiled":
            return self._frame(num, enc.cats)
        X = np.empty((n, self._width))
        for part, out_cols in self._layout:
            if part == "numeric":
                assert self._numeric is not None
                X[:, out_cols] = self._numeric.apply(num[:, self._numeric_pos])
            else:
                cb = self._categorical
                assert cb is not None
                codes = np.array(enc.cats, dtype=np.intp).reshape(n, len(cb.columns))
                X[:, out_cols] = cb.gather(codes)
        return X

    def _frame(self, num: np.ndarray, raw_cats: list[list[Any]] | np.ndarray) -> Any:
        """Model mode: the checked records as the frame the pipeline was fitted on."""
        import pandas as pd

        data: dict[str, Any] = {c: num[:, j] for j, c in enumerate(self.spec.numeric)}
        for j, c in enumerate(self.spec.categorical):
            col = np.empty(len(raw_cats), dtype=object)
            col[:] = [r[j] for r in raw_cats]
            data[c] = col
        return pd.DataFrame(data, index=pd.RangeIndex(len(raw_cats)))[list(self.spec.names)]

    def predict_encoded(self, enc: Encoded) -> np.ndarray:
        """Positive-class probabilities for an :meth:`encode` result (or several concatenated)."""
        X = self.matrix(enc)
        if self.mode != "compiled":
            return np.asarray(self.model.predict_proba(X)[:, 1], dtype=np.float64)
        if self._trees is not None:
            return trees.predict_proba(self._clf, self._trees, X)
        return np.asarray(self._clf.predict_proba(X)[:, 1], dtype=np.float64)

    concat = staticmethod(concat)

    # ---- explanations (:mod:`pipelines.serve.explain`)
    def explainer(self) -> explain.TreeExplainer | None:
        """TreeSHAP tables of the compiled trees, built once (None: this model is not
        explained: not compiled, or not gradient-boosted trees the tables can read)."""
        if not self._explainer_built:
            self._explainer_built = True
            if self.mode == "compiled" and self._trees is not None:
                self._explainer = explain.tree_explainer(
                    self._clf, self._column_features(), self.spec.names
                )
        return self._explainer

    def _column_features(self) -> list[int | None]:
        """The original feature (index into ``spec.names``) of each encoded column."""
        names = list(self.spec.names)
        out: list[int | None] = [None] * self._width
        for part, out_cols in self._layout:
            if part == "numeric":
                assert self._numeric is not None
                for c, name in zip(out_cols, self._numeric.columns, strict=True):
                    out[c] = names.index(name)
            else:
                cb = self._categorical
                assert cb is not None
                for col, sl in zip(cb.columns, cb.slices, strict=True):
                    for c in sl:
                        out[int(out_cols[c])] = names.index(col.name)
        return out

    def explain_encoded(
        self, enc: Encoded, records: Sequence[Any], k: int
    ) -> list[dict[str, Any]] | None:
        """Per record, the base value and the ``k`` largest contributions to the raw margin
        (log-odds); None when this model is not explained."""
        ex = self.explainer()
        if ex is None:
            return None
        return explain.top_contributions(ex, ex.contributions(self.matrix(enc)), records, k)

    def predict_records(self, records: Sequence[Any]) -> np.ndarray:
        return self.predict_encoded(self.encode(records))

    def predict_frame(self, frame: Any) -> np.ndarray:
        """Score a DataFrame through the same record path the server uses."""
        return self.predict_records(frame_records(frame, self.spec))


class _NotCompiled(Exception):
    pass
