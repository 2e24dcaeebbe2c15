"""Readable summaries made from the stage results (never the other way round)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from pipelines.config import Params
from pipelines.edges.registry import registration_line
from pipelines.edges.tracking import run_url, ui_base
from pipelines.files import read_json
from pipelines.records import (
    ApprovalSummary,
    ChallengerSummary,
    ChampionSummary,
    Estimate,
    FairnessSummary,
    GateSummary,
    NightRecord,
    Registration,
)
from pipelines.settings import mask_url
from pipelines.stages.gate.report import LABEL as GATE_LABEL


class StageResults(NamedTuple):
    """What the last pipeline run decided, as the night record's sections."""

    challenger: ChallengerSummary
    champion: ChampionSummary
    fairness: FairnessSummary
    gate: GateSummary | None


def _metrics(evaluation: dict[str, Any] | None) -> dict[str, Any]:
    return dict(evaluation["metrics"]) if evaluation else {}


def stage_results(params: Params) -> StageResults:
    """What the last pipeline run decided, gathered from the stage outputs."""
    paths = params.paths
    evaluation = read_json(paths.evaluation)
    evidence = read_json(paths.gate_evidence) or {}
    decision = read_json(paths.gate_decision)
    registration = read_json(paths.registration)
    train = read_json(paths.train_record) or {}
    return StageResults(
        challenger=ChallengerSummary(
            run_id=train.get("run_id"),
            version=registration.get("version") if registration else None,
            data_version=(train.get("tags") or {}).get("data_version.train"),
            metrics=_metrics(evaluation),
        ),
        champion=ChampionSummary(
            version=evidence.get("champion_version"),
            metrics=_metrics(evidence.get("champion_evaluation")),
            difference=evidence.get("differences", {}),
        ),
        fairness=FairnessSummary(
            challenger=evidence.get("challenger_fairness"),
            champion=evidence.get("champion_fairness_worst"),
            challenger_by_attribute=evidence.get("challenger_fairness_by_attribute"),
            champion_by_attribute=evidence.get("champion_fairness_by_attribute"),
        ),
        gate=GateSummary(
            verdict=decision["verdict"],
            reasons=decision["reasons"],
            plan=(registration or {}).get("plan"),
        )
        if decision
        else None,
    )


def _fmt_metric(m: Estimate | None) -> str:
    if m is None or m.point is None:
        return "-"
    return f"{m.point:.4f} [{m.lower or float('nan'):.4f}, {m.upper or float('nan'):.4f}]"


def pipeline_summary(params: Params) -> str:
    """The short report printed at the end of `retrain run`."""
    from pipelines.stages.validate import report_page

    paths = params.paths
    res = stage_results(params)
    validation = read_json(paths.validation_json)
    drift = read_json(paths.drift_result)
    registration = Registration.read(paths.registration) if paths.registration.is_file() else None
    lines = ["", "=" * 72, f"Pipeline summary ({params.dataset.name})", "=" * 72]
    if validation:
        failed = validation.get("failed", [])
        lines.append(
            f"validation : {'passed' if validation['success'] else 'FAILED'} "
            f"({validation.get('evaluated', 0)} expectations, {len(failed)} failed)"
        )
        lines += [f"             - {f.get('message', f)}" for f in failed[:5]]
        warned = validation.get("warned", [])
        lines += [f"             ~ warning: {f.get('message', f)}" for f in warned[:5]]
    if drift and (validation is None or validation["success"]):  # else: not judged tonight
        lines.append(
            f"drift      : {'DRIFT' if drift['drifted'] else 'no drift'} - "
            f"{drift['n_drifted']} of {drift['n_columns']} columns ({drift['share']:.0%}); "
            f"target {'drifted' if drift['target']['drifted'] else 'stable'}"
        )
    ch = res.challenger.metrics
    champ = res.champion
    for name in ("roc_auc", "accuracy", "f1", "ece"):
        if name in ch:
            base = _fmt_metric(champ.metrics.get(name)) if champ.version else ""
            vs = f"   champion v{champ.version}: {base}" if base else ""
            lines.append(f"{name:<11}: {_fmt_metric(ch[name])}{vs}")
    fair = res.fairness.challenger or {}
    if fair:
        lines.append(
            "fairness   : " + ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in fair.items())
        )
    gate = res.gate
    if gate:
        lines.append(f"gate       : {GATE_LABEL.get(gate.verdict, gate.verdict.upper())}")
        lines += [f"             - {x}" for x in gate.reasons]
    if registration:
        lines.append(f"registry   : {registration_line(registration)}")
    lines.append("reports    :")
    for p in paths.reports_to_open:
        if p == paths.validation_docs:
            p = report_page(p) or p
        if p.is_file():
            lines.append(f"             {_rel(params, p)}")
    train = read_json(paths.train_record) or {}
    if train.get("run_id") and train.get("experiment_id"):
        link = run_url(params, str(train["experiment_id"]), str(train["run_id"]))
        lines.append(f"mlflow     : challenger run {link}")
    else:
        lines.append(f"mlflow     : {ui_base(params) or mask_url(params.tracking_uri)}")
    return "\n".join(lines)


