"""Reading and cleaning tabular data as the dataset config describes it.

Pure functions of a path (or frame) and :class:`DatasetConfig`; every failure is a
:class:`DataError` whose message names the file and the problem (missing column, empty file,
unreadable file, wrong type, wrong separator). One reader (:func:`read_table`) and one writer
(:func:`write_table`) of batches in the dataset's own format; :mod:`pipelines.formats` tells
what layout a delimited file has.

Memory: a text column is cleaned once per *distinct* value, not per row. Files are read with
text as pandas ``category`` (CSV) or Arrow dictionaries (Parquet); :func:`clean` cleans the
categories and hands back plain ``object`` columns whose cells all point at the same few
``str`` objects. A million-row, 42-column table then costs about 8 bytes per text cell instead
of one Python string per cell (several GB), and the frames look exactly as before to every stage
(``str`` values, ``None`` for missing).
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from pipelines.config import DataFile, DatasetConfig
from pipelines.files import sha256_of, write_atomic
from pipelines.formats import DataError as DataError  # raised here, defined with the sniffing
from pipelines.formats import sniff_layout


def fetch_file(file: DataFile, mirror: Path | None, source_url: str | None, dest: Path) -> Path:
    """Copy a published file from the mirror (or download it) to ``dest``, checking its digest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkstemp(dir=dest.parent, prefix=".fetch-")[1])
    try:
        if mirror is not None and (mirror / file.name).is_file():
            shutil.copyfile(mirror / file.name, tmp)
        elif source_url:
            url = f"{source_url.rstrip('/')}/{file.name}"
            try:
                with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as out:
                    shutil.copyfileobj(r, out)
            except OSError as err:
                raise DataError(
                    f"{file.name}: not in mirror {mirror} and download from {url} failed: {err}"
                ) from None
        else:
            raise DataError(f"{file.name}: not found in mirror {mirror} and no source_url is set")
        if file.sha256 and sha256_of(tmp) != file.sha256:
            raise DataError(
                f"{file.name}: sha256 {sha256_of(tmp)} does not match the expected {file.sha256}"
            )
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _read_delimited(
    path: Path, cfg: DatasetConfig, skip_rows: int, default_na: bool
) -> pd.DataFrame:
    """A delimited file in the dataset's format, with or without its header row (sniffed)."""
    header = sniff_layout(path, cfg, skip_rows)
    return pd.read_csv(
        path,
        header=0 if header else None,
        names=None if header else list(cfg.columns),
        sep=cfg.separator,
        quotechar=cfg.quote_char,
        skiprows=skip_rows,
        skipinitialspace=True,
        na_values=list(cfg.na_values),
        keep_default_na=default_na,
        skip_blank_lines=True,
        dtype="category",  # text per distinct value; clean() returns plain str columns
    )


def read_published(path: Path, cfg: DatasetConfig, skip_rows: int = 0) -> pd.DataFrame:
    """Read a published (delimited) file and clean it."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    if cfg.header and not sniff_layout(path, cfg, skip_rows):
        raise DataError(
            f"{path}: dataset.header is true but the first line does not name dataset.columns"
        )
    try:
        df = _read_delimited(path, cfg, skip_rows, default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise DataError(f"{path}: unreadable as {cfg.name} data: {err}") from None
    return clean(df, cfg, source=str(path))


def read_table(path: Path, cfg: DatasetConfig) -> pd.DataFrame:
    """Read a batch file (delimited in the dataset's format, with or without a header row, or
    Parquet) and clean it: what :func:`write_table` wrote reads back identically."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if path.suffix == ".parquet":
            df = read_parquet(path, text="category")
        elif path.suffix in (".csv", ".gz"):
            df = _read_delimited(path, cfg, 0, default_na=True)
        else:
            raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise DataError(f"{path}: unreadable: {type(err).__name__}: {err}") from None
    if df.empty:
        raise DataError(f"{path}: file has no rows")
    return clean(df, cfg, source=str(path))


