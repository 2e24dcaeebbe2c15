"""The canary decision as people read it: a one-line summary and a Markdown report (the JSON is
:meth:`~pipelines.release.canary.decide.CanaryDecision.to_dict`). Made from the decision; never
read back.
"""

from __future__ import annotations

from pipelines.records import Interval
from pipelines.release.canary.decide import Arm, CanaryDecision

_DONE = {"promote": "promoted", "rollback": "rolled back", "wait": "still running"}


def _ci(i: Interval | None, signed: bool = False) -> str:
    if i is None:
        return "-"
    f = "+.4f" if signed else ".4f"
    return f"{i.point:{f}} [{i.lower:{f}}, {i.upper:{f}}]"


def summary_line(d: CanaryDecision, version: str, champion: str | None) -> str:
    """``canary v3 (canary mode) vs champion v2 after 5.0 h: PROMOTE - <first reason>``."""
    return (
        f"canary v{version} ({d.mode} mode) vs champion v{champion or '-'} after {d.hours:.1f} h: "
        f"{d.verdict.upper()} - {d.reasons[0] if d.reasons else ''}"
    )


def _arm_row(a: Arm) -> str:
    versions = ", ".join(f"v{v}" for v in a.versions) or "-"
    return f"| {a.name} | {versions} | {a.rows:,} | {a.positives:,} | {_ci(a.metric)} |"


def render_markdown(d: CanaryDecision, version: str, champion: str | None) -> str:
    r = d.rules
    pct = f"{r['confidence']:.0%}"
    how = (
        "paired: both models answered the same requests (shadow)"
        if d.paired
        else "unpaired: the arms answered different requests"
    )
    if d.method == "sequential":
        method = (
            f"{pct} confidence sequence, valid at every look (tightest at "
            f"{r['planned_rows']:,} rows)"
        )
    else:
        method = f"{pct} bootstrap CI, {r['bootstrap_samples']} resamples, one look's"
    seen = "pairs answered by both models" if d.paired else "rows in both arms together"
    lines = [
        f"# Canary v{version}: {d.verdict.upper()} ({_DONE[d.verdict]})",
        "",
        f"Champion v{champion or '-'}; {d.mode} mode"
        + (f" at a share of {r['share']:g}" if d.mode == "canary" else "")
        + f"; started {d.started}, decided {d.decided_at} ({d.hours:.1f} h of at most "
        f"{r['max_hours']:g} h).",
        "",
        "## Why",
        *[f"- {reason}" for reason in d.reasons],
        "",
        f"## {d.metric} on labelled live traffic ({method})",
        "",
        f"Method: {d.method}; {d.rows:,} labelled {seen} seen.",
        "",
        "| arm | versions | labelled rows | positives | " + d.metric + " |",
        "|---|---|---|---|---|",
        _arm_row(d.champion),
        _arm_row(d.canary),
        "",
        f"Difference (canary - champion): {_ci(d.difference, signed=True)}, {how}.",
        f"Rules: at least {r['min_rows']} labelled rows per arm; promote when the CI's lower "
        f"bound > -{r['margin']}; roll back when its upper bound < -{r['margin']} or a fairness "
        f"measure's regression CI lies above {r['fairness_margin']}.",
        "",
        "## Fairness (canary against champion, per sensitive attribute)",
        "",
    ]
    if not d.fairness_changes:
        lines.append("Nothing compared (too few rows, or no group large enough in both arms).")
    else:
        lines += [
            "| attribute | measure | champion | canary | regression (CI) | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for c in d.fairness_changes:
            verdict = "REGRESSED" if c.regressed else "ok"
            lines.append(
                f"| {c.attribute} | {c.measure} | {c.champion:.4f} | {c.canary:.4f} | "
                f"{_ci(c.regression, signed=True)} | {verdict} |"
            )
        lines.append("")
        lines.append(
            f"Groups judged have at least {r['min_group_size']} rows; a positive regression "
            "means the canary is worse (a larger gap, a smaller ratio)."
        )
    notes = [n for a in (d.champion, d.canary) if a.fairness for n in a.fairness.notes]
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in dict.fromkeys(notes)]]
    return "\n".join(lines) + "\n"
