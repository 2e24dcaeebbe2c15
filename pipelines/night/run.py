"""The nightly cycle: one batch of newly labelled rows for a date, from landing to serving.

    land -> validate -> (quarantine | accept + DVC version) -> drift -> retrain? ->
    `dvc repro` (window, train, evaluate, fairness, gate, register) -> summary

Outcomes (all exit 0; only errors are non-zero):
- ``no_batch``          nothing landed for the date: nothing to do, champion untouched.
- ``batch_rejected``    the batch failed validation and was moved to quarantine with its report.
- ``no_retrain``        the batch was accepted; no drift, not scheduled, not forced.
- ``promoted``          a challenger was trained and passed the gate; it is the champion now.
- ``not_promoted``      a challenger was trained and failed the gate; it is kept, tagged rejected.
- ``dry_run``           a challenger was trained and judged, but the registry was not touched.

Reruns are safe: a date whose batch was already accepted is not ingested twice, and the DVC
pipeline redoes only what did not finish. Two nights at once: the second waits up to
``nightly.lock_timeout_seconds`` for the lock, then refuses with a clear message.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import Params
from pipelines.data import read_parquet, read_table, write_parquet
from pipelines.files import write_json

BATCH_SUFFIXES = (".parquet", ".csv")


class NightBusyError(RuntimeError):
    """Another night holds the workspace lock."""


@dataclass(frozen=True)
class NightPaths:
    landing: Path
    quarantine: Path
    processed: Path
    accepted: Path
    reports: Path  # reports/nights/<date>

    @classmethod
    def of(cls, params: Params, day: str) -> NightPaths:

        landing = params.path(params.nightly.landing)
        return cls(
            landing=landing,
            quarantine=params.path(params.nightly.quarantine),
            processed=landing / "processed",
            accepted=params.paths.accepted,
            reports=params.paths.nights / day,
        )


@contextmanager
def night_lock(params: Params, timeout: float | None = None) -> Iterator[None]:
    """Exclusive lock on the workspace for one night (released even if the process dies)."""
    path = params.paths.lock
    path.parent.mkdir(parents=True, exist_ok=True)
    timeout = params.nightly.lock_timeout_seconds if timeout is None else timeout
    with open(path, "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    f.seek(0)
                    holder = f.read().strip() or "unknown"
                    raise NightBusyError(
                        f"another night is running in {params.root} (lock {path}, held by "
                        f"{holder}); not starting a second one"
                    ) from None
                time.sleep(0.5)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def parse_day(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"--date: {value!r} is not a date (use YYYY-MM-DD)") from None


def find_batch(paths: NightPaths, day: str) -> Path | None:
    for suffix in BATCH_SUFFIXES:
        p = paths.landing / f"{day}{suffix}"
        if p.is_file():
            return p
    return None


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name.2``, ``name.3``... so nothing is ever overwritten."""
    p, k = folder / name, 2
    while p.exists():
        p, k = folder / f"{name}.{k}", k + 1
    return p


def quarantine_batch(batch: Path, paths: NightPaths, day: str, report_files: list[Path]) -> Path:
    """Move the batch and its validation report to ``quarantine/<date>[.k]/``."""
    paths.quarantine.mkdir(parents=True, exist_ok=True)
    dest = _free_name(paths.quarantine, day)
    tmp = paths.quarantine / f".{dest.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for f in report_files:
        shutil.copy2(f, tmp / f.name)
    shutil.copy2(batch, tmp / batch.name)
    tmp.rename(dest)  # the quarantine folder appears complete or not at all
    batch.unlink()
    return dest


def accept_batch(df: pd.DataFrame, batch: Path, paths: NightPaths, day: str) -> Path:
    """Write the cleaned batch into the accepted set; keep the original under processed/."""
    out = write_parquet(df, paths.accepted / f"{day}.parquet")
    paths.processed.mkdir(parents=True, exist_ok=True)
    batch.rename(_free_name(paths.processed, batch.name))
    return out


def load_state(params: Params) -> dict[str, Any]:
    p = params.paths.night_state
    return json.loads(p.read_text()) if p.is_file() else {}


def save_state(params: Params, state: dict[str, Any]) -> None:
    write_json(params.paths.night_state, state)


