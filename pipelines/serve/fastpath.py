"""A compiled scorer: the fitted pipeline turned into precomputed numpy work, done once per model.

One-row ``predict_proba`` through a scikit-learn ColumnTransformer pipeline costs milliseconds,
nearly all of it per-call overhead (DataFrame construction, validation, one Cython call per
tree). The compiled scorer keeps the model's own numbers and does only the arithmetic:

* numeric columns: the imputer's fill values and the scaler's mean/scale, applied with the same
  float64 operations in the same order as scikit-learn (``x -= mean; x /= scale``);
* categorical columns: each column's fitted transformer tabulated once over its known values,
  a missing value and an unknown value, so a record's categories become integer codes and the
  encoded block a row gather;
* a HistGradientBoosting classifier: all trees flattened into one batched decision/leaf
  lookup (Hummingbird's GEMM strategy) for small batches, and scikit-learn's own per-tree
  predictor on one thread for large ones; then the model's own link function.

Any other preprocessing or classifier keeps its own ``transform`` / ``predict_proba``. The
compiled path is checked against the model's ``predict_proba`` on probe rows when it is built;
if it differs at all, the scorer falls back to the model itself (never to a wrong answer).

Input checking lives here too, because it is done in the same single pass over each record:
:class:`InputError` names the record and field.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NUMERIC_TYPES = {"double", "float", "long", "integer"}
_UNKNOWN = "\x00<unknown category>"
_SMALL_BATCH = 64  # rows: the batched tree lookup wins below this, scikit-learn's loop above


class InputError(ValueError):
    """A request the model cannot score; ``field`` names the offending field when there is one."""

    def __init__(self, message: str, field: str | None = None, kind: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.kind = kind


class ModelError(RuntimeError):
    """A model that cannot be served with this dataset config (names/types disagree)."""


@dataclass(frozen=True)
class FieldSpec:
    """What a request must carry: the model's feature names and their kinds."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


def check_signature(spec: FieldSpec, signature_inputs: Sequence[Mapping[str, Any]] | None) -> None:
    """The dataset config and the model signature must agree on names and kinds."""
    if not signature_inputs:
        return
    sig = {str(c.get("name")): str(c.get("type")) for c in signature_inputs}
    missing = [n for n in spec.names if n not in sig]
    extra = [n for n in sig if n not in spec.names]
    if missing or extra:
        raise ModelError(
            f"model signature and dataset config disagree: config-only {missing}, "
            f"signature-only {extra}"
        )
    for n in spec.numeric:
        if sig[n] not in NUMERIC_TYPES:
            raise ModelError(f"field {n!r} is numeric in the config but {sig[n]} in the signature")
    for n in spec.categorical:
        if sig[n] != "string":
            raise ModelError(f"field {n!r} is categorical in the config but {sig[n]} in the model")


# --------------------------------------------------------------------------- preprocessing
@dataclass
class _NumericBlock:
    columns: tuple[str, ...]
    steps: list[tuple[str, np.ndarray]]  # ("fill", values) | ("sub", mean) | ("div", scale)

    def apply(self, X: np.ndarray) -> np.ndarray:
        for op, arr in self.steps:
            if op == "fill":
                mask = np.isnan(X)
                if mask.any():
                    X = np.where(mask, arr, X)
            elif op == "sub":
                X -= arr
            elif op == "div":
                X /= arr
        return X


@dataclass
class _CategoricalColumn:
    name: str
    codes: dict[str, int]  # known value -> row of ``table``
    table: np.ndarray  # (n_values + 2, width): known values..., missing, unknown
    unknown_ok: bool
    offset: int = 0  # first row of this column in the block's stacked table
    missing_code: int = field(init=False)
    unknown_code: int = field(init=False)

    def __post_init__(self) -> None:
        self.missing_code = len(self.codes)
        self.unknown_code = len(self.codes) + 1


