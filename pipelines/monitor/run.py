"""One monitor pass, the edge around :mod:`pipelines.monitor.live`.

Reads the prediction log of the last ``monitor.window_hours`` and the outcomes fed back, judges
live drift against the training window (``data/window/train.parquet``, what the latest model was
trained on; the prepared reference before the first night) and live performance against the
champion's evaluated metric (from the night that promoted it), then:

- writes ``reports/monitor/verdict.json``, ``report.md`` and Evidently's live drift report
  ``drift.html``;
- estimates the metric on the window's answers before their outcomes arrive, from the calibrator
  kept with the champion (read after its signature verifies), and sets the estimate against
  the outcomes that did arrive (a likely concept change when they disagree);
- publishes the numbers to Prometheus (``metrics.prom``; the Pushgateway when configured) and to
  MLflow (a run per pass in ``<mlflow.experiment>-monitor``);
- appends outcomes not landed before to ``<landing>/<day>.parquet``, the first night whose batch
  is not accepted yet: that night ingests, validates and versions them like any batch;
- says whether to retrain (the `retrain_monitor` DAG turns that into an Asset event that
  starts `retrain_nightly`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.config import Params
from pipelines.files import read_json, write_json, write_text
from pipelines.monitor.attribution import AttributionDrift, add_gauges, assess_attribution
from pipelines.monitor.live import (
    JUDGED_ARMS,
    LiveVerdict,
    assess_live,
    landing_rows,
    live_frame,
)
from pipelines.monitor.outcome_guard import OutcomeCheck, judge_outcomes
from pipelines.records import JsonRecord
from pipelines.settings import settings

if TYPE_CHECKING:
    from pipelines.stages.evaluate.calibration import Calibrator

log = logging.getLogger("pipelines.monitor")


@dataclass
class MonitorResult(JsonRecord):
    verdict: LiveVerdict
    reports: dict[str, str] = field(default_factory=dict)
    landed_rows: int = 0
    landed_to: str | None = None
    outcomes: dict[str, Any] | None = None  # the outcome guard's judgement of the new outcomes
    held_to: str | None = None
    published: list[str] = field(default_factory=list)
    mlflow_run: str | None = None
    attribution: AttributionDrift | None = None


def reference_frame(params: Params) -> pd.DataFrame:
    from pipelines.stages.drift.stage import read_frame

    p = params.paths
    path = p.window_train if p.window_train.is_file() else p.prepared_reference
    if not path.is_file():
        raise FileNotFoundError(
            f"no training data to compare live inputs with: neither {p.window_train} nor "
            f"{p.prepared_reference} exists (run `make run` or `dvc repro` first)"
        )
    return read_frame(path, params.dataset)


def evaluated_baseline(params: Params, version: str | None) -> float | None:
    """The champion's metric as the gate measured it on held-out rows, kept on the version
    when it was registered (promoted then, or later by a canary or by hand); None for a version
    registered without it."""
    from pipelines.edges import registry

    if version is None:
        return None
    return registry.evaluated_metric(params, version, params.monitor.metric)


def champion_calibrator(params: Params, version: str | None) -> Calibrator | None:
    """The calibrator kept with ``version`` (fitted at its evaluation), read from the version's
    files after their signature and digests verify (the one check every registered load
    makes); None for a version without one (registered before calibrators were kept) or
    whose files do not verify (logged: the rest of the pass goes on)."""
    from pipelines.release.signing import verified_files
    from pipelines.serve import trust
    from pipelines.stages.evaluate.calibration import (
        CALIBRATOR_FILE,
        CalibrationError,
        Calibrator,
    )

    if version is None:
        return None
    try:
        with verified_files(params, version) as (folder, manifest):
            if CALIBRATOR_FILE not in manifest.files:
                return None
            return Calibrator.from_dict(read_json(folder / CALIBRATOR_FILE))
    except (trust.UntrustedModel, CalibrationError) as err:
        log.error("monitor: no estimate without outcomes: %s", err)
        return None


def last_night(params: Params) -> dict[str, Any] | None:
    for f in sorted(params.paths.nights.glob("*/summary.json"), reverse=True):
        rec = read_json(f)
        if rec.get("outcome") and rec.get("finished_at"):
            at = datetime.fromisoformat(rec["finished_at"]).timestamp()
            return {"date": rec["date"], "outcome": str(rec["outcome"]), "timestamp": at}
    return None


def run_monitor(
    params: Params, now: datetime | None = None, land: bool = True, mlflow: bool = True
) -> MonitorResult:
    from pipelines.edges import registry
    from pipelines.monitor import metrics
    from pipelines.predlog import readers as predlog

    now = now or datetime.now(UTC)
    cfg = params.monitor
    since = now - timedelta(hours=cfg.window_hours)
    # the log is read once per pass, over the span the pass needs and no further back
    span_preds, span_feedback = predlog.read_span(
        params, now - timedelta(hours=max(cfg.window_hours, cfg.outcome_horizon_hours))
    )
    span_labelled = predlog.join(span_preds, span_feedback)
    preds = span_preds[span_preds["ts"] >= pd.Timestamp(since)]
    labelled = span_labelled[span_labelled["ts"] >= pd.Timestamp(since)]
    reference = reference_frame(params)
    champion = registry.champion_version(params)
    verdict = assess_live(
        reference,
        preds,
        labelled,
        params,
        baseline=evaluated_baseline(params, champion),
        champion_version=champion,
        at=now.isoformat(timespec="seconds"),
        calibrator=champion_calibrator(params, champion),
    )
    out = params.paths.monitor_out()
    attribution = assess_attribution(params, reference, live_frame(preds, params), champion)
    result = MonitorResult(verdict, attribution=attribution)
    result.reports["verdict"] = str(write_json(out.verdict, verdict.to_dict()))
    markdown = report_markdown(verdict) + attribution.markdown()
    result.reports["markdown"] = str(write_text(out.markdown, markdown))
    if verdict.drift is not None:
        from pipelines.stages.drift.evidently_engine import write_html_report

        html = write_html_report(
            reference,
            live_frame(preds, params),
            params.dataset,
            params.drift,
            out.drift_report,
            title=f"Live drift, {verdict.at}",
            sides=("the training data", f"live answers of the last {verdict.window_hours:g} h"),
        )
        result.reports["drift_html"] = str(html)
    share = canary_share(params)
    reg = metrics.registry_of(verdict, last_night(params), share, now.timestamp())
    add_gauges(reg, attribution)
    try:
        gateway = settings().pushgateway or params.monitor.pushgateway
        result.published = metrics.publish(reg, out.metrics, gateway)
    except OSError as err:  # a gateway down must not hide the verdict
        log.error("monitor: publishing to the Pushgateway failed: %s", err)
        result.published = [str(out.metrics)]
    if land:
        landing = land_outcomes(params, now, span_labelled, reference)
        result.landed_rows, result.landed_to = landing.rows, landing.to
        result.held_to = landing.held_to
        result.outcomes = None if landing.check is None else landing.check.to_dict()
        if landing.held_to:
            result.reports["outcomes_held"] = str(Path(landing.held_to) / "check.json")
    if mlflow:
        result.mlflow_run = log_to_mlflow(params, result)
    write_json(out.verdict, {**verdict.to_dict(), "result": result.to_dict()})
    return result


def canary_share(params: Params) -> float:
    """The share of traffic the running canary answers (0: none out, or a shadow)."""
    from pipelines.release.canary.control import current

    running = current(params)
    return 0.0 if running is None or running.mode == "shadow" else float(running.share)


def open_day(params: Params, start: date) -> str:
    """The first night from ``start`` on whose batch is not accepted yet: where outcomes land,
    and the night a run started by the monitor's asset event is for."""
    day = start
    while params.paths.accepted_batch(day.isoformat()).is_file():
        day += timedelta(days=1)
    return day.isoformat()


