"""The layout of a delimited file in the dataset's format: whether it starts with a header
row, and, when its first line does not split into the dataset's columns, which separator
would (a wrong ``dataset.separator`` is named in one line, before a one-column table is read).
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import IO

from pipelines.config import DatasetConfig


class DataError(ValueError):
    """Input data that cannot be used; the message names the file and the problem."""


SEPARATOR_NAMES = {",": "',' (comma)", ";": "';' (semicolon)", "\t": "tab", " ": "' ' (space)"}
SEPARATORS = (",", ";", "\t", "|", " ")


def _separator_name(sep: str) -> str:
    return SEPARATOR_NAMES.get(sep, repr(sep))


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _first_line(path: Path, skip_rows: int) -> str | None:
    """The first non-blank line after ``skip_rows`` lines, or None."""
    with _open_text(path) as f:
        for i, line in enumerate(f):
            if i >= skip_rows and line.strip():
                return line.rstrip("\r\n")
    return None


def _fields(line: str, sep: str, quote: str) -> list[str]:
    row = next(csv.reader([line], delimiter=sep, quotechar=quote, skipinitialspace=True), [])
    return [f.strip() for f in row]


def _is_header(fields: list[str], cfg: DatasetConfig) -> bool:
    """A row of column names: most of its fields name the dataset's columns."""
    names = set(cfg.columns)
    return sum(f in names for f in fields) * 2 > len(fields)


def _likely_separator(line: str, cfg: DatasetConfig) -> str | None:
    """The separator that splits ``line`` into the dataset's columns (or into most fields)."""
    counts = {
        sep: len(_fields(line, sep, cfg.quote_char)) for sep in SEPARATORS if sep != cfg.separator
    }
    exact = [s for s, n in counts.items() if n == len(cfg.columns)]
    if exact:
        return exact[0]
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 1 else None


def sniff_layout(path: Path, cfg: DatasetConfig, skip_rows: int = 0) -> bool:
    """Whether the file starts with a header row; a DataError naming the separator when the
    first line does not split into the dataset's columns (a wrong ``dataset.separator``)."""
    line = _first_line(path, skip_rows)
    if line is None:
        raise DataError(f"{path}: file has no rows")
    fields = _fields(line, cfg.separator, cfg.quote_char)
    expected, sep = len(cfg.columns), _separator_name(cfg.separator)
    if len(fields) == 1 and expected > 1:
        guess = _likely_separator(line, cfg)
        hint = f"; the file looks {_separator_name(guess)}-separated" if guess else ""
        raise DataError(
            f"{path}: one column read where {expected} were expected with separator {sep} "
            f"(dataset.separator){hint}"
        )
    header = _is_header(fields, cfg)
    if not header and len(fields) != expected:
        raise DataError(
            f"{path}: {len(fields)} fields on the first data line where {expected} were "
            f"expected (dataset.columns, separator {sep})"
        )
    return header
