"""The columnar request: ``{"columns": [...], "data": [[...], ...]}``, read column by column.

The same contract as a record (:mod:`pipelines.serve.inputs`): exactly the model's feature
fields, numeric ones a number or null, categorical ones a string or null, the same error kinds
naming the row and the field. What differs is the work: a column's values are checked with one
set of their types and turned into numbers or category codes with one C-level call each
(``numpy.array``, ``map(dict.get, ...)``), not a Python step per value; only a column with a
problem is walked value by value, to name the first bad row. A batch of records is read the
same way once the records themselves are checked to be objects of the right fields
(:func:`records_columns`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from pipelines.serve.inputs import (
    CodedColumn,
    Encoded,
    FieldSpec,
    InputError,
    _json_type,
)

_NUMBER: set[type] = {float, int, type(None)}
_TEXT: set[type] = {str, type(None)}


@dataclass
class Columns:
    """A columnar request's column names and rows (each a list of ``len(names)`` values)."""

    names: list[str]
    data: list[Any]

    def __len__(self) -> int:
        return len(self.data)


def read_columns(body: dict[str, Any]) -> Columns:
    """Check the shape of ``{"columns": [...], "data": [[...], ...]}``; the values are checked
    when encoded. Raises :class:`InputError` naming what is wrong."""
    extra = sorted(k for k in body if k not in ("columns", "data"))
    if extra:
        raise InputError(
            f"unknown top-level field(s) {extra} beside 'columns' and 'data'",
            extra[0],
            "unknown_field",
        )
    names, data = body["columns"], body.get("data")
    if type(names) is not list or any(type(c) is not str for c in names):
        raise InputError("'columns' must be an array of field names", "columns", "shape")
    if len(set(names)) != len(names):
        twice = sorted({c for c in names if names.count(c) > 1})
        raise InputError(f"column(s) {twice} named more than once", twice[0], "shape")
    if type(data) is not list:
        raise InputError("'data' must be an array of rows (arrays of values)", "data", "shape")
    if data and (set(map(type, data)) != {list} or set(map(len, data)) != {len(names)}):
        for i, row in enumerate(data):
            if type(row) is not list:
                raise InputError(
                    f"row {i} of 'data': expected an array of values, got {_json_type(row)}",
                    "data",
                    "not_an_array",
                )
            if len(row) != len(names):
                raise InputError(
                    f"row {i} of 'data': {len(row)} values for {len(names)} columns",
                    "data",
                    "ragged_row",
                )
    return Columns(names, data)


def records_columns(records: Sequence[Any], spec: FieldSpec) -> Columns | None:
    """A batch of records as columns when every record is an object of exactly the fields;
    None otherwise (the record-by-record check then names the first problem)."""
    fields = spec.field_set
    if set(map(type, records)) != {dict} or set(map(len, records)) != {len(fields)}:
        return None
    if not all(r.keys() == fields for r in records):
        return None
    names = list(spec.names)
    return Columns(names, list(map(itemgetter(*names), records)))


def encode_columns(
    cols: Columns, spec: FieldSpec, coded: Sequence[CodedColumn] | None, what: str = "row"
) -> Encoded:
    """Check a columnar batch column by column; return it as numbers and category codes (or
    raw categories when ``coded`` is None: a model served by its own ``predict_proba``)."""
    if not cols.data:
        raise InputError("no rows to score", "data", "empty_batch")
    present = set(cols.names)
    missing = [n for n in spec.names if n not in present]
    if missing:
        raise InputError(f"missing column(s) {missing}", missing[0], "missing_field")
    unknown = [c for c in cols.names if c not in spec.field_set]
    if unknown:
        raise InputError(f"unknown column(s) {unknown}", unknown[0], "unknown_field")
    by_name = dict(zip(cols.names, zip(*cols.data, strict=True), strict=True))
    n = len(cols.data)
    num = np.empty((n, len(spec.numeric)))
    for j, name in enumerate(spec.numeric):
        num[:, j] = _numbers(by_name[name], name, what)
    if coded is None:
        raw = np.empty((n, len(spec.categorical)), dtype=object)
        for j, name in enumerate(spec.categorical):
            values = by_name[name]
            if not set(map(type, values)) <= _TEXT:
                _first_bad(values, name, what, _TEXT)
            raw[:, j] = [math.nan if v is None else v for v in values]
        return Encoded(num, raw)
    codes = np.empty((n, len(coded)), dtype=np.intp)
    for j, col in enumerate(coded):
        codes[:, j] = _codes(by_name[col.name], col, what)
    return Encoded(num, codes)


def _numbers(values: tuple[Any, ...], name: str, what: str) -> np.ndarray:
    types = set(map(type, values))
    if not types <= _NUMBER:
        _first_bad(values, name, what, _NUMBER)
    try:
        arr = np.array(values, dtype=np.float64)  # null -> NaN, the missing value
    except OverflowError:  # an integer beyond float64
        for i, v in enumerate(values):
            if type(v) is int and not -1e308 < v < 1e308:
                raise InputError(
                    f"{what} {i}: field {name!r} must be a finite number, got {v}",
                    name,
                    "out_of_range",
                ) from None
        raise
    if float in types and not np.isfinite(arr).all():
        bad = np.isinf(arr)
        if not bad.any() and np.isnan(arr).sum() > values.count(None):  # a NaN sent as a value
            bad = np.array([type(v) is float and v != v for v in values])
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"{what} {i}: field {name!r} must be a finite number, got {values[i]}",
                name,
                "out_of_range",
            )
    return arr


def _codes(values: tuple[Any, ...], col: CodedColumn, what: str) -> np.ndarray:
    try:
        codes = list(map(col.codes.get, values))
    except TypeError:  # an unhashable value (an array, an object)
        _first_bad(values, col.name, what, _TEXT)
        raise
    if None in codes:
        for i, code in enumerate(codes):
            if code is not None:
                continue
            v = values[i]
            if v is None:
                codes[i] = col.missing_code
            elif type(v) is not str:
                _first_bad(values[i : i + 1], col.name, f"{what} {i}", _TEXT)
            elif col.unknown_ok:
                codes[i] = col.unknown_code
            else:
                raise InputError(
                    f"{what} {i}: field {col.name!r} has an unknown category {v!r}",
                    col.name,
                    "unknown_category",
                )
    return np.asarray(codes, dtype=np.intp) + col.offset


def _first_bad(values: Sequence[Any], name: str, what: str, allowed: set[type]) -> None:
    for i, v in enumerate(values):
        if type(v) not in allowed:
            kind = "a number or null" if allowed is _NUMBER else "a string or null"
            where = what if " " in what else f"{what} {i}"  # (one value: its row is in `what`)
            raise InputError(
                f"{where}: field {name!r} must be {kind}, got {_json_type(v)}",
                name,
                "wrong_type",
            )
