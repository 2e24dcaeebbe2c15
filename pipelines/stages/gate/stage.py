"""The stage's edge: gather the evidence, decide, write ``decision.json`` and the Markdown and
HTML reports, print the verdict. A rejection is an outcome, not an error: the exit code is 0."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipelines.config import load_params
from pipelines.files import write_text
from pipelines.groups import GroupingError
from pipelines.paths import Paths
from pipelines.serve.trust import UntrustedModel
from pipelines.stages.gate.decision import Decision, decide
from pipelines.stages.gate.evidence import gather_evidence
from pipelines.stages.gate.importance import (
    add_to_reports,
    gather_importance,
    record_importance,
    with_importance,
)
from pipelines.stages.gate.report import LABEL, render_html, render_markdown
from pipelines.stages.window import trained_on_text


def write_decision(d: Decision, paths: Paths, out_dir: Path | None = None) -> dict[str, Path]:
    """The decision as JSON, Markdown and HTML, where ``paths`` puts them (or in ``out_dir``)."""
    files = {
        "json": paths.gate_decision,
        "markdown": paths.gate_markdown,
        "html": paths.gate_report,
    }
    if out_dir is not None:
        files = {kind: out_dir / path.name for kind, path in files.items()}
    for kind, text in (
        ("json", json.dumps(d.to_dict(), indent=2) + "\n"),
        ("markdown", render_markdown(d)),
        ("html", render_html(d)),
    ):
        write_text(files[kind], text)
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="gate",
        description="Stage `gate`: one promotion decision, with every check, its value, "
        "threshold and verdict.",
    )
    ap.add_argument("--params", default=None)
    ap.add_argument("--out", default=None, help="output folder (default reports/gate)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    try:
        ev = gather_evidence(params)
    # the champion compared with is unsigned or tampered; groups that cannot be judged as set
    except (UntrustedModel, GroupingError) as err:
        print(f"gate: error: {err}", file=sys.stderr)
        return 2
    d = decide(ev, params.gate)
    importance = gather_importance(params, ev.champion_version)  # a warning at most
    d = with_importance(d, importance)
    files = write_decision(d, params.paths, Path(args.out) if args.out else None)
    add_to_reports(files, importance)
    record_importance(params.paths.gate_evidence, importance)  # the model card shows it
    window = trained_on_text(params.paths.window_manifest)  # the batches trained on
    write_text(files["markdown"], files["markdown"].read_text() + window)
    print(f"gate: {LABEL[d.verdict]}")
    for r in d.reasons:
        print(f"  - {r}")
    print(f"  report: {files['markdown']}")
    return 0  # a rejection is an outcome, not an error
