"""The request contract: which fields a record carries, how each is checked, and the errors.

A record is a JSON object with exactly the model's feature fields: numeric ones a number or null,
categorical ones a string or null. :func:`encode_records` checks a batch of records in one pass
and turns them into numbers and category codes (or, for a model served by its own
``predict_proba``, raw category values); the first problem raises :class:`InputError`, which
names the record and the field. Nothing here imports scikit-learn or pandas at import time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np

NUMERIC_TYPES = {"double", "float", "long", "integer"}
MAX_ID = 128  # characters of a request id
MAX_ROW = 2**31 - 1  # rows are stored as 32-bit integers (Parquet int32, PostgreSQL integer)


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

    @cached_property
    def field_set(self) -> frozenset[str]:
        return frozenset(self.names)


class CodedColumn(Protocol):
    """A categorical column's codes, as the compiled preprocessing tabulated them."""

    name: str
    codes: dict[str, int]  # known value -> code
    unknown_ok: bool  # False: an unknown category is bad input (the encoder would refuse it)
    offset: int  # added to every code of this column
    missing_code: int
    unknown_code: int


@dataclass
class Encoded:
    """Checked records: numeric values (NaN = missing) and category codes, row by row (lists,
    from records one by one) or as (rows, fields) arrays (from columns)."""

    num: list[list[float]] | np.ndarray
    cats: list[list[Any]] | np.ndarray

    def __len__(self) -> int:
        return len(self.num)


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


def encode_records(
    records: Sequence[Any], spec: FieldSpec, coded: Sequence[CodedColumn] | None
) -> Encoded:
    """Check records (JSON objects) in one pass; return them as numbers and category codes.

    ``coded``: the categorical columns' codes, in the order the compiled preprocessing wants
    them; None keeps the raw values (NaN for null), for a model served by its own
    ``predict_proba``. Raises :class:`InputError` naming the record and field.
    """
    numeric = spec.numeric
    field_set = spec.field_set
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
        if coded is None:
            vals: list[Any] = []
            for name in spec.categorical:
                v = rec[name]
                if v is not None and type(v) is not str:
                    raise _cat_type_error(i, name, v)
                vals.append(nan if v is None else v)
            cat_rows.append(vals)
            continue
        crow: list[int] = []
        for col in coded:
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


def concat(parts: list[Encoded]) -> Encoded:
    """Several requests' records as one batch."""
    if len(parts) == 1:
        return parts[0]
    arrays = [p for p in parts if isinstance(p.num, np.ndarray)]
    if arrays:  # some came as columns: one array each
        like = arrays[0]
        assert isinstance(like.num, np.ndarray) and isinstance(like.cats, np.ndarray)
        (_, k), (_, c), kind = like.num.shape, like.cats.shape, like.cats.dtype
        return Encoded(
            np.concatenate([np.asarray(p.num, dtype=np.float64).reshape(len(p), k) for p in parts]),
            np.concatenate([np.asarray(p.cats, dtype=kind).reshape(len(p), c) for p in parts]),
        )
    num: list[list[float]] = []
    cats: list[list[Any]] = []
    for p in parts:
        num += p.num
        cats += p.cats
    return Encoded(num, cats)


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


def _range_error(i: int, name: str, v: Any) -> InputError:
    return InputError(
        f"record {i}: field {name!r} must be a finite number, got {v}", name, "out_of_range"
    )


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


def parse_outcomes(data: Any, labels: tuple[str, str]) -> list[tuple[str, int, str]]:
    """``POST /feedback``'s body (``{"outcomes": [...]}``, a list, or one outcome) as
    ``(request_id, row, label)``; an :class:`InputError` names the outcome and field."""
    if type(data) is dict:
        data = data.get("outcomes", [data] if "request_id" in data else None)
    if type(data) is not list or not data:
        raise InputError(
            'expected {"outcomes": [{"request_id": ..., "row": 0, "label": ...}, ...]}',
            "outcomes",
            "shape",
        )
    out: list[tuple[str, int, str]] = []
    for i, o in enumerate(data):
        rid = o.get("request_id") if type(o) is dict else None
        if type(rid) is not str or not rid:
            raise InputError(
                f"outcome {i}: 'request_id' (a string) is required", "request_id", "shape"
            )
        if not is_request_id(rid):
            raise InputError(
                f"outcome {i}: 'request_id' must be 1-{MAX_ID} printable ASCII characters",
                "request_id",
                "shape",
            )
        row = o.get("row", 0)
        if type(row) is not int or not 0 <= row < MAX_ROW:
            raise InputError(
                f"outcome {i}: 'row' must be an integer from 0 to {MAX_ROW - 1}, got {row!r}",
                "row",
                "out_of_range" if type(row) is int else "shape",
            )
        label = o.get("label")
        if label not in labels:
            raise InputError(
                f"outcome {i}: 'label' must be one of {list(labels)}, got {label!r}",
                "label",
                "unknown_label",
            )
        out.append((rid, row, str(label)))
    return out


def is_request_id(value: str | bytes) -> bool:
    """A request id the log can store anywhere: 1-128 printable ASCII characters, no space."""
    codes = [ord(c) for c in value] if isinstance(value, str) else value
    return 0 < len(codes) <= MAX_ID and all(32 < b < 127 for b in codes)