def approval_question(
    params: Params, reg: Registration, day: str, until: datetime
) -> tuple[str, str]:
    """The subject and Markdown body of the DAG's ``approve`` question: what each answer does,
    the gate's verdict and reasons, where the evidence is."""
    decision = read_json(params.paths.gate_decision) or {}
    now = (
        f"**v{reg.champion} stays champion and keeps serving**"
        if reg.champion
        else "**there is no champion yet: nothing is served**"
    )
    body = [
        f"**{reg.model} v{reg.version}** passed the promotion gate on night {day}. "
        f"Until you approve it, {now}.",
        "",
        f"- **Approve**: v{reg.version} becomes `champion` and is deployed.",
        f"- **Reject**: v{reg.version} is kept, tagged `approval=rejected`; nothing changes.",
        f"- **No answer by {until:%Y-%m-%d %H:%M} UTC**: rejected.",
        "",
        "An optional *reason* is recorded in the registry with your name.",
        "",
        f"Gate: **{str(decision.get('verdict', '?')).upper()}**",
        *(f"- {r}" for r in decision.get("reasons", [])),
        "",
        f"Gate report: `{params.paths.gate_report}`; training run `{reg.run_id}`.",
    ]
    subject = f"Night {day}: promote {reg.model} v{reg.version} to champion?"
    return subject, "\n".join(body)


def _rel(params: Params, p: Path) -> str:
    return str(p.relative_to(params.root)) if p.is_relative_to(params.root) else str(p)


def _verdict(rec: NightRecord) -> str:
    v = rec.validation
    if rec.outcome == "no_batch":
        return "no batch"
    if v is None or v.success:
        return f"accepted ({len(v.warned)} warnings)" if v and v.warned else "accepted"
    return f"REJECTED ({len(v.failed)})"


def accepted_text(rec: NightRecord, first: int = 3) -> str:
    """``accepted``, or ``accepted with N warnings: ...`` (the first few, in plain words)."""
    warned = rec.validation.warned if rec.validation else []
    if not warned:
        return "accepted"
    said = list(dict.fromkeys(w.split(": ", 1)[-1] for w in warned))
    more = f"; and {len(said) - first} more" if len(said) > first else ""
    return f"accepted with {len(warned)} warnings: " + "; ".join(said[:first]) + more


def _vs(rec: NightRecord) -> str:
    ch = rec.challenger.metrics.get("roc_auc") if rec.challenger else None
    diff = rec.champion.difference.get("roc_auc") if rec.champion else None
    if ch is None or ch.point is None:
        return "-"
    if diff is None or None in (diff.point, diff.lower, diff.upper):
        return f"auc {ch.point:.3f}"
    return f"auc {ch.point:.3f} ({diff.point:+.3f} [{diff.lower:+.3f},{diff.upper:+.3f}])"


def _fair(rec: NightRecord) -> str:
    """Demographic parity difference of the attribute whose value moved most vs the champion."""
    f = rec.fairness or FairnessSummary()
    key = "demographic_parity_difference"
    ch, champ = f.challenger_by_attribute or {}, f.champion_by_attribute or {}
    pairs = [(a, m[key], (champ.get(a) or {}).get(key)) for a, m in ch.items() if key in m]
    if not pairs:
        return "-"
    attr, new, old = max(pairs, key=lambda p: -1 if p[2] is None else p[1] - p[2])
    return f"dpd[{attr}] {new:.3f}" + (f" (was {old:.3f})" if old is not None else "")


