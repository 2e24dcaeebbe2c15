"""Step 2 of a night: drift of the accepted batch against the data trained on so far, and the
decision to train a challenger (drift, target drift, schedule, no champion yet, or forced)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd

from pipelines.config import NightlyConfig, Params
from pipelines.data import read_parquet
from pipelines.night.record import load_record, load_state, save_record, save_state
from pipelines.records import BatchDrift, ColumnDrift, NightRecord


def retrain_reasons(
    cfg: NightlyConfig,
    *,
    forced: bool,
    has_champion: bool,
    dataset_drift: bool,
    target_drift: bool,
    nights_since_retrain: int | None,
) -> list[str]:
    """Why tonight trains a challenger (empty: it does not). Pure."""
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


def reference_before(params: Params, day: str) -> pd.DataFrame:
    """The training data as it stood before ``day``'s batch: drift is judged against it."""
    from pipelines.stages.window import build_window, read_batches

    paths = params.paths
    batches = {k: v for k, v in read_batches(paths.accepted).items() if k < day}
    w = build_window(
        read_parquet(paths.prepared_reference),
        batches,
        pd.read_parquet(paths.prepared_current),
        params.window,
    )
    return w.train


def assess(
    params: Params,
    day: str,
    force_retrain: bool = False,
    progress: Callable[[str], None] = print,
) -> NightRecord:
    """Drift and the retrain decision; sets ``outcome`` to ``no_retrain`` when the night ends."""
    from pipelines.stages import drift

    rec = load_record(params, day)
    progress(f"[{day}] drift")
    out = params.paths.night_drift(day)
    current = read_parquet(params.paths.accepted_batch(day))
    reference = reference_before(params, day)
    dr = drift.detect_drift(reference, current, params.dataset, params.drift)
    drift.write_result(dr, out)
    report = out.report
    drift.write_html_report(
        reference,
        current,
        params.dataset,
        params.drift,
        report,
        title=f"Night {day}: drift of the batch",
        sides=("the training window before this night", f"the batch accepted for {day}"),
    )
    rec.drift = BatchDrift(
        dataset_drift=dr.drifted,
        share=dr.share,
        drifted_columns=list(dr.drifted_columns),
        target_drift=dr.target.drifted,
        target_score=dr.target.score,
        columns={c.column: ColumnDrift(score=c.score, drifted=c.drifted) for c in dr.columns},
        report=str(report),
    )
    state = load_state(params)
    if "first_night" not in state:  # the schedule counts from the first night seen
        state["first_night"] = day
        save_state(params, state)
    last = state.get("last_retrain") or state["first_night"]
    since = (date.fromisoformat(day) - date.fromisoformat(last)).days
    reasons = retrain_reasons(
        params.nightly,
        forced=force_retrain,
        has_champion=rec.champion_before is not None,
        dataset_drift=dr.drifted,
        target_drift=dr.target.drifted,
        nights_since_retrain=since,
    )
    rec.retrain_reasons = reasons
    if not reasons:
        progress(f"[{day}] no drift, not scheduled, not forced: no retraining tonight")
        rec.outcome = "no_retrain"
    else:
        progress(f"[{day}] retrain: {', '.join(reasons)}")
    return save_record(params, rec)
