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
from pipelines.data import write_parquet

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
        from pipelines.window import accepted_dir

        landing = params.path(params.nightly.landing)
        return cls(
            landing=landing,
            quarantine=params.path(params.nightly.quarantine),
            processed=landing / "processed",
            accepted=accepted_dir(params),
            reports=nights_dir(params) / day,
        )


def nights_dir(params: Params) -> Path:
    return params.reports_dir / "nights"


def state_path(params: Params) -> Path:
    return nights_dir(params) / "state.json"


def lock_path(params: Params) -> Path:
    return params.data_dir / ".nightly.lock"


@contextmanager
def night_lock(params: Params, timeout: float | None = None) -> Iterator[None]:
    """Exclusive lock on the workspace for one night (released even if the process dies)."""
    path = lock_path(params)
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
    p = state_path(params)
    return json.loads(p.read_text()) if p.is_file() else {}


def save_state(params: Params, state: dict[str, Any]) -> None:
    p = state_path(params)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(".state.json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(p)


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
    if cfg.retrain_every and (nights_since_retrain is None or nights_since_retrain >= cfg.retrain_every):
        reasons.append(f"schedule (every {cfg.retrain_every} nights)")
    return reasons


def _write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def run_night(
    params: Params,
    day: str,
    *,
    batch: Path | None = None,
    force_retrain: bool = False,
    dry_run: bool = False,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run one night end to end under the workspace lock; return (and write) its summary."""
    with night_lock(params):
        summary = _night(params, day, batch, force_retrain, dry_run, progress)
    return summary


def _night(
    params: Params,
    day: str,
    batch: Path | None,
    force_retrain: bool,
    dry_run: bool,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    from pipelines import drift, registry, validate, workspace

    t0 = time.perf_counter()
    paths = NightPaths.of(params, day)
    paths.reports.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
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
        "gate": None,
        "promoted": None,
        "serving": None,
        "outcome": None,
        "reports": str(paths.reports),
    }
    accepted_file = paths.accepted / f"{day}.parquet"
    champion_before = registry.champion_version(params)

    # 1. land
    if batch is None:
        batch = find_batch(paths, day)
    if batch is not None and batch.is_file():
        summary["batch"] = str(batch)
        progress(f"[{day}] validate {batch}")
        suite = validate.load_suite(params.suite_path)
        result = validate.validate_file(batch, suite, params)
        vjson = _write_json(paths.reports / "validation.json", result.to_dict())
        vhtml = paths.reports / "validation.html"
        vhtml.write_text(validate.render_html(result, f"Validation of batch {day}"))
        summary["rows"] = result.n_rows
        summary["validation"] = {
            "success": result.success,
            "evaluated": result.evaluated,
            "failed": [f"{f.expectation}: {f.message}" for f in result.failed],
        }
        if not result.success:
            dest = quarantine_batch(batch, paths, day, [vjson, vhtml])
            progress(f"[{day}] batch REJECTED ({len(result.failed)} failed); quarantined in {dest}")
            summary["quarantined_to"] = str(dest)
            return _finish(params, summary, "batch_rejected", champion_before, t0, retrained=False)
        df = validate.read_batch(batch, params)
        accept_batch(df, batch, paths, day)
        progress(f"[{day}] batch accepted: {len(df):,} rows")
    elif accepted_file.is_file():
        progress(f"[{day}] batch already accepted on an earlier run: continuing")
        summary["batch"] = str(accepted_file)
        summary["validation"] = {"success": True, "note": "accepted on an earlier run"}
    else:
        progress(f"[{day}] no batch landed in {paths.landing}: nothing to do")
        return _finish(params, summary, "no_batch", champion_before, t0, retrained=False)

    # 2. version the accepted data
    summary["data_version"] = workspace.version_accepted(params)
    summary["rows"] = summary["rows"] or len(pd.read_parquet(accepted_file))

    # 3. drift of tonight's batch against the data the current window trains on
    progress(f"[{day}] drift")
    current = pd.read_parquet(accepted_file)
    reference = workspace.reference_before(params, day)
    dr = drift.detect_drift(reference, current, params.dataset, params.drift)
    drift.write_result(dr, paths.reports / "drift")
    drift.write_html_report(reference, current, params.dataset, params.drift, paths.reports / "drift" / "drift.html")
    summary["drift"] = {
        "dataset_drift": dr.drifted,
        "share": dr.share,
        "drifted_columns": list(dr.drifted_columns),
        "target_drift": dr.target.drifted,
        "target_score": dr.target.score,
        "columns": {c.column: {"score": c.score, "drifted": c.drifted} for c in dr.columns},
    }

    # 4. retrain?
    state = load_state(params)
    last = state.get("last_retrain")
    since = None if last is None else (date.fromisoformat(day) - date.fromisoformat(last)).days
    reasons = retrain_reasons(
        params,
        forced=force_retrain,
        has_champion=champion_before is not None,
        dataset_drift=dr.drifted,
        target_drift=dr.target.drifted,
        nights_since_retrain=since,
    )
    summary["retrain_reasons"] = reasons
    if not reasons:
        progress(f"[{day}] no drift, not scheduled, not forced: no retraining tonight")
        return _finish(params, summary, "no_retrain", champion_before, t0, retrained=False)

    # 5. the pipeline part: the same `dvc repro` a user runs
    progress(f"[{day}] retrain ({', '.join(reasons)}): dvc repro")
    workspace.repro(params, upto="gate" if dry_run else None)
    state["last_retrain"] = day
    save_state(params, state)
    return _finish(params, summary, "dry_run" if dry_run else None, champion_before, t0, retrained=True)


def _finish(
    params: Params,
    summary: dict[str, Any],
    outcome: str | None,
    champion_before: str | None,
    t0: float,
    *,
    retrained: bool,
) -> dict[str, Any]:
    from pipelines import registry
    from pipelines.summary import stage_results

    summary["retrained"] = retrained
    if retrained:
        summary.update(stage_results(params))
    champion_after = registry.champion_version(params)
    summary["champion_before"] = champion_before
    summary["serving"] = champion_after
    if outcome is None:
        promoted = champion_after is not None and champion_after != champion_before
        summary["promoted"] = champion_after if promoted else None
        outcome = "promoted" if promoted else "not_promoted"
    summary["outcome"] = outcome
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    _write_json(Path(summary["reports"]) / "summary.json", summary)
    return summary
