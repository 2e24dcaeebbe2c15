"""The nightly cycle: one batch of newly labelled rows for a date, from landing to serving.

    ingest (validate -> quarantine | accept + DVC version) -> assess (drift -> retrain?) ->
    the pipeline's stages (``dvc repro``: window ... gate, register) -> finish (the record)

Outcomes (all exit 0; only errors are non-zero):
- ``no_batch``          nothing landed for the date: nothing to do, champion untouched.
- ``batch_rejected``    the batch failed validation and was moved to quarantine with its report.
- ``no_retrain``        the batch was accepted; no drift, not scheduled, not forced.
- ``promoted``          a challenger was trained and passed the gate; it is the champion now.
- ``not_promoted``      a challenger was trained and failed the gate; it is kept, tagged rejected.
                        Or it passed, but the release plan (``gate.plan`` in the record) holds it:
                        for a human (``gate.approval``: ``pending``; approve it with
                        ``retrain promote VERSION``), or beside the champion as a canary or shadow
                        (``retrain canary`` decides it); or a human rejected it in the DAG.
- ``dry_run``           a challenger was trained and judged, but the registry was not touched.

Reruns are safe: a date whose batch was already accepted is not ingested twice, and the DVC
pipeline redoes only what did not finish; a rerun given no flags takes those recorded at the
night's start (``flags`` in the record) when the night did not finish. Two nights at once:
the second waits up to ``nightly.lock_timeout_seconds`` for the workspace lock
(:mod:`pipelines.lock`), then refuses with a clear message. The CLI (``retrain nightly``)
and the Airflow DAG run the same steps; the DAG runs them one task each
(:mod:`pipelines.airflow_adapter`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipelines.config import Params
from pipelines.lock import night_lock
from pipelines.night.assess import assess
from pipelines.night.ingest import ingest
from pipelines.night.record import load_record, mark_retrained, save_record, start_night
from pipelines.records import (
    ApprovalSummary,
    GateSummary,
    HoldForRollout,
    NightFlags,
    NightRecord,
    Registration,
)
from pipelines.stages import DRY_RUN_LAST, NIGHT_STAGES


def run_stage(
    params: Params, stage: str, actor: str | None = None, approval: str | None = None
) -> None:
    """One stage of the DVC pipeline, exactly as `dvc repro -s STAGE` runs it (``approval``:
    the night's own ``deploy.approval``, for ``register``)."""
    from pipelines.edges import dvc

    if stage not in NIGHT_STAGES:
        raise ValueError(f"unknown stage {stage!r}; a night's stages are {list(NIGHT_STAGES)}")
    dvc.ensure(params)
    dvc.dvc(params, "repro", "-s", stage, actor=actor, approval=approval)


def retrain(params: Params, day: str, dry_run: bool = False) -> None:
    """The pipeline part, `dvc repro` (up to the gate only on a dry run)."""
    from pipelines.edges import dvc

    dvc.repro(params, upto=DRY_RUN_LAST if dry_run else None)
    mark_retrained(params, day)


def finish(params: Params, day: str, dry_run: bool = False) -> NightRecord:
    """Last step: what the night did, with the version serving now."""
    from pipelines.edges import registry
    from pipelines.night.summary import stage_results

    rec = load_record(params, day)
    champion_after = registry.champion_version(params)
    if rec.outcome is None:  # a challenger was trained and judged tonight
        rec.retrained = True
        results = stage_results(params)
        rec.challenger, rec.champion = results.challenger, results.champion
        rec.fairness, rec.gate = results.fairness, results.gate
        if dry_run:
            rec.outcome = "dry_run"
        else:
            promoted = champion_after is not None and champion_after != rec.champion_before
            rec.promoted = champion_after if promoted else None
            rec.outcome = "promoted" if promoted else "not_promoted"
    if rec.gate and rec.outcome in ("promoted", "not_promoted"):
        rec.gate = with_approval(
            params, rec.gate, rec.challenger.version if rec.challenger else None
        )
        from pipelines.release.card_files import copy_card  # the registered version's card

        copy_card(params.paths.model_card(), params.paths.night_model_card(day))
    if rec.gate:  # the gate's report as tonight judged: the next retrain overwrites its own
        from pipelines.night.page import copy_gate_report

        copy_gate_report(params, rec)
    rec.serving = champion_after
    rec.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    return save_record(params, rec)


def with_approval(params: Params, gate: GateSummary, version: str | None) -> GateSummary:
    """The gate section with the human's part when the version was held for approval
    (``approval``: decision pending/approved/rejected/timed_out, by, at, reason), read from the
    registry's tags; unchanged when no approval was asked for."""
    from pipelines.edges import registry

    answer = registry.approval(params, str(version)) if version else None
    if answer is None:
        return gate
    approval = ApprovalSummary(version=str(version), **answer)
    return gate.model_copy(update={"approval": approval})


def awaiting_approval_hint(rec: NightRecord) -> str | None:
    """What to tell a human when the night's challenger waits for their approval."""
    answer = rec.gate.approval if rec.gate else None
    if answer is None or answer.decision != "pending":
        return None
    v = answer.version
    return (
        f"[{rec.date}] v{v} passed the gate and is registered as 'pending', AWAITING APPROVAL "
        f"(deploy.approval: required); v{rec.serving} keeps serving. Approve it with: "
        f"retrain promote {v} --reason '...'"
    )


def release(params: Params, day: str, progress: Callable[[str], None]) -> None:
    """The release plan held the version for a rollout: it goes out beside the champion now
    (``retrain canary`` decides it later on labelled live traffic)."""
    from pipelines.release.canary.control import release_held

    reg = Registration.read(params.paths.registration)
    if not isinstance(reg.plan, HoldForRollout):
        return
    out = release_held(params, reg.version, reg.plan)
    if out is not None:
        progress(f"[{day}] v{out.version} out in {out.mode} mode beside champion v{reg.champion}")


def _text(batch: Path | None) -> str | None:
    return os.path.abspath(batch) if batch is not None else None  # a rerun may start elsewhere


def run_night(
    params: Params,
    day: str,
    *,
    batch: Path | None = None,
    force_retrain: bool = False,
    dry_run: bool = False,
    skip_deploy: bool = False,
    progress: Callable[[str], None] = print,
) -> NightRecord:
    """One night end to end under the workspace lock; returns (and writes) its record, and
    records the night in MLflow as the DAG does. The flags are recorded at the start; a rerun
    of a night that did not finish, given none, takes the recorded ones (and says so).
    A new champion is deployed when a deployment is recorded (:mod:`pipelines.night.deploy`),
    unless ``skip_deploy``; the record's ``deploy`` says what was done and why."""
    from pipelines.edges import notify, registry
    from pipelines.night.deploy import deploy_night

    t0 = time.perf_counter()
    with night_lock(params):
        given = NightFlags(
            force_retrain=force_retrain,
            dry_run=dry_run,
            batch=_text(batch),
            skip_deploy=skip_deploy,
        )
        flags, note = start_night(params, day, given)
        if note:
            progress(f"[{day}] {note}")
        force_retrain, dry_run, skip_deploy = flags.force_retrain, flags.dry_run, flags.skip_deploy
        batch = Path(flags.batch) if flags.batch else None
        repaired = None if dry_run else registry.repair_promotion(params)
        if repaired:
            progress(f"[{day}] {repaired}")
        rec = ingest(params, day, batch, progress)
        if rec.outcome is None:
            rec = assess(params, day, force_retrain, progress)
        if rec.outcome is None:
            last = NIGHT_STAGES.index(DRY_RUN_LAST) + 1 if dry_run else len(NIGHT_STAGES)
            progress(f"[{day}] dvc repro ({', '.join(NIGHT_STAGES[:last])})")
            retrain(params, day, dry_run)
            if not dry_run:
                release(params, day, progress)
        rec = finish(params, day, dry_run)
        if not dry_run:
            rec.deploy = deploy_night(params, rec, skip_deploy, progress)
            if rec.deploy is not None and rec.deploy.status == "failed":
                rec.serving = registry.champion_version(params)  # the alias went back
        rec.seconds = round(time.perf_counter() - t0, 2)
        save_record(params, rec)
        for name, link in notify.publish_night(params, rec).items():
            progress(f"[{day}] MLflow {name.replace('_', ' ')}: {link}")
    hint = awaiting_approval_hint(rec)
    if hint:
        progress(hint)
    return rec