@dataclass
class Landing:
    """What a pass did with the outcomes it had not landed before."""

    rows: int = 0
    to: str | None = None
    check: OutcomeCheck | None = None
    held_to: str | None = None


def land_outcomes(
    params: Params,
    now: datetime,
    labelled: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
) -> Landing:
    """Outcomes not landed before become rows of ``<landing>/<day>.parquet``, the first night
    not accepted yet. ``labelled``: the answers with their outcomes that this pass read (default:
    read them over ``monitor.outcome_horizon_hours``); an outcome that arrives later than that
    after its answer stays in the log, not landed. The keys landed are kept
    (``paths.landed_keys``, pruned to the span read), so a late or re-sent outcome is landed
    once. New outcomes that contradict the answers (:mod:`pipelines.monitor.outcome_guard`) are
    held in ``quarantine/outcomes-<time>/`` instead, with the judgement, and a notification.
    Under the workspace lock: a night ingesting meanwhile is never handed a half-written
    batch."""
    from pipelines.data import write_table
    from pipelines.files import write_atomic
    from pipelines.lock import night_lock

    if labelled is None:
        from pipelines.predlog import readers as predlog

        horizon = timedelta(hours=params.monitor.outcome_horizon_hours)
        labelled = predlog.joined(params, now - horizon)
    keys_file = params.paths.landed_keys
    key = ["request_id", "row"]
    with night_lock(params):
        labelled = labelled[labelled["arm"].isin(JUDGED_ARMS)]  # no shadow, no probes
        seen = labelled[key].drop_duplicates()
        done = pd.read_parquet(keys_file) if keys_file.is_file() else pd.DataFrame(columns=key)
        hit = labelled.merge(done.assign(_done=True), on=key, how="left")
        new = labelled[hit["_done"].isna().to_numpy()].drop_duplicates(key)
        if new.empty:
            return Landing()
        check = check_outcomes(params, new, reference)
        # keys of answers older than the span read will never be read again: not kept
        kept = done.merge(seen, on=key, how="inner")
        keys = pd.concat([kept, new[key]], ignore_index=True)
        if check.held:
            held = hold_outcomes(params, new, check, now)
            write_atomic(keys_file, lambda tmp: keys.to_parquet(tmp, index=False))
            return Landing(0, None, check, str(held))
        landed = landing_rows(new, params)
        dst = params.paths.landing / f"{open_day(params, now.date())}.parquet"
        rows = landed
        if dst.is_file():  # a batch for that night already waits: the outcomes join it
            rows = pd.concat([pd.read_parquet(dst), landed], ignore_index=True)
        write_table(rows, dst, params.dataset)  # the one batch writer (Parquet here)
        write_atomic(keys_file, lambda tmp: keys.to_parquet(tmp, index=False))
    return Landing(len(landed), str(dst), check)