@dataclass
class _CategoricalBlock:
    columns: list[_CategoricalColumn]
    slices: list[np.ndarray]  # output column indices (within the block) per input column
    width: int
    constant: np.ndarray  # output of columns no input moves (e.g. a single category)
    stacked: np.ndarray = field(init=False)  # every column's table rows, each in its slice

    def __post_init__(self) -> None:
        rows = sum(len(c.table) for c in self.columns)
        self.stacked = np.zeros((rows, self.width))
        self.constant = self.constant.copy()
        offset = 0
        for col, sl in zip(self.columns, self.slices, strict=True):
            col.offset = offset
            self.stacked[offset : offset + len(col.table), sl] = col.table
            self.constant[sl] = 0.0
            offset += len(col.table)


def _numeric_steps(trans: Any) -> list[tuple[str, np.ndarray]] | None:
    """The fitted numeric transformer as fill/sub/div steps, or None if not recognised."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in trans.steps] if isinstance(trans, Pipeline) else [trans]
    out: list[tuple[str, np.ndarray]] = []
    for s in steps:
        if s == "passthrough" or s is None:
            continue
        if isinstance(s, SimpleImputer):
            mv = s.missing_values
            if not (isinstance(mv, float) and math.isnan(mv)) or s.add_indicator:
                return None
            stats = np.asarray(s.statistics_, dtype=np.float64)
            if np.isnan(stats).any():  # all-missing columns are dropped: not handled here
                return None
            out.append(("fill", stats))
        elif isinstance(s, StandardScaler):
            if s.with_mean:
                out.append(("sub", np.asarray(s.mean_, dtype=np.float64)))
            if s.with_std and s.scale_ is not None:
                out.append(("div", np.asarray(s.scale_, dtype=np.float64)))
        else:
            return None
    return out


def _dense(a: Any) -> np.ndarray:
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float64)


def _known_values(trans: Any, n_cols: int) -> list[list[str]] | None:
    """Each column's known categories, from the fitted encoder inside ``trans``."""
    steps = [s for _, s in trans.steps] if hasattr(trans, "steps") else [trans]
    for s in steps:
        cats = getattr(s, "categories_", None)
        if cats is not None and len(cats) == n_cols:
            return [[str(v) for v in c if isinstance(v, str)] for c in cats]
    return None