def write_table(df: pd.DataFrame, path: Path, cfg: DatasetConfig) -> Path:
    """Write a batch in the dataset's own format (``.parquet``: Parquet), atomically.

    Delimited: ``dataset.separator`` and ``quote_char``, a header row when ``dataset.header``
    says so, or when the frame's columns are not the dataset's columns in order (without one
    the file could not be read back); a missing value is the first of ``dataset.na_values``
    (with a blank separator an empty field would vanish, so ``NA`` when none is set).
    :func:`read_table` reads it back identically.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        return write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))
    if path.suffix not in (".csv", ".gz"):
        raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")
    header = cfg.header or list(df.columns) != list(cfg.columns)
    na_rep = cfg.na_values[0] if cfg.na_values else ("NA" if cfg.separator.isspace() else "")

    def write(tmp: Path) -> None:
        df.to_csv(
            tmp,
            sep=cfg.separator,
            quotechar=cfg.quote_char,
            header=header,
            index=False,
            na_rep=na_rep,
            compression="gzip" if path.suffix == ".gz" else None,
        )

    return write_atomic(path, write)


def check_labels(df: pd.DataFrame, cfg: DatasetConfig, source: str) -> None:
    """The configured label values occur in the data (a typo would train on one class)."""
    values = {str(v) for v in df[cfg.target].dropna().unique()}
    for key, label in (
        ("positive_label", cfg.positive_label),
        ("negative_label", cfg.negative_label),
    ):
        if label is not None and label not in values:
            shown = sorted(values)[:5]
            raise DataError(
                f"{source}: dataset.{key} {label!r} is not a value of column {cfg.target!r} "
                f"(values: {shown})"
            )


def read_parquet(path: Path | str, text: str = "object") -> pd.DataFrame:
    """A Parquet file as a frame, text read through Arrow dictionaries (one Python ``str`` per
    distinct value, not per row).

    ``text="object"``: text columns come back as ``object`` holding shared ``str`` objects and
    ``None`` for missing, as ``pd.read_parquet`` would return them but in a fraction of the
    memory and time. ``text="category"``: left as pandas categoricals (for :func:`clean`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    strings = [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    table = pq.read_table(path, read_dictionary=strings)
    df = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    pa.default_memory_pool().release_unused()  # Arrow's buffers are not needed any more
    if text != "object":
        return df
    coded = {
        c: _codes_and_lookup(df[c].cat.codes.to_numpy(), list(df[c].cat.categories))
        for c in strings
        if isinstance(df[c].dtype, pd.CategoricalDtype)
    }
    other = {c: df[c].array for c in df.columns if c not in coded}
    return _assemble(df.index, list(df.columns), coded, other)


def _codes_and_lookup(codes: np.ndarray, values: list[object]) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` and an object array to look them up in, ``None`` at the end for code -1."""
    lookup = np.empty(len(values) + 1, dtype=object)
    lookup[: len(values)] = values
    lookup[-1] = None
    return codes, lookup


def _assemble(
    index: pd.Index,
    order: list[object],
    text: dict[object, tuple[np.ndarray, np.ndarray]],
    other: dict[object, object],
) -> pd.DataFrame:
    """A frame with the text columns in ONE object block, filled in place from (codes, lookup),
    and the other columns inserted beside it, in ``order``.

    No column is copied twice: building the same frame from a dict of arrays would copy each
    array and then stack the copies (three times the text's size at the peak, about 0.8 GB per
    million rows of a 42-column table), and a frame of one block per column makes every later
    ``copy()`` (GX makes many) stack them again.
    """
    names = [c for c in order if c in text]
    block = np.empty((len(names), len(index)), dtype=object)
    for i, c in enumerate(names):
        codes, lookup = text[c]
        np.take(lookup, codes, out=block[i])  # code -1 takes the last slot: None
    df = pd.DataFrame(block.T, index=index, columns=pd.Index(names, dtype=object), copy=False)
    for pos, c in enumerate(order):
        if c not in text:
            df.insert(pos, c, other[c])
    return df


def _factorized(s: pd.Series) -> tuple[np.ndarray, list[object]]:
    """(codes, distinct values) of a text column; code -1 is missing."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy(), list(s.cat.categories)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return codes, list(uniques)


def _is_text(s: pd.Series) -> bool:
    return (
        s.dtype == object
        or isinstance(s.dtype, pd.CategoricalDtype)
        or isinstance(s.dtype, pd.StringDtype)
    )


def clean(df: pd.DataFrame, cfg: DatasetConfig, source: str = "<frame>") -> pd.DataFrame:
    """Strip strings, normalise labels, and convert numeric features (and the weight column).

    Required columns missing -> DataError naming them. A numeric feature holding text is *not*
    coerced to NaN silently: it is reported as a wrong type. Text columns (object, string or
    category dtype) come back as ``object`` holding ``str`` or ``None``; the work is done once
    per distinct value, and equal values share one ``str`` object (see the module docstring).
    The input frame is not modified.
    """
    required = [*cfg.features.all, cfg.target]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}")
    numeric = set(cfg.features.numeric)
    if cfg.weight and cfg.weight in df.columns:
        numeric.add(cfg.weight)
    na = set(cfg.na_values)
    text: dict[object, tuple[np.ndarray, np.ndarray]] = {}
    other: dict[object, object] = {}
    for col in df.columns:
        s = df[col]
        if col in numeric:
            other[col] = _numeric(s, str(col), source, na)
        elif _is_text(s) or (col == cfg.target and cfg.label_strip_suffix):
            suffix = cfg.label_strip_suffix if col == cfg.target else ""
            codes, uniques = _factorized(s)
            text[col] = _codes_and_lookup(codes, [_clean_text(v, na, suffix) for v in uniques])
        else:
            other[col] = s.array.copy()
    return _assemble(pd.RangeIndex(len(df)), list(df.columns), text, other)


def _clean_text(value: object, na: set[str], suffix: str = "") -> str | None:
    """One distinct value: text, stripped; a missing marker or blank as None."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if text in na or text == "":
        return None
    return text.removesuffix(suffix) if suffix else text


def _numeric(s: pd.Series, col: str, source: str, na: set[str]) -> np.ndarray:
    """A numeric column as float64; text is converted once per distinct value."""
    if not _is_text(s):
        return cast(np.ndarray, to_numeric(s, col, source).to_numpy())
    codes, uniques = _factorized(s)
    texts = [_clean_text(v, na) for v in uniques]
    converted = to_numeric(pd.Series(texts, dtype=object), col, source, codes=codes)
    lookup = np.append(converted.to_numpy(dtype=np.float64), np.nan)  # code -1: missing
    return cast(np.ndarray, lookup[codes])


def to_numeric(
    s: pd.Series, col: str, source: str = "<frame>", codes: np.ndarray | None = None
) -> pd.Series:
    """``s`` as float64; text that is not a number is a DataError naming the column.

    With ``codes`` (each row's index into ``s``, when ``s`` holds a column's distinct values),
    the error counts and shows rows, not distinct values.
    """
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    converted = pd.to_numeric(s, errors="coerce")
    bad = (s.notna() & converted.isna()).to_numpy()
    if bad.any():
        if codes is None:
            n_bad, first = int(bad.sum()), s[bad].head(20)
        else:
            rows = bad[codes] & (codes >= 0)
            n_bad, first = int(rows.sum()), s.iloc[codes[np.flatnonzero(rows)[:20]]]
        examples = sorted({str(v) for v in first})[:3]
        raise DataError(
            f"{source}: column {col!r} should be numeric but has {n_bad} non-numeric "
            f"value(s), e.g. {examples}"
        )
    return converted.astype("float64")


def labels(df: pd.DataFrame, cfg: DatasetConfig) -> np.ndarray:
    """The binary target: 1 where the label equals the positive label."""
    is_positive = df[cfg.target].astype(str) == cfg.positive_label
    return cast(np.ndarray, is_positive.to_numpy(dtype=np.int64))


PARQUET_CHUNK_ROWS = 100_000


def write_parquet(
    df: pd.DataFrame,
    path: Path,
    chunk_rows: int = PARQUET_CHUNK_ROWS,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write atomically (temporary name, then rename), ``chunk_rows`` rows at a time, with
    ``metadata`` (text keys and values) in the file's footer.

    Arrow copies text into its own buffers before writing; a whole million-row frame at once
    would need another ~0.6 GB for that. Chunks (one Parquet row group each) keep the copy
    small; the schema is the whole frame's, so a chunk where a column is all missing still
    writes it as text. Read back, the file is the same frame as ``df.to_parquet`` would give.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(df, preserve_index=False)
    if metadata:
        schema = schema.with_metadata({**(schema.metadata or {}), **metadata})

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema) as writer:
            for start in range(0, max(len(df), 1), chunk_rows):
                chunk = df.iloc[start : start + chunk_rows]
                table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
                writer.write_table(table)

    return write_atomic(Path(path), write)


def parquet_metadata(path: Path) -> dict[str, str]:
    """The text metadata in a Parquet file's footer (the rows are not read)."""
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"pandas")}


def feature_frame(df: pd.DataFrame, cfg: DatasetConfig) -> pd.DataFrame:
    """The model's input: feature columns only, numeric as float64, categorical as object/NaN.

    Training, evaluation and serving all go through this function, so they see the same input.
    The categorical columns are copied once, into one object block (a frame built column by
    column would copy the block again for every column replaced: gigabytes at a million rows).
    """
    categorical = list(cfg.features.categorical)
    block = np.empty((len(categorical), len(df)), dtype=object)
    for i, c in enumerate(categorical):
        row = block[i]
        row[:] = df[c].to_numpy(dtype=object)
        missing = pd.isna(row)
        if missing.any():
            row[missing] = np.nan
    X = pd.DataFrame(
        block.T, index=df.index, columns=pd.Index(categorical, dtype=object), copy=False
    )
    for pos, c in enumerate(cfg.features.numeric):
        X.insert(pos, c, pd.to_numeric(df[c], errors="coerce").astype("float64").to_numpy())
    return X
