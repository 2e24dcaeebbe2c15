"""Step 1 of a night: validate the batch that landed; quarantine it, or accept and version it.

A rejected batch moves to ``quarantine/<date>[.k]/`` with its validation report (nothing is
overwritten or lost); an accepted one joins the accepted set (a new DVC data version, pushed to
the remote) and its original file is kept under ``landing/processed/``.

A batch is taken only from the landing folder (or a folder of ``nightly.batch_folders``), as
a regular file that is no symlink and resolves inside that folder (:func:`confine_batch`);
a file outside the workspace is copied, never moved or deleted.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from pipelines.config import Params
from pipelines.data import read_parquet, read_table, write_parquet
from pipelines.files import write_json
from pipelines.night.record import load_record, save_record
from pipelines.records import BatchValidation, NightRecord

BATCH_SUFFIXES = (".parquet", ".csv")


class BatchPathError(ValueError):
    """A batch path the night will not touch; the message names it and says why."""


def batch_folders(params: Params) -> list[Path]:
    """Where a batch may come from: the landing folder, then ``nightly.batch_folders``."""
    return [params.paths.landing, *(params.path(p) for p in params.nightly.batch_folders)]


def confine_batch(params: Params, batch: Path) -> Path:
    """``batch`` (absolute, or relative to the current folder) as an absolute path, if it is
    a regular file, no symlink, with a batch suffix, inside an allowed folder once every link
    on the way is resolved; else :class:`BatchPathError` naming it."""
    given = Path(os.path.abspath(batch))
    try:
        st = given.lstat()
    except OSError:
        raise BatchPathError(f"batch {given}: no such file") from None
    if stat.S_ISLNK(st.st_mode):
        raise BatchPathError(f"batch {given}: a symlink; refusing to follow it")
    if not stat.S_ISREG(st.st_mode):
        raise BatchPathError(f"batch {given}: not a regular file")
    if given.suffix not in BATCH_SUFFIXES:
        raise BatchPathError(f"batch {given}: not a {' or '.join(BATCH_SUFFIXES)} file")
    real = given.resolve()
    folders = batch_folders(params)
    if not any(real.is_relative_to(f.resolve()) for f in folders):
        allowed = ", ".join(str(f) for f in folders)
        raise BatchPathError(
            f"batch {given}: outside the folders a batch may come from ({allowed}; "
            "nightly.batch_folders adds one)"
        )
    return given


def _in_workspace(params: Params, path: Path) -> bool:
    return path.resolve().is_relative_to(params.root.resolve())


def find_batch(params: Params, day: str) -> Path | None:
    for suffix in BATCH_SUFFIXES:
        p = params.paths.landing / f"{day}{suffix}"
        if p.is_file() or p.is_symlink():
            return p
    return None


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name.2``, ``name.3``... so nothing is ever overwritten."""
    p, k = folder / name, 2
    while p.exists():
        p, k = folder / f"{name}.{k}", k + 1
    return p


def quarantine_batch(params: Params, batch: Path, day: str, report_files: list[Path]) -> Path:
    """Move the batch and its validation report to ``quarantine/<date>[.k]/``."""
    quarantine = params.paths.quarantine
    quarantine.mkdir(parents=True, exist_ok=True)
    dest = _free_name(quarantine, day)
    tmp = quarantine / f".{dest.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for f in report_files:
        copy = shutil.copytree if f.is_dir() else shutil.copy2
        copy(f, tmp / f.name)
    batch = confine_batch(params, batch)
    shutil.copy2(batch, tmp / batch.name)
    tmp.rename(dest)  # the quarantine folder appears complete or not at all
    if _in_workspace(params, batch):  # a file outside the workspace is never deleted
        batch.unlink()
    return dest


def accept_batch(params: Params, df: pd.DataFrame, batch: Path, day: str) -> Path:
    """Write the cleaned batch into the accepted set; keep the original under processed/.
    Returns where the original is kept now (the night's record names that file)."""
    from pipelines.stages.window import ACCEPTED_AT

    batch = confine_batch(params, batch)
    at = {ACCEPTED_AT: datetime.now(UTC).isoformat(timespec="microseconds")}  # the window's judge
    write_parquet(df, params.paths.accepted_batch(day), metadata=at)
    params.paths.processed.mkdir(parents=True, exist_ok=True)
    kept = _free_name(params.paths.processed, batch.name)
    if _in_workspace(params, batch):
        batch.rename(kept)
    else:  # a file outside the workspace is never moved
        shutil.copy2(batch, kept)
    return kept


def ingest(
    params: Params,
    day: str,
    batch: Path | None = None,
    progress: Callable[[str], None] = print,
) -> NightRecord:
    """Validate tonight's batch; quarantine it, or accept and version it.

    Sets ``outcome`` to ``no_batch`` or ``batch_rejected`` when the night ends here.
    """
    from pipelines.edges import dvc, registry
    from pipelines.night.summary import accepted_text
    from pipelines.stages import validate
    from pipelines.stages.window import read_retractions

    if batch is None:
        batch = find_batch(params, day)
    if batch is not None and (batch.is_file() or batch.is_symlink()):
        batch = confine_batch(params, batch)  # before anything is read or written
    night_dir = params.paths.night(day)
    night_dir.mkdir(parents=True, exist_ok=True)
    rec = load_record(params, day)
    rec.outcome = None
    rec.champion_before = rec.champion_before or registry.champion_version(params)
    retracted = read_retractions(params.paths.accepted)
    rec.retracted = [f"{d}: {reason}" for d, reason in retracted.items()]
    if retracted:
        progress(f"[{day}] retracted, left out of training: {', '.join(rec.retracted)}")
    accepted_file = params.paths.accepted_batch(day)
    if batch is not None and batch.is_file():
        rec.batch = str(batch)
        progress(f"[{day}] validate {batch}")
        suite = validate.load_suite(params.paths.suite)
        result = validate.validate_file(batch, suite, params)
        out = params.paths.night_validation(day)
        vjson = write_json(out.result, result.to_dict(), strict=False)
        docs = out.docs
        page = validate.write_report(result, docs, f"Validation of batch {day}")
        rec.rows = result.n_rows
        rec.validation = BatchValidation(
            success=result.success,
            evaluated=result.evaluated,
            failed=[f"{f.expectation}: {f.message}" for f in result.failed],
            warned=[f"{f.expectation}: {f.message}" for f in result.warned],
            report=str(page),
        )
        if not result.success:
            dest = quarantine_batch(params, batch, day, [vjson, docs])
            progress(f"[{day}] batch REJECTED ({len(result.failed)} failed); quarantined in {dest}")
            rec.quarantined_to = str(dest)
            rec.batch = str(dest / batch.name)  # where the file is now
            rec.outcome = "batch_rejected"
            return save_record(params, rec)
        df = read_table(batch, params.dataset)
        rec.batch = str(accept_batch(params, df, batch, day))  # where the file is now
        progress(f"[{day}] batch {accepted_text(rec)}: {len(df):,} rows")
    elif accepted_file.is_file():
        progress(f"[{day}] batch already accepted on an earlier run: continuing")
        rec.batch = rec.batch or str(accepted_file)
    else:
        progress(f"[{day}] no batch landed in {params.paths.landing}: nothing to do")
        rec.outcome = "no_batch"
        return save_record(params, rec)
    rec.data_version = dvc.version_accepted(params)
    rec.rows = rec.rows or len(read_parquet(accepted_file))
    return save_record(params, rec)