def check_outcomes(
    params: Params, new: pd.DataFrame, reference: pd.DataFrame | None = None
) -> OutcomeCheck:
    """The outcome guard on the new outcomes: positive share of the training data (the
    monitor's reference) against the outcomes and the served probabilities."""
    ds = params.dataset
    if reference is None:
        reference = reference_frame(params)
    ref_share = float((reference[ds.target].astype(str) == ds.positive_label).mean())
    y = (new["label"].astype(str).to_numpy() == ds.positive_label).astype(int)
    proba = new["probability"].to_numpy(dtype=float)
    return judge_outcomes(y, proba, ref_share, params.monitor.outcome_guard, params.evaluate)


def hold_outcomes(params: Params, new: pd.DataFrame, check: OutcomeCheck, now: datetime) -> Path:
    """Keep held outcomes (every logged column) with the judgement, and tell someone."""
    from pipelines.edges.notify import append_notification, notification, notifications_path

    folder = params.paths.quarantine / f"outcomes-{now.strftime('%Y%m%dT%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    new.reset_index(drop=True).to_parquet(folder / "outcomes.parquet", index=False)
    write_json(folder / "check.json", check.to_dict())
    message = f"{check.rows} new outcomes held, not landed: {check.summary()} (kept in {folder})"
    log.error("monitor: %s", message)
    entry = notification(
        "held",
        message,
        dag_id="retrain_monitor",
        run_id=None,
        task_id="monitor",
        details=check.to_dict(),
    )
    append_notification(notifications_path(params), entry)
    return folder


def log_to_mlflow(params: Params, result: MonitorResult) -> str:
    from mlflow import MlflowClient

    from pipelines.edges import tracking

    tracking.setup(params)
    uri = params.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp_id = tracking.side_experiment(params, client, "monitor")
    v = result.verdict
    run = client.create_run(
        exp_id,
        run_name=f"monitor-{v.at}",
        tags={"retrain": str(v.retrain), "champion": str(v.champion_version)},
    )
    run_id = str(run.info.run_id)
    nums: dict[str, float] = {"rows": v.rows, "labelled_rows": v.labelled_rows}
    if v.drift_share is not None:
        nums["drift_share"] = v.drift_share
    if v.live is not None:
        nums |= {f"live_{v.metric}_{k}": x for k, x in v.live.items()}
    if v.drop is not None:
        nums["performance_drop"] = v.drop
    if v.estimated is not None:
        nums |= {f"estimated_{v.metric}_{k}": x for k, x in v.estimated.items()}
    if v.estimated_drop is not None:
        nums["estimated_drop"] = v.estimated_drop
    if v.concept_change is not None:
        nums[f"realised_{v.metric}"] = v.concept_change["realised"]
        nums["concept_change"] = float(v.concept_change["outside"])
    nums["retrain"] = float(v.retrain)
    if result.attribution is not None and result.attribution.ndcg is not None:
        nums["attribution_ndcg"] = result.attribution.ndcg
    for k, x in nums.items():
        client.log_metric(run_id, k, float(x))
    for p in result.reports.values():
        client.log_artifact(run_id, p, artifact_path="monitor")
    client.set_terminated(run_id)
    return run_id


def report_markdown(v: LiveVerdict) -> str:
    lines = [
        f"# Live monitor, {v.at}",
        "",
        f"**{'Retrain' if v.retrain else 'No action'}**: {v.summary()}",
        "",
        f"Window: last {v.window_hours:g} h; champion v{v.champion_version}; "
        f"answers per version: {json.dumps(v.versions)}",
        "",
        "## Why",
        *[f"- {r}" for r in v.reasons],
    ]
    if v.drift is not None:
        lines += [
            "",
            "## Drift per column",
            "",
            "| column | method | score | drifted |",
            "|---|---|---|---|",
        ]
        for c in sorted(v.drift["columns"], key=lambda c: -(c.get("score") or 0)):
            score = "n/a" if c.get("score") is None else f"{c['score']:.3f}"
            flag = "yes" if c.get("drifted") else ""
            lines.append(f"| {c['column']} | {c.get('method')} | {score} | {flag} |")
    return "\n".join(lines) + "\n"
