"""The gate's reports, made from a :class:`~pipelines.stages.gate.decision.Decision`: Markdown
and HTML with every check, its value, threshold, verdict and reason (a skipped check says why,
a check without enough evidence says how many rows a decision would need)."""

from __future__ import annotations

import html

from pipelines.stages.gate.decision import Decision
from pipelines.stages.gate.rules import Check

LABEL = {
    "pass": "PASS",
    "fail": "FAIL",
    "insufficient": "NOT ENOUGH EVIDENCE",
    "skip": "skip",
    "info": "info",
}
_COLOR = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "insufficient": "#9a6700",
    "skip": "#6e7781",
    "info": "#0969da",
}


def _verdict(c: Check) -> str:
    return f"{LABEL[c.verdict]} (waived)" if c.waived else LABEL[c.verdict]


def _champion(d: Decision) -> str:
    return f"v{d.champion_version}" if d.champion_version else "none (first model)"


def render_markdown(d: Decision, title: str = "Promotion gate") -> str:
    lines = [
        f"# {title}: {LABEL[d.verdict]}",
        "",
        f"Decided at {d.decided_at}; champion compared: {_champion(d)}",
        "",
        "## Reasons",
        *[f"- {r}" for r in d.reasons],
        "",
        "## Checks",
        "",
        "| check | group | value | threshold | verdict | reason |",
        "|---|---|---|---|---|---|",
    ]
    for c in d.checks:
        value = (
            "" if c.value is None else (f"{c.value:.4f}" if isinstance(c.value, float) else c.value)
        )
        detail = c.detail.replace("|", "/")
        lines.append(
            f"| {c.name} | {c.group} | {value} | {c.threshold} | {_verdict(c)} | {detail} |"
        )
    return "\n".join(lines) + "\n"


def render_html(d: Decision, title: str = "Promotion gate") -> str:
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{c.group}</td>"
        f"<td>{html.escape('' if c.value is None else str(c.value))}</td>"
        f"<td>{html.escape(c.threshold)}</td>"
        f"<td style='color:{_COLOR[c.verdict]};font-weight:bold'>{_verdict(c)}</td>"
        f"<td>{html.escape(c.detail)}</td></tr>"
        for c in d.checks
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in d.reasons)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "td,th{border:1px solid #ccc;padding:4px 8px}table{border-collapse:collapse}</style>"
        f"</head><body><h1>{html.escape(title)}: "
        f"<span style='color:{_COLOR[d.verdict]}'>{LABEL[d.verdict]}</span></h1>"
        f"<p>Decided at {d.decided_at}; champion compared: {_champion(d)}</p>"
        f"<h2>Reasons</h2><ul>{reasons}</ul><h2>Checks</h2><table><tr><th>check</th><th>group"
        "</th><th>value</th><th>threshold</th><th>verdict</th><th>reason</th></tr>"
        f"{rows}</table></body></html>"
    )
