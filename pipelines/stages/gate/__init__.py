"""Stage `gate`: one promotion decision, with every check, its value, threshold and verdict.

The core, :func:`decide`, is a pure function of the :class:`Evidence` (validation, evaluation
with confidence intervals, fairness, and - when a champion exists - the paired comparison on the
same fresh data) and :class:`GateConfig`. It returns a :class:`Decision`; the JSON and the
Markdown / HTML reports are made from that object.

Modules: :mod:`.decision` (the pure core and the reports rendered from a decision),
:mod:`.evidence` (gathers the evidence from the stage outputs and the registry) and
:mod:`.stage` (the edge: :func:`main`, which ``python -m pipelines.stages.gate`` runs).
"""

from pipelines.stages.gate.decision import (
    Check,
    Decision,
    Evidence,
    Verdict,
    decide,
    render_html,
    render_markdown,
)
from pipelines.stages.gate.evidence import gather_evidence
from pipelines.stages.gate.stage import main, write_decision

__all__ = [
    "Check",
    "Decision",
    "Evidence",
    "Verdict",
    "decide",
    "gather_evidence",
    "main",
    "render_html",
    "render_markdown",
    "write_decision",
]
