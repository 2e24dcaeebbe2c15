"""Writing files so that a reader never sees half of one: every report, result and batch the
stages write goes through a temporary file in the same folder and a rename.

A full disk (or quota) is a :class:`DiskFullError` in one line naming the file and the space
left, and the temporary file is gone: the old file, if any, is still whole. Standard library
only: the serving image's prediction log writes through it too. And the digests of a file:
sha256 (the published files' checksums) and md5 (DVC's data version of a file).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(RuntimeError):
    """A file could not be written for want of space; nothing half written was left."""


def disk_full(path: Path, err: OSError) -> DiskFullError:
    """The one line for ``err`` (ENOSPC/EDQUOT) writing ``path``: the file and the space left."""
    where = Path(path).parent
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = f"{shutil.disk_usage(where).free / 2**20:,.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(
        f"no space left writing {path} ({free} on its file system; {err.strerror}); "
        "nothing half written was left"
    )


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise disk_full(path, err) if err.errno in _FULL else err from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp makes it private; these files are meant to be read
        tmp.replace(path)
    except OSError as err:
        if err.errno in _FULL:
            raise disk_full(path, err) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_folder(path: Path, build: Callable[[Path], object]) -> Path:
    """Call ``build(tmp)`` on a new folder beside ``path``, then put it in place of ``path``.

    For a report a tool writes as many files (a Data Docs site): a reader finds the old folder
    or the complete new one, never a half-built one (between the two renames, briefly neither).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = tmp.with_suffix(".old")
    try:
        try:
            build(tmp)
        except OSError as err:
            if err.errno in _FULL:
                raise disk_full(path, err) from None
            raise
        tmp.chmod(0o755)  # mkdtemp makes it private; reports are meant to be read
        if path.exists():
            path.rename(old)
        try:
            tmp.rename(path)
        except OSError:
            if old.exists():
                old.rename(path)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)  # ``path`` was a file
    return path


def write_text(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj: Any, *, strict: bool = True) -> Path:
    """Indented JSON. ``strict``: NaN/inf are an error (metrics files must stay valid JSON);
    otherwise values JSON does not know (dates, paths) are written as text."""
    if strict:
        text = json.dumps(obj, indent=2, allow_nan=False)
    else:
        text = json.dumps(obj, indent=2, default=str)
    return write_text(path, text + "\n")


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when the file does not exist (yet)."""
    return json.loads(path.read_text()) if path.is_file() else None


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file's bytes, read 1 MiB at a time."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def md5_of(path: Path) -> str:
    """The content hash DVC 3 uses for a single file, i.e. its data version."""
    return file_digest(path, "md5")
