"""What a night leaves for a person to open: ``summary.html`` beside ``summary.json``, and a copy
of the gate's report that names the night, the challenger and the champion.

The workspace's gate report (``reports/gate/``) is the latest retrain's and is overwritten by
the next one; each night that judged a challenger keeps its own under
``reports/nights/<date>/gate/``. The page says the night in one line, the facts a reader looks
for first (batch, validation, drift, challenger against champion, gate, what serves), and
links every report in the night's folder. Every value from a record is escaped: batch names
and reasons can hold anything.
"""

from __future__ import annotations

import html
from pathlib import Path

from pipelines.config import Params
from pipelines.files import write_text
from pipelines.records import NightRecord

REPORT_SUFFIXES = (".html", ".md", ".json", ".png", ".csv")
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
    "text-align:left;vertical-align:top}pre{white-space:pre-wrap;background:#f6f6f6;padding:.6rem}"
)


def _versions(rec: NightRecord) -> tuple[str, str]:
    new = rec.challenger.version if rec.challenger and rec.challenger.version else "-"
    old = rec.champion.version if rec.champion and rec.champion.version else None
    return new, old or rec.champion_before or "-"


def gate_heading(rec: NightRecord) -> str:
    new, old = _versions(rec)
    return f"Night {rec.date}: challenger v{new} against champion v{old}"


def render_page(rec: NightRecord, line: str, files: list[str]) -> str:
    """The night's page: ``line`` is the night in words (:func:`night_line`), ``files`` the
    reports in its folder, relative to it."""
    e = html.escape
    new, old = _versions(rec)
    drift = rec.drift
    facts: list[tuple[str, str]] = [
        ("outcome", str(rec.outcome or "running")),
        ("batch", f"{rec.batch or '-'} ({rec.rows if rec.rows is not None else '-'} rows)"),
        (
            "validation",
            "-"
            if rec.validation is None
            else ("accepted" if rec.validation.success else "REJECTED")
            + f" ({len(rec.validation.failed)} failed, {len(rec.validation.warned)} warned)",
        ),
        ("quarantined in", rec.quarantined_to or "-"),
        ("drift share", "-" if drift is None else f"{drift.share:.0%}"),
        ("retrained", "yes: " + ", ".join(rec.retrain_reasons) if rec.retrained else "no"),
        ("challenger / champion", f"v{new} / v{old}"),
        ("gate", rec.gate.verdict.upper() if rec.gate else "-"),
        ("promoted", f"v{rec.promoted}" if rec.promoted else "-"),
        ("serving", f"v{rec.serving}" if rec.serving else "-"),
        ("deploy", rec.deploy.line() if rec.deploy else "-"),
        ("took", f"{rec.seconds:.0f} s" if rec.seconds is not None else "-"),
    ]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    reasons = "".join(f"<li>{e(r)}</li>" for r in (rec.gate.reasons if rec.gate else []))
    links = "".join(f'<li><a href="{e(f, quote=True)}">{e(f)}</a></li>' for f in files)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Night {e(rec.date)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Night {e(rec.date)}: {e(str(rec.outcome or 'running'))}</h1>"
        f"<pre>{e(line)}</pre><table>{rows}</table>"
        + (f"<h2>Gate reasons</h2><ul>{reasons}</ul>" if reasons else "")
        + f"<h2>Reports</h2><ul>{links or '<li>none yet</li>'}</ul></body></html>\n"
    )


def reports_of(folder: Path) -> list[str]:
    """Every report file under a night's folder (its own summary pages left out)."""
    if not folder.is_dir():
        return []
    own = {"summary.json", "summary.html"}
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix in REPORT_SUFFIXES
        and p.relative_to(folder).as_posix() not in own
    )


def write_page(params: Params, rec: NightRecord) -> Path:
    from pipelines.night.summary import night_line

    folder = params.paths.night(rec.date)
    return write_text(
        folder / "summary.html", render_page(rec, night_line(rec), reports_of(folder))
    )


def copy_gate_report(params: Params, rec: NightRecord) -> list[Path]:
    """The gate's report as the night judged it, headed with the night and both versions."""
    p = params.paths
    dest = p.night(rec.date) / "gate"
    head = gate_heading(rec)
    out: list[Path] = []
    if p.gate_markdown.is_file():
        out.append(
            write_text(dest / p.gate_markdown.name, f"# {head}\n\n{p.gate_markdown.read_text()}")
        )
    if p.gate_report.is_file():
        page = p.gate_report.read_text()
        banner = f"<p><strong>{html.escape(head)}</strong></p>"
        at = page.find("<body>")
        page = page[: at + 6] + banner + page[at + 6 :] if at >= 0 else banner + page
        out.append(write_text(dest / p.gate_report.name, page))
    if p.gate_decision.is_file():
        out.append(write_text(dest / p.gate_decision.name, p.gate_decision.read_text()))
    return out
