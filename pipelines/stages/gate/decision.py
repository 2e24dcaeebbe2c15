"""The gate's decision: a pure function of the evidence and :class:`GateConfig`, and the Markdown /
HTML reports made from the :class:`Decision` it returns. No files, registry or models here:
:mod:`pipelines.stages.gate.evidence` gathers the evidence.

Rules:
- absolute metric bounds hold, judged on the CI bound that is worst for the model;
- the challenger is not worse than the champion beyond the non-inferiority margin, judged on the
  lower bound of a paired bootstrap CI of (challenger - champion), never on a bare ``new > old``;
- fairness bounds hold and no fairness measure regresses beyond a margin against the champion;
- the model loads and predicts through the serving code path;
- with no champion yet only absolute checks apply, and the decision says so.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pipelines.config import GateConfig
from pipelines.records import Interval
from pipelines.stages.evaluate.result import LOWER_IS_BETTER

Verdict = Literal["pass", "fail", "skip", "info"]
FAIRNESS_LOWER_IS_BETTER = {"demographic_parity_difference", "equalized_odds_difference"}


@dataclass(frozen=True)
class Check:
    name: str
    group: str  # validation | metric | comparison | fairness | fairness_regression | serving
    verdict: Verdict
    value: float | str | None
    threshold: str
    detail: str


@dataclass(frozen=True)
class Evidence:
    """What the gate judges. Fairness values are the worst over sensitive attributes."""

    metrics: Mapping[str, Interval]
    fairness: Mapping[str, float]
    validation_failures: int = 0
    champion_version: str | None = None
    champion_metrics: Mapping[str, Interval] = field(default_factory=dict)
    champion_fairness: Mapping[str, float] = field(default_factory=dict)
    differences: Mapping[str, Interval] = field(default_factory=dict)  # challenger - champion
    # attribute -> measure -> value, for regressions judged attribute by attribute
    fairness_by_attribute: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    champion_fairness_by_attribute: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    serving_ok: bool | None = None
    serving_detail: str = ""


@dataclass(frozen=True)
class Decision:
    verdict: Literal["pass", "fail"]
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    champion_version: str | None
    decided_at: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checks"] = [asdict(c) for c in self.checks]
        d["reasons"] = list(self.reasons)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        return cls(
            verdict=d["verdict"],
            reasons=tuple(d["reasons"]),
            checks=tuple(Check(**c) for c in d["checks"]),
            champion_version=d.get("champion_version"),
            decided_at=d["decided_at"],
        )


def decide(ev: Evidence, cfg: GateConfig, now: datetime | None = None) -> Decision:
    """Judge the evidence against the gate config. Pure: same inputs, same decision."""
    checks: list[Check] = []
    ok_val = ev.validation_failures <= cfg.max_failed_expectations
    checks.append(
        Check(
            "data validation",
            "validation",
            "pass" if ok_val else "fail",
            ev.validation_failures,
            f"failed expectations <= {cfg.max_failed_expectations}",
            f"{ev.validation_failures} failed expectation(s) on the evaluation data",
        )
    )
    checks += _metric_checks(ev, cfg)
    checks += _comparison_checks(ev, cfg)
    checks += _fairness_checks(ev, cfg)
    if ev.serving_ok is not None:
        checks.append(
            Check(
                "loads and predicts via serving path",
                "serving",
                "pass" if ev.serving_ok else "fail",
                None,
                "predictions equal offline within 1e-6",
                ev.serving_detail,
            )
        )
    failed = [c for c in checks if c.verdict == "fail"]
    if failed:
        reasons = tuple(c.detail for c in failed)
    else:
        judged = sum(c.verdict == "pass" for c in checks)
        reasons = (f"all {judged} checks passed",)
        if ev.champion_version is None:
            reasons += ("no champion yet: only absolute checks applied",)
    return Decision(
        verdict="fail" if failed else "pass",
        reasons=reasons,
        checks=tuple(checks),
        champion_version=ev.champion_version,
        decided_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
    )


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _metric_checks(ev: Evidence, cfg: GateConfig) -> list[Check]:
    checks = []
    for name, bound in cfg.metrics.items():
        est = ev.metrics.get(name)
        if est is None:
            checks.append(Check(name, "metric", "fail", None, "", f"{name}: not measured"))
            continue
        ok = True
        parts = []
        if bound.min is not None:
            judged = est.lower if cfg.use_interval else est.point
            ok &= judged >= bound.min
            parts.append(f">= {bound.min}")
        if bound.max is not None:
            judged = est.upper if cfg.use_interval else est.point
            ok &= judged <= bound.max
            parts.append(f"<= {bound.max}")
        basis = "CI" if cfg.use_interval else "point"
        value = f"{_fmt(est.point)} [{_fmt(est.lower)}, {_fmt(est.upper)}]"
        verb = "meets" if ok else "misses"
        detail = f"{name} {value} {verb} {' and '.join(parts)} (judged on {basis})"
        checks.append(
            Check(name, "metric", "pass" if ok else "fail", value, " and ".join(parts), detail)
        )
    return checks


def _comparison_checks(ev: Evidence, cfg: GateConfig) -> list[Check]:
    name = cfg.non_inferiority_metric
    if ev.champion_version is None:
        return [
            Check(
                f"{name} vs champion",
                "comparison",
                "skip",
                None,
                "",
                "no champion yet: only absolute checks apply",
            )
        ]
    diff = ev.differences.get(name)
    if diff is None:
        return [
            Check(
                f"{name} vs champion",
                "comparison",
                "fail",
                None,
                "",
                f"no paired comparison with champion v{ev.champion_version} was computed",
            )
        ]
    margin = cfg.non_inferiority_margin
    if name in LOWER_IS_BETTER:  # challenger - champion must not exceed +margin
        ok = diff.upper <= margin
        threshold = f"CI upper of difference <= {margin}"
    else:
        ok = diff.lower >= -margin
        threshold = f"CI lower of difference >= -{margin}"
    value = f"{diff.point:+.4f} [{diff.lower:+.4f}, {diff.upper:+.4f}]"
    verb = "is not worse than" if ok else "is worse than"
    detail = (
        f"challenger {verb} champion v{ev.champion_version} on {name} beyond the "
        f"{margin} margin: paired difference {value}"
    )
    return [
        Check(
            f"{name} vs champion", "comparison", "pass" if ok else "fail", value, threshold, detail
        )
    ]


def _fairness_checks(ev: Evidence, cfg: GateConfig) -> list[Check]:
    checks = []
    for name, bound in cfg.fairness.items():
        v = ev.fairness.get(name)
        if v is None:
            checks.append(
                Check(name, "fairness", "skip", None, "", f"{name}: no group large enough to judge")
            )
            continue
        ok = (bound.min is None or v >= bound.min) and (bound.max is None or v <= bound.max)
        threshold = " and ".join(
            p
            for p in (
                f">= {bound.min}" if bound.min is not None else "",
                f"<= {bound.max}" if bound.max is not None else "",
            )
            if p
        )
        detail = f"{name} {_fmt(v)} {'meets' if ok else 'misses'} {threshold} (worst attribute)"
        checks.append(Check(name, "fairness", "pass" if ok else "fail", v, threshold, detail))
    if ev.champion_version is None:
        return checks
    margin = cfg.fairness_regression_margin
    for attr, measures in ev.fairness_by_attribute.items():
        before = ev.champion_fairness_by_attribute.get(attr, {})
        for measure, new in measures.items():
            old = before.get(measure)
            if old is None or new is None:
                continue
            change = new - old if measure in FAIRNESS_LOWER_IS_BETTER else old - new
            ok = change <= margin
            detail = (
                f"{measure} for {attr} {_fmt(new)} vs champion v{ev.champion_version} {_fmt(old)}: "
                f"{'within' if ok else 'regresses beyond'} the {margin} margin"
            )
            checks.append(
                Check(
                    f"{measure} ({attr}) vs champion",
                    "fairness_regression",
                    "pass" if ok else "fail",
                    round(change, 6),
                    f"regression <= {margin}",
                    detail,
                )
            )
    return checks


# --------------------------------------------------------------------------- reports
_ICON = {"pass": "PASS", "fail": "FAIL", "skip": "skip", "info": "info"}


def render_markdown(d: Decision, title: str = "Promotion gate") -> str:
    lines = [
        f"# {title}: {d.verdict.upper()}",
        "",
        f"Decided at {d.decided_at}; champion compared: "
        + (f"v{d.champion_version}" if d.champion_version else "none (first model)"),
        "",
        "## Reasons",
        *[f"- {r}" for r in d.reasons],
        "",
        "## Checks",
        "",
        "| check | group | value | threshold | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in d.checks:
        value = (
            "" if c.value is None else (f"{c.value:.4f}" if isinstance(c.value, float) else c.value)
        )
        lines.append(f"| {c.name} | {c.group} | {value} | {c.threshold} | {_ICON[c.verdict]} |")
    return "\n".join(lines) + "\n"


def render_html(d: Decision, title: str = "Promotion gate") -> str:
    color = {"pass": "#1a7f37", "fail": "#cf222e", "skip": "#6e7781", "info": "#0969da"}
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{c.group}</td>"
        f"<td>{html.escape('' if c.value is None else str(c.value))}</td>"
        f"<td>{html.escape(c.threshold)}</td>"
        f"<td style='color:{color[c.verdict]};font-weight:bold'>{_ICON[c.verdict]}</td>"
        f"<td>{html.escape(c.detail)}</td></tr>"
        for c in d.checks
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in d.reasons)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "td,th{border:1px solid #ccc;padding:4px 8px}table{border-collapse:collapse}</style>"
        f"</head><body><h1>{html.escape(title)}: "
        f"<span style='color:{color[d.verdict]}'>{d.verdict.upper()}</span></h1>"
        f"<p>Decided at {d.decided_at}; champion compared: "
        f"{'v' + d.champion_version if d.champion_version else 'none (first model)'}</p>"
        f"<h2>Reasons</h2><ul>{reasons}</ul><h2>Checks</h2><table><tr><th>check</th><th>group"
        "</th><th>value</th><th>threshold</th><th>verdict</th><th>detail</th></tr>"
        f"{rows}</table></body></html>"
    )