def _tabulate(trans: Any, cols: Sequence[str]) -> _CategoricalBlock | None:
    """Tabulate a per-column categorical transformer over every known value of each column."""
    import pandas as pd

    known = _known_values(trans, len(cols))
    if known is None or any(not k for k in known):
        return None
    base = {c: known[j][0] for j, c in enumerate(cols)}

    def run(frame: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _dense(trans.transform(frame[list(cols)]))

    base_out = run(pd.DataFrame([base], dtype=object))[0]
    width = base_out.shape[0]
    columns: list[_CategoricalColumn] = []
    slices: list[np.ndarray] = []
    claimed = np.zeros(width, dtype=bool)
    for j, c in enumerate(cols):
        values: list[Any] = [*known[j], np.nan]
        frame = pd.DataFrame([base] * len(values), dtype=object)
        frame[c] = pd.Series(values, dtype=object)
        table = run(frame)
        try:
            unknown_frame = pd.DataFrame([base], dtype=object)
            unknown_frame[c] = _UNKNOWN
            unknown_row = run(unknown_frame)
            unknown_ok = True
        except ValueError:  # handle_unknown="error": an unknown category is bad input
            unknown_row = base_out[None, :]
            unknown_ok = False
        table = np.vstack([table, unknown_row])
        moved = np.flatnonzero((table != base_out).any(axis=0))
        if claimed[moved].any():
            return None  # an output column moved by two inputs: not per-column
        claimed[moved] = True
        columns.append(
            _CategoricalColumn(
                c, {v: i for i, v in enumerate(known[j])}, table[:, moved].copy(), unknown_ok
            )
        )
        slices.append(moved)
    return _CategoricalBlock(columns, slices, width, base_out.copy())


# --------------------------------------------------------------------------- trees
@dataclass
class _TreeTables:
    """All trees of a HistGradientBoostingClassifier as padded decision/leaf tables."""

    feature: np.ndarray  # (T*I,) feature of each internal node
    threshold: np.ndarray  # (T*I,) go left when x <= threshold
    paths: np.ndarray  # (T, I, L) +1 leaf under the left child, -1 right, 0 not below
    lefts: np.ndarray  # (T, L) number of left turns to reach each leaf (-1: padding)
    values: np.ndarray  # (T*L,) leaf values
    baseline: float
    n_trees: int
    n_internal: int
    n_leaves: int

    def raw(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        T, I, L = self.n_trees, self.n_internal, self.n_leaves  # noqa: E741
        dec = (X[:, self.feature] <= self.threshold).view(np.uint8).astype(np.float32)
        S = np.matmul(dec.reshape(n, T, I).transpose(1, 0, 2), self.paths)  # (T, n, L)
        leaf = (S == self.lefts[:, None, :]).argmax(axis=2).T  # (n, T)
        terms = np.empty((n, T + 1))
        terms[:, 0] = self.baseline
        terms[:, 1:] = self.values[leaf + np.arange(T) * L]
        # scikit-learn adds the trees one by one, in order: a cumulative sum does the same
        return np.cumsum(terms, axis=1)[:, -1]


def _tree_tables(clf: Any) -> _TreeTables | None:
    preds = getattr(clf, "_predictors", None)
    if not preds or any(len(p) != 1 for p in preds):
        return None  # multi-class: not compiled
    nodes_list = [p[0].nodes for p in preds]
    if any(n["is_categorical"].any() for n in nodes_list):
        return None
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
    baseline = np.asarray(clf._baseline_prediction, dtype=np.float64).ravel()
    if baseline.shape != (1,):
        return None
    return _TreeTables(
        feature.ravel(), threshold.ravel(), paths, lefts, values.ravel(), float(baseline[0]),
        T, I, L,
    )  # fmt: skip


# --------------------------------------------------------------------------- scorer
class CompiledScorer:
    """Scores validated records with the model's own numbers and none of its per-call overhead.

    ``mode`` says how: ``compiled`` (numpy preprocessing and, for gradient-boosted trees, the
    batched tree lookup) or ``model`` (the fitted pipeline's own ``predict_proba``).
    """

    def __init__(self, model: Any, spec: FieldSpec, probe: Any = None) -> None:
        self.model = model
        self.spec = spec
        self.field_set = frozenset(spec.names)
        self.mode = "model"
        self.reason = ""
        self._numeric: _NumericBlock | None = None
        self._categorical: _CategoricalBlock | None = None
        self._layout: list[tuple[str, np.ndarray]] = []  # ("numeric"|"categorical", out columns)
        self._width = 0
        self._clf: Any = None
        self._trees: _TreeTables | None = None
        self._cat_index = {c: j for j, c in enumerate(spec.categorical)}
        try:
            self._compile()
            self.mode = "compiled"
        except _NotCompiled as why:
            self.reason = str(why)
        except Exception as err:  # noqa: BLE001 - an unexpected structure: use the model itself
            self.reason = f"cannot compile: {type(err).__name__}: {err}"
        if self.mode == "compiled":
            bad = self._self_check(probe)
            if bad:
                self.mode, self.reason = "model", bad
        if self.mode != "compiled":
            log.warning("serving with the model's own predict_proba: %s", self.reason)

    # ---- compile
    def _compile(self) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        m = self.model
        if not isinstance(m, Pipeline) or len(m.steps) != 2:
            raise _NotCompiled("model is not a Pipeline(preprocess, classifier)")
        pre, clf = m.steps[0][1], m.steps[1][1]
        if not isinstance(pre, ColumnTransformer):
            raise _NotCompiled("preprocessing is not a ColumnTransformer")
        if list(getattr(clf, "classes_", [0, 1])) != [0, 1]:
            raise _NotCompiled("classifier is not a 0/1 binary classifier")
        offset = 0
        numeric_cols: list[str] = []
        numeric_out: list[np.ndarray] = []
        numeric_steps: list[list[tuple[str, np.ndarray]]] = []
        for name, trans, cols in pre.transformers_:
            if isinstance(trans, str) and trans == "drop":
                continue
            cols = list(cols) if not isinstance(cols, str) else [cols]
            if not cols:
                continue
            if any(not isinstance(c, str) for c in cols):
                raise _NotCompiled(f"transformer {name!r} selects columns by position")
            if all(c in self.spec.numeric for c in cols):
                steps = _numeric_steps(trans)
                if steps is None:
                    raise _NotCompiled(f"numeric transformer {name!r} not recognised")
                if numeric_cols:
                    raise _NotCompiled("more than one numeric transformer")
                numeric_cols, numeric_steps = cols, [steps]
                numeric_out.append(np.arange(offset, offset + len(cols)))
                self._layout.append(("numeric", np.arange(offset, offset + len(cols))))
                offset += len(cols)
            elif all(c in self.spec.categorical for c in cols):
                if self._categorical is not None:
                    raise _NotCompiled("more than one categorical transformer")
                block = _tabulate(trans, cols)
                if block is None:
                    raise _NotCompiled(f"categorical transformer {name!r} is not per-column")
                self._categorical = block
                self._layout.append(("categorical", np.arange(offset, offset + block.width)))
                offset += block.width
            else:
                raise _NotCompiled(f"transformer {name!r} mixes numeric and categorical columns")
        self._width = offset
        if numeric_cols:
            self._numeric = _NumericBlock(tuple(numeric_cols), numeric_steps[0])
        self._numeric_pos = [self.spec.numeric.index(c) for c in numeric_cols]
        self._cat_pos = (
            [self._cat_index[c.name] for c in self._categorical.columns]
            if self._categorical
            else []
        )
        self._clf = clf
        if type(clf).__name__ == "HistGradientBoostingClassifier":
            self._trees = _tree_tables(clf)

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
            col = self._categorical.columns[self._cat_index_block(c)] if self._categorical else None
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

    def _cat_index_block(self, name: str) -> int:
        assert self._categorical is not None
        for j, c in enumerate(self._categorical.columns):
            if c.name == name:
                return j
        raise KeyError(name)

    # ---- hot path
    def encode(self, records: Sequence[Any]) -> Encoded:
        """Check records (JSON objects) in one pass; return them as numbers and category codes.

        Raises :class:`InputError` naming the record and field. The matrix itself is built per
        batch in :meth:`predict_encoded`, so concurrent requests share that cost.
        """
        spec = self.spec
        numeric = spec.numeric
        use_tables = self.mode == "compiled"
        cats = self._categorical.columns if use_tables and self._categorical else []
        field_set = self.field_set
        n_fields = len(field_set)
        nan = math.nan
        num_rows: list[list[float]] = []
        cat_rows: list[list[Any]] = []
        for i, rec in enumerate(records):
            if type(rec) is not dict:
                raise InputError(
                    f"record {i}: expected a JSON object of fields, got {_json_type(rec)}",
                    kind="not_an_object",
                )
            if len(rec) != n_fields or rec.keys() != field_set:
                _raise_field_set(i, rec, spec)
            row: list[float] = []
            for name in numeric:
                v = rec[name]
                t = type(v)
                if t is float:
                    if v - v != 0.0:  # inf or nan (JSON has neither; Python callers might)
                        raise _range_error(i, name, v)
                elif t is int:
                    try:
                        v = float(v)
                    except OverflowError:
                        raise _range_error(i, name, v) from None
                elif v is None:
                    v = nan
                else:
                    raise InputError(
                        f"record {i}: field {name!r} must be a number or null, got {_json_type(v)}",
                        name,
                        "wrong_type",
                    )
                row.append(v)
            num_rows.append(row)
            if not use_tables:
                vals: list[Any] = []
                for name in spec.categorical:
                    v = rec[name]
                    if v is not None and type(v) is not str:
                        raise _cat_type_error(i, name, v)
                    vals.append(nan if v is None else v)
                cat_rows.append(vals)
                continue
            crow: list[int] = []
            for col in cats:
                v = rec[col.name]
                if type(v) is str:
                    code = col.codes.get(v)
                    if code is None:
                        if not col.unknown_ok:
                            raise InputError(
                                f"record {i}: field {col.name!r} has an unknown category {v!r}",
                                col.name,
                                "unknown_category",
                            )
                        code = col.unknown_code
                elif v is None:
                    code = col.missing_code
                else:
                    raise _cat_type_error(i, col.name, v)
                crow.append(code + col.offset)
            cat_rows.append(crow)
        return Encoded(num_rows, cat_rows)

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
                if n <= 16:
                    # one gather: each column's rows hold its output in its own slice, zeros
                    # elsewhere (few numpy calls: what counts for a handful of rows)
                    X[:, out_cols] = cb.constant + cb.stacked[codes].sum(axis=1)
                else:  # one gather per column (less data: what counts for many rows)
                    block = np.repeat(cb.constant[None, :], n, axis=0)
                    for j, col in enumerate(cb.columns):
                        block[:, cb.slices[j]] = col.table[codes[:, j] - col.offset]
                    X[:, out_cols] = block
        return X

    def _frame(self, num: np.ndarray, raw_cats: list[list[Any]]) -> Any:
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
        clf = self._clf
        if self._trees is not None:
            if X.shape[0] <= _SMALL_BATCH:
                raw = self._trees.raw(X)
            else:
                raw = clf._raw_predict(X, n_threads=1)[:, 0]
            return np.asarray(clf._loss.predict_proba(raw[:, None])[:, 1], dtype=np.float64)
        return np.asarray(clf.predict_proba(X)[:, 1], dtype=np.float64)

    @staticmethod
    def concat(parts: list[Encoded]) -> Encoded:
        """Several requests' records as one batch."""
        if len(parts) == 1:
            return parts[0]
        num: list[list[float]] = []
        cats: list[list[Any]] = []
        for p in parts:
            num += p.num
            cats += p.cats
        return Encoded(num, cats)

    def predict_records(self, records: Sequence[Any]) -> np.ndarray:
        return self.predict_encoded(self.encode(records))

    def predict_frame(self, frame: Any) -> np.ndarray:
        """Score a DataFrame through the same record path the server uses."""
        return self.predict_records(frame_records(frame, self.spec))


@dataclass
class Encoded:
    """Checked records: numeric values (NaN = missing) and category codes, row by row."""

    num: list[list[float]]
    cats: list[list[Any]]

    def __len__(self) -> int:
        return len(self.num)


def _range_error(i: int, name: str, v: Any) -> InputError:
    return InputError(
        f"record {i}: field {name!r} must be a finite number, got {v}", name, "out_of_range"
    )


class _NotCompiled(Exception):
    pass


def frame_records(frame: Any, spec: FieldSpec) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-like records (NaN -> None), feature fields only."""
    import pandas as pd

    cols = list(spec.names)
    sub = frame.loc[:, cols].astype(object)
    sub = sub.where(pd.notna(sub), None)
    out = []
    for row in sub.itertuples(index=False, name=None):
        rec = {}
        for c, v in zip(cols, row, strict=True):
            if isinstance(v, np.generic):
                v = v.item()
            rec[c] = v
        out.append(rec)
    return out


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _cat_type_error(i: int, name: str, v: Any) -> InputError:
    return InputError(
        f"record {i}: field {name!r} must be a string or null, got {_json_type(v)}",
        name,
        "wrong_type",
    )


def _raise_field_set(i: int, rec: Mapping[str, Any], spec: FieldSpec) -> None:
    missing = [n for n in spec.names if n not in rec]
    unknown = sorted(k for k in rec if k not in spec.names)
    if missing:
        raise InputError(f"record {i}: missing field(s) {missing}", missing[0], "missing_field")
    raise InputError(f"record {i}: unknown field(s) {unknown}", unknown[0], "unknown_field")