def retrain_reasons(
    params: Params,
    *,
    forced: bool,
    has_champion: bool,
    dataset_drift: bool,
    target_drift: bool,
    nights_since_retrain: int | None,
) -> list[str]:
    """Why tonight trains a challenger (empty: it does not). Pure."""
    cfg = params.nightly
    reasons = []
    if forced:
        reasons.append("forced")
    if not has_champion:
        reasons.append("no champion yet")
    if cfg.retrain_on_drift and dataset_drift:
        reasons.append("data drift")
    if cfg.retrain_on_target_drift and target_drift:
        reasons.append("target drift")
    if (
        cfg.retrain_every
        and nights_since_retrain is not None
        and (nights_since_retrain >= cfg.retrain_every)
    ):
        reasons.append(f"schedule (every {cfg.retrain_every} nights)")
    return reasons


PIPELINE_STAGES = (
    "window",
    "validate",
    "drift",
    "train",
    "evaluate",
    "fairness",
    "gate",
    "register",
)


def load_record(params: Params, day: str) -> dict[str, Any]:
    """The night's record so far (each step adds to it; a rerun continues from it)."""
    p = params.paths.night_record(day)
    if p.is_file():
        return json.loads(p.read_text())
    return {
        "date": day,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "batch": None,
        "rows": None,
        "validation": None,
        "data_version": None,
        "drift": None,
        "retrained": False,
        "retrain_reasons": [],
        "challenger": None,
        "champion": None,
        "fairness": None,
        "gate": None,
        "promoted": None,
        "serving": None,
        "outcome": None,
        "reports": str(p.parent),
    }


def save_record(params: Params, day: str, record: dict[str, Any]) -> dict[str, Any]:
    write_json(params.paths.night_record(day), record, strict=False)
    return record


