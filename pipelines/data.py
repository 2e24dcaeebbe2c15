"""Reading and cleaning tabular data as the dataset config describes it.

Pure functions of a path (or frame) and :class:`DatasetConfig`; every failure is a
:class:`DataError` whose message names the file and the problem (missing column, empty file,
unreadable file, wrong type).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import DataFile, DatasetConfig


class DataError(ValueError):
    """Input data that cannot be used; the message names the file and the problem."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def md5_of(path: Path) -> str:
    """The content hash DVC 3 uses for a single file, i.e. its data version."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def read_published(path: Path, cfg: DatasetConfig, skip_rows: int = 0) -> pd.DataFrame:
    """Read a published (headerless, delimited) file and clean it."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        df = pd.read_csv(
            path,
            header=None,
            names=list(cfg.columns),
            sep=cfg.separator,
            skiprows=skip_rows,
            skipinitialspace=True,
            na_values=list(cfg.na_values),
            keep_default_na=False,
            skip_blank_lines=True,
            dtype=str,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise DataError(f"{path}: unreadable as {cfg.name} data: {err}") from None
    return clean(df, cfg, source=str(path))


def read_table(path: Path, cfg: DatasetConfig) -> pd.DataFrame:
    """Read a batch file (CSV with a header row, or Parquet) and clean it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
            for c in df.columns:  # text as str, missing stays missing
                if df[c].dtype == object:
                    df[c] = df[c].where(df[c].isna(), df[c].astype(str))
        elif path.suffix in (".csv", ".gz"):
            df = pd.read_csv(
                path,
                sep=cfg.separator,
                skipinitialspace=True,
                na_values=list(cfg.na_values),
                keep_default_na=True,
                dtype=str,
            )
        else:
            raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise DataError(f"{path}: unreadable: {type(err).__name__}: {err}") from None
    if df.empty:
        raise DataError(f"{path}: file has no rows")
    return clean(df, cfg, source=str(path))


def clean(df: pd.DataFrame, cfg: DatasetConfig, source: str = "<frame>") -> pd.DataFrame:
    """Strip strings, normalise labels, and convert numeric features.

    Required columns missing -> DataError naming them. A numeric feature holding text is *not*
    coerced to NaN silently: it is reported as a wrong type.
    """
    required = [*cfg.features.all, cfg.target]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}")
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object:
            s = df[col].astype("string").str.strip()
            s = s.mask(s.isin(list(cfg.na_values)) | (s == ""))
            df[col] = s.astype(object).where(s.notna(), None)
    if cfg.label_strip_suffix:
        t = df[cfg.target].astype("string")
        df[cfg.target] = t.str.removesuffix(cfg.label_strip_suffix).astype(object)
    for col in cfg.features.numeric:
        df[col] = to_numeric(df[col], col, source)
    return df.reset_index(drop=True)


def to_numeric(s: pd.Series, col: str, source: str = "<frame>") -> pd.Series:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    converted = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & converted.isna()
    if bad.any():
        examples = sorted({str(v) for v in s[bad].head(20)})[:3]
        raise DataError(
            f"{source}: column {col!r} should be numeric but has {int(bad.sum())} non-numeric "
            f"value(s), e.g. {examples}"
        )
    return converted.astype("float64")


def labels(df: pd.DataFrame, cfg: DatasetConfig) -> np.ndarray:
    """The binary target: 1 where the label equals the positive label."""
    return (df[cfg.target].astype(str) == cfg.positive_label).to_numpy(dtype=np.int64)


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path
