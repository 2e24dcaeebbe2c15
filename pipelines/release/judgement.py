"""What the pipeline judged about a challenger, as MLflow shows it: the run's metrics and tags
and the registered version's description (pure; :mod:`pipelines.edges.tracking` and
:mod:`pipelines.edges.registry` write them).

- metrics: the held-out metrics with their interval bounds (``roc_auc``, ``roc_auc_lower``,
  ``roc_auc_upper``, the names of ``dvc metrics``), fairness per sensitive attribute with its
  bounds (``fairness.<attribute>.<measure>``), the paired differences to the champion
  (``vs_champion.<metric>``), and the gate: ``gate_passed`` 1/0, ``gate_failed_checks``,
  ``gate_insufficient_checks``;
- tags: ``gate`` (the verdict), ``gate.reasons`` and one ``gate.check.<name>`` per check;
- the description: the verdict and the plan first (``REJECTED by the gate: ...`` for a
  version the release plan rejects), then the reasons and where the gate report and the
  model card (:mod:`pipelines.release.card`) are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pipelines.records import Plan
from pipelines.stages.evaluate import Evaluation
from pipelines.stages.gate import Decision

REASONS_SHOWN = 5  # the description's reasons; the rest are in the report
PLAN_TEXT = {
    "promote": "promoted to champion",
    "hold_for_approval": "held for a human's approval (alias pending)",
    "hold_for_rollout": "held to go out beside the champion (alias rollout)",
}


def _bounds(prefix: str, d: Mapping[str, Any]) -> dict[str, float]:
    """``{prefix: point, prefix_lower: ..., prefix_upper: ...}`` of an interval's JSON form."""
    out = {}
    for key, suffix in (("point", ""), ("lower", "_lower"), ("upper", "_upper")):
        v = d.get(key)
        if v is not None and math.isfinite(float(v)):
            out[f"{prefix}{suffix}"] = float(v)
    return out


def run_metrics(
    decision: Decision, evaluation: Evaluation | None, evidence: Mapping[str, Any]
) -> dict[str, float]:
    """The challenger run's metrics (see the module's docstring); ``evidence`` is the gate's
    ``evidence.json``."""
    out: dict[str, float] = dict(evaluation.flat_metrics()) if evaluation else {}
    for attr, measures in (evidence.get("fairness_intervals") or {}).items():
        for measure, interval in measures.items():
            out |= _bounds(f"fairness.{attr}.{measure}", interval)
    for metric, interval in (evidence.get("differences") or {}).items():
        out |= _bounds(f"vs_champion.{metric}", interval)
    verdicts = [c.verdict for c in decision.checks]
    out |= {
        "gate_passed": 1.0 if decision.passed else 0.0,
        "gate_failed_checks": float(verdicts.count("fail")),
        "gate_insufficient_checks": float(verdicts.count("insufficient")),
        "gate_checks": float(len(verdicts)),
    }
    return out


def run_tags(decision: Decision, step: Plan) -> dict[str, str]:
    """The challenger run's tags: the verdict, the plan, the reasons and every check."""
    tags = {
        "gate": decision.verdict,
        "release.plan": step.kind,
        "gate.reasons": " | ".join(decision.reasons),
    }
    for c in decision.checks:
        value = "" if c.value is None else f" {c.value}"
        threshold = f" ({c.threshold})" if c.threshold else ""
        key, n = f"gate.check.{c.name}", 2
        while key in tags:  # a name used twice (e.g. "group size" for two attributes)
            key, n = f"gate.check.{c.name} {n}", n + 1
        tags[key] = f"{c.verdict}{value}{threshold}"
    return tags


def verdict_tag(step: Plan) -> str:
    """The version's ``verdict`` tag: ``rejected`` when the plan rejects it, else ``passed``."""
    return "rejected" if step.kind == "reject" else "passed"


def headline(decision: Decision, step: Plan) -> str:
    """The verdict and what became of the version, in one line: the description's first line
    and the model card's."""
    if step.kind == "reject":
        first = decision.reasons[0] if decision.reasons else decision.verdict
        return f"REJECTED by the gate: {first}"
    return f"PASSED the gate: {PLAN_TEXT[step.kind]}"


def version_description(
    decision: Decision, step: Plan, report: str, card: str | None = None
) -> str:
    """The version's description: the verdict and what became of it first, the reasons (the
    first :data:`REASONS_SHOWN`), then where the gate report and the model card are."""
    reasons = list(decision.reasons)
    rest = reasons[1:] if step.kind == "reject" else reasons
    lines = [headline(decision, step), ""]
    lines += [f"- {r}" for r in rest[:REASONS_SHOWN]]
    if len(rest) > REASONS_SHOWN:
        lines.append(f"- ... and {len(rest) - REASONS_SHOWN} more in the report")
    lines += ["", f"Gate report: {report}"]
    if card:
        lines += ["", f"Model card: {card}"]
    return "\n".join(lines).replace("\n\n\n", "\n\n")[:4900]
