"""The fitted preprocessing of a ColumnTransformer, as precomputed numpy work.

* numeric columns: the imputer's fill values and the scaler's mean/scale, applied with the same
  float64 operations in the same order as scikit-learn (``x -= mean; x /= scale``);
* categorical columns: each column's fitted transformer tabulated once over its known values,
  a missing value and an unknown value, so a record's categories become integer codes and the
  encoded block a row gather.

Anything not recognised here returns None, and the scorer serves the model itself. The
attributes read from fitted objects are listed in :mod:`pipelines.serve.internals`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

_UNKNOWN = "\x00<unknown category>"
_FEW_ROWS = 16  # up to this many rows, one gather over the stacked tables is fastest


@dataclass
class NumericBlock:
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
class CategoricalColumn:
    """One column's codes (a :class:`pipelines.serve.inputs.CodedColumn`) and their outputs."""

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
class CategoricalBlock:
    columns: list[CategoricalColumn]
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

    def gather(self, codes: np.ndarray) -> np.ndarray:
        """The encoded block for ``codes`` (n, columns), each code offset into ``stacked``."""
        n = codes.shape[0]
        if n <= _FEW_ROWS:
            # one gather: each column's rows hold its output in its own slice, zeros elsewhere
            # (few numpy calls: what counts for a handful of rows)
            return cast(np.ndarray, self.constant + self.stacked[codes].sum(axis=1))
        block = np.repeat(self.constant[None, :], n, axis=0)
        for j, col in enumerate(self.columns):  # one gather per column: less data for many rows
            block[:, self.slices[j]] = col.table[codes[:, j] - col.offset]
        return block

    def column(self, name: str) -> CategoricalColumn | None:
        return next((c for c in self.columns if c.name == name), None)


def numeric_steps(trans: Any) -> list[tuple[str, np.ndarray]] | None:
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


def tabulate(trans: Any, cols: Sequence[str]) -> CategoricalBlock | None:
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
    columns: list[CategoricalColumn] = []
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
            CategoricalColumn(
                c, {v: i for i, v in enumerate(known[j])}, table[:, moved].copy(), unknown_ok
            )
        )
        slices.append(moved)
    return CategoricalBlock(columns, slices, width, base_out.copy())


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