def ingest(
    params: Params,
    day: str,
    batch: Path | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Step 1: validate tonight's batch; quarantine it, or accept and version it.

    Sets ``outcome`` to ``no_batch`` or ``batch_rejected`` when the night ends here.
    """
    from pipelines.edges import dvc as workspace
    from pipelines.edges import registry
    from pipelines.stages import validate

    paths = NightPaths.of(params, day)
    paths.reports.mkdir(parents=True, exist_ok=True)
    rec = load_record(params, day)
    rec["outcome"] = None
    rec["champion_before"] = rec.get("champion_before") or registry.champion_version(params)
    accepted_file = paths.accepted / f"{day}.parquet"
    if batch is None:
        batch = find_batch(paths, day)
    if batch is not None and batch.is_file():
        rec["batch"] = str(batch)
        progress(f"[{day}] validate {batch}")
        suite = validate.load_suite(params.paths.suite)
        result = validate.validate_file(batch, suite, params)
        vjson = write_json(paths.reports / "validation.json", result.to_dict(), strict=False)
        vhtml = paths.reports / "validation.html"
        vhtml.write_text(validate.render_html(result, f"Validation of batch {day}"))
        rec["rows"] = result.n_rows
        rec["validation"] = {
            "success": result.success,
            "evaluated": result.evaluated,
            "failed": [f"{f.expectation}: {f.message}" for f in result.failed],
            "report": str(vhtml),
        }
        if not result.success:
            dest = quarantine_batch(batch, paths, day, [vjson, vhtml])
            progress(f"[{day}] batch REJECTED ({len(result.failed)} failed); quarantined in {dest}")
            rec["quarantined_to"] = str(dest)
            rec["outcome"] = "batch_rejected"
            return save_record(params, day, rec)
        df = read_table(batch, params.dataset)
        accept_batch(df, batch, paths, day)
        progress(f"[{day}] batch accepted: {len(df):,} rows")
    elif accepted_file.is_file():
        progress(f"[{day}] batch already accepted on an earlier run: continuing")
        rec["batch"] = rec.get("batch") or str(accepted_file)
    else:
        progress(f"[{day}] no batch landed in {paths.landing}: nothing to do")
        rec["outcome"] = "no_batch"
        return save_record(params, day, rec)
    rec["data_version"] = workspace.version_accepted(params)
    rec["rows"] = rec["rows"] or len(read_parquet(accepted_file))
    return save_record(params, day, rec)


def assess(
    params: Params,
    day: str,
    force_retrain: bool = False,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Step 2: drift of tonight's batch against the data trained on so far; retrain or not.

    Sets ``outcome`` to ``no_retrain`` when the night ends here.
    """
    from pipelines.edges import dvc as workspace
    from pipelines.stages import drift

    paths = NightPaths.of(params, day)
    rec = load_record(params, day)
    progress(f"[{day}] drift")
    current = read_parquet(paths.accepted / f"{day}.parquet")
    reference = workspace.reference_before(params, day)
    dr = drift.detect_drift(reference, current, params.dataset, params.drift)
    drift.write_result(dr, paths.reports / "drift")
    drift.write_html_report(
        reference, current, params.dataset, params.drift, paths.reports / "drift" / "drift.html"
    )
    rec["drift"] = {
        "dataset_drift": dr.drifted,
        "share": dr.share,
        "drifted_columns": list(dr.drifted_columns),
        "target_drift": dr.target.drifted,
        "target_score": dr.target.score,
        "columns": {c.column: {"score": c.score, "drifted": c.drifted} for c in dr.columns},
        "report": str(paths.reports / "drift" / "drift.html"),
    }
    state = load_state(params)
    if "first_night" not in state:  # the schedule counts from the first night seen
        state["first_night"] = day
        save_state(params, state)
    last = state.get("last_retrain") or state["first_night"]
    since = (date.fromisoformat(day) - date.fromisoformat(last)).days
    reasons = retrain_reasons(
        params,
        forced=force_retrain,
        has_champion=rec.get("champion_before") is not None,
        dataset_drift=dr.drifted,
        target_drift=dr.target.drifted,
        nights_since_retrain=since,
    )
    rec["retrain_reasons"] = reasons
    if not reasons:
        progress(f"[{day}] no drift, not scheduled, not forced: no retraining tonight")
        rec["outcome"] = "no_retrain"
    else:
        progress(f"[{day}] retrain: {', '.join(reasons)}")
    return save_record(params, day, rec)


def run_stage(params: Params, stage: str) -> None:
    """One stage of the DVC pipeline, exactly as `dvc repro -s STAGE` runs it."""
    from pipelines.edges import dvc as workspace

    if stage not in PIPELINE_STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {list(PIPELINE_STAGES)}")
    workspace.ensure(params)
    workspace.dvc(params, "repro", "-s", stage)


def retrain(params: Params, day: str, dry_run: bool = False) -> None:
    """Step 3: the pipeline part, `dvc repro` (up to the gate only on a dry run)."""
    from pipelines.edges import dvc as workspace

    workspace.repro(params, upto="gate" if dry_run else None)
    mark_retrained(params, day)


def mark_retrained(params: Params, day: str) -> None:
    state = load_state(params)
    state["last_retrain"] = day
    save_state(params, state)


def finish(params: Params, day: str, dry_run: bool = False) -> dict[str, Any]:
    """Last step: what the night did, with the version serving now."""
    from pipelines.edges import registry
    from pipelines.night.summary import stage_results

    rec = load_record(params, day)
    champion_after = registry.champion_version(params)
    before = rec.get("champion_before")
    if rec.get("outcome") in (None, "retrained"):
        rec["retrained"] = True
        rec.update(stage_results(params))
        if dry_run:
            rec["outcome"] = "dry_run"
        else:
            promoted = champion_after is not None and champion_after != before
            rec["promoted"] = champion_after if promoted else None
            rec["outcome"] = "promoted" if promoted else "not_promoted"
    rec["serving"] = champion_after
    rec["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    save_record(params, day, rec)
    run_id = (rec.get("challenger") or {}).get("run_id")
    if rec["retrained"] and run_id:  # the night's record and reports, reachable from MLflow
        import mlflow

        from pipelines.edges import tracking

        tracking.setup(params)
        with mlflow.start_run(run_id=run_id):
            for name in ("summary.json", "validation.html"):
                f = params.paths.night_record(day).parent / name
                if f.is_file():
                    mlflow.log_artifact(str(f), artifact_path=f"night-{day}")
    return rec


def run_night(
    params: Params,
    day: str,
    *,
    batch: Path | None = None,
    force_retrain: bool = False,
    dry_run: bool = False,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One night end to end under the workspace lock; returns (and writes) its summary."""
    t0 = time.perf_counter()
    with night_lock(params):
        rec = ingest(params, day, batch, progress)
        if rec["outcome"] is None:
            rec = assess(params, day, force_retrain, progress)
        if rec["outcome"] is None:
            progress(
                f"[{day}] dvc repro (window, validate, drift, train, evaluate, fairness, gate"
                f"{'' if dry_run else ', register'})"
            )
            retrain(params, day, dry_run)
        rec = finish(params, day, dry_run)
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return save_record(params, day, rec)
