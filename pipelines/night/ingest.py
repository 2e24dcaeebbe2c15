"""Step 1 of a night: validate the batch that landed; quarantine it, or accept and version it.

A rejected batch moves to ``quarantine/<date>[.k]/`` with its validation report (nothing is
overwritten or lost); an accepted one joins the accepted set (a new DVC data version, pushed to
the remote) and its original file is kept under ``landing/processed/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipelines.config import Params
from pipelines.data import read_parquet, read_table, write_parquet
from pipelines.files import write_json
from pipelines.night.record import load_record, save_record
from pipelines.records import BatchValidation, NightRecord

BATCH_SUFFIXES = (".parquet", ".csv")


def find_batch(params: Params, day: str) -> Path | None:
    for suffix in BATCH_SUFFIXES:
        p = params.paths.landing / f"{day}{suffix}"
        if p.is_file():
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
    shutil.copy2(batch, tmp / batch.name)
    tmp.rename(dest)  # the quarantine folder appears complete or not at all
    batch.unlink()
    return dest


def accept_batch(params: Params, df: pd.DataFrame, batch: Path, day: str) -> Path:
    """Write the cleaned batch into the accepted set; keep the original under processed/."""
    out = write_parquet(df, params.paths.accepted_batch(day))
    params.paths.processed.mkdir(parents=True, exist_ok=True)
    batch.rename(_free_name(params.paths.processed, batch.name))
    return out


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
    from pipelines.stages import validate

    night_dir = params.paths.night(day)
    night_dir.mkdir(parents=True, exist_ok=True)
    rec = load_record(params, day)
    rec.outcome = None
    rec.champion_before = rec.champion_before or registry.champion_version(params)
    accepted_file = params.paths.accepted_batch(day)
    if batch is None:
        batch = find_batch(params, day)
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
            report=str(page),
        )
        if not result.success:
            dest = quarantine_batch(params, batch, day, [vjson, docs])
            progress(f"[{day}] batch REJECTED ({len(result.failed)} failed); quarantined in {dest}")
            rec.quarantined_to = str(dest)
            rec.outcome = "batch_rejected"
            return save_record(params, rec)
        df = read_table(batch, params.dataset)
        accept_batch(params, df, batch, day)
        progress(f"[{day}] batch accepted: {len(df):,} rows")
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