def approval_text(gate: GateSummary | None) -> str:
    """The human's part of the gate, when one was asked: ``approval REJECTED by <user>``."""
    answer: ApprovalSummary | None = gate.approval if gate else None
    if answer is None:
        return ""
    if answer.decision == "pending":
        return f"approval PENDING (retrain promote {answer.version})"
    by = f" by {answer.by}" if answer.by and answer.decision != "timed_out" else ""
    return f"approval {answer.decision.upper()}{by}"


def rejection_lines(rec: NightRecord, first: int = 5) -> list[str]:
    """A rejected batch in plain words: its first failed expectations (each said once) and
    where it was quarantined; nothing for a batch that was not rejected."""
    v = rec.validation
    if rec.outcome != "batch_rejected" or v is None:
        return []
    said: dict[str, int] = {}
    for f in v.failed:  # "expectation_type: sentence": the sentence is the plain words
        msg = f.split(": ", 1)[-1]
        said[msg] = said.get(msg, 0) + 1
    lines = [f"  - {m}" + (f" ({n} expectations)" if n > 1 else "") for m, n in said.items()]
    more = len(lines) - first
    lines = lines[:first] + (
        [f"  ... and {more} more (see the validation report)"] if more > 0 else []
    )
    if rec.quarantined_to:
        lines.append(f"  quarantined in {rec.quarantined_to}")
    return lines


def unreadable_batch(rec: NightRecord) -> str | None:
    """Why the night's batch could not be read as the dataset's data (wrong separator, missing
    columns, text in a numeric column), or None: a batch GX judged is not unreadable."""
    from pipelines.stages.validate import SCHEMA_ERROR

    v = rec.validation
    if rec.outcome != "batch_rejected" or v is None or v.evaluated:
        return None
    prefix = f"{SCHEMA_ERROR}: "
    return next((f.removeprefix(prefix) for f in v.failed if f.startswith(prefix)), None)


def night_line(rec: NightRecord) -> str:
    """The night in one line; a rejected batch adds why and where it went, one line each."""
    drift, gate = rec.drift, rec.gate
    reasons = ", ".join(rec.retrain_reasons)
    retrained = f"yes ({reasons})" if rec.retrained else "no"
    approval = approval_text(gate)
    target = " (target drift)" if drift and drift.target_drift else ""
    judged = f"drift share {drift.share:.0%}{target}" if drift else "drift not judged"
    return "\n".join(
        [
            f"{rec.date}: {rec.outcome} - batch {_verdict(rec)}; {judged}; "
            f"retrained: {retrained}"
            f"{'; gate ' + gate.verdict.upper() if gate else ''}"
            f"{'; ' + approval if approval else ''}; serving v{rec.serving}",
            *rejection_lines(rec),
            *([f"  {accepted_text(rec)}"] if rec.validation and rec.validation.warned else []),
            *[f"  retracted, left out of training: {r}" for r in rec.retracted],
        ]
    )


def night_table(records: list[NightRecord]) -> str:
    """One row per night: what arrived, what was decided, what serves now."""
    head = (
        "night",
        "scenario",
        "batch",
        "drift",
        "retrained",
        "challenger vs champion",
        "fairness",
        "gate",
        "promoted",
        "serving",
    )
    rows = []
    for rec in records:
        drift = rec.drift
        d = (
            "-"
            if drift is None
            else (
                f"{drift.share:.0%}{' DRIFT' if drift.dataset_drift else ''}"
                f"{' +target' if drift.target_drift else ''}"
            )
        )
        gate = rec.gate.verdict.upper() if rec.gate else "-"
        answer = rec.gate.approval if rec.gate else None
        gate += f" ({answer.decision})" if answer else ""
        rows.append(
            (
                rec.date,
                rec.scenario or "",
                _verdict(rec),
                d,
                "yes" if rec.retrained else "no",
                _vs(rec),
                _fair(rec),
                gate,
                f"v{rec.promoted}" if rec.promoted else "-",
                f"v{rec.serving}",
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    reasons = [
        f"  {r.date}: gate {r.gate.verdict}: {'; '.join(r.gate.reasons)}" for r in records if r.gate
    ]
    return "\n".join(lines + ([""] + reasons if reasons else []))
