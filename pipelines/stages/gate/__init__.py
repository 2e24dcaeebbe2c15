"""Stage `gate`: one promotion decision, with every check, its value, threshold and verdict.

The core, :func:`decide`, is a pure function of the :class:`Evidence` (validation, evaluation
with confidence intervals, fairness, and - when a champion exists - the paired comparison on the
same fresh data) and :class:`GateConfig`. It returns a :class:`Decision`; the JSON and the
Markdown / HTML reports are made from that object.

Modules: :mod:`.decision` (the pure core), :mod:`.rules` (checks, evidence and how an
interval is judged: pass, fail or not enough evidence), :mod:`.fairness_checks` (bounds and
regressions of the fairness measures), :mod:`.report` (the reports rendered from a decision),
:mod:`.scores` (the evidence from the two models' scores on the held-out rows:
:func:`evidence_from_scores`, pure), :mod:`.evidence` (the edge that loads and scores the
models and gathers the rest from the stage outputs and the registry) and
:mod:`.stage` (the edge: :func:`main`, which ``python -m pipelines.stages.gate`` runs).
"""

from pipelines.stages.gate.decision import Decision, decide
from pipelines.stages.gate.evidence import gather_evidence
from pipelines.stages.gate.report import render_html, render_markdown
from pipelines.stages.gate.rules import Check, Evidence, Verdict, judge, rows_needed
from pipelines.stages.gate.scores import Scored, evidence_from_scores
from pipelines.stages.gate.stage import main, write_decision

__all__ = [
    "Check",
    "Decision",
    "Evidence",
    "Scored",
    "Verdict",
    "decide",
    "evidence_from_scores",
    "gather_evidence",
    "judge",
    "main",
    "render_html",
    "render_markdown",
    "rows_needed",
    "write_decision",
]
