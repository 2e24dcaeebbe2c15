"""The gate's decision: a pure function of the evidence and :class:`GateConfig`. No files,
registry or models here: :mod:`pipelines.stages.gate.evidence` gathers the evidence and
:mod:`pipelines.stages.gate.report` renders the decision.

Every check has one of three verdicts, read from an interval, never from a bare point:
- ``pass``: the interval shows the rule holds (a ``min`` bound below the CI, ...);
- ``fail``: the interval shows the rule is broken (the whole CI beyond the threshold);
- ``insufficient``: the interval straddles the threshold: not enough evidence either way. The
  check says about how many fresh rows a decision would need at the observed variance: a CI's
  half-width shrinks as 1/sqrt(n), so ``n_needed = n * (half_width / distance)^2``, with the
  half-width on the side facing the threshold and the distance from the point to it.
A check that is not judged is ``skip`` and says why.

Rules:
- absolute metric bounds hold (on the CI unless ``use_interval`` is false);
- the challenger is not worse than the champion beyond the non-inferiority margin, judged on
  a paired bootstrap CI of (challenger - champion) on the same fresh rows;
- fairness bounds hold and no fairness measure regresses beyond a margin against the champion,
  judged on the measure's CI and the paired CI of the change when the evidence has them; a
  degenerate champion (selection rate near 0 or 1) is no fairness baseline; groups too small
  for a measure never pass unseen (:mod:`.fairness_checks`: pooled, a regression beyond the
  margin, or a measure they leave with nothing to compare, is not enough evidence);
- the model loads and predicts through the serving code path;
- the champion is held to the same absolute bounds on the same rows (reported, never blocking).
  When it fails one and ``replace_failing_champion`` is on, a challenger significantly better
  on the paired CI (its lower bound above 0) and not worse on fairness replaces it even if it
  misses a bound too: those checks are waived, and the reasons say so;
- with no champion yet only absolute checks apply, and the decision says so.

The decision fails if a check fails, lacks evidence if one lacks evidence, and passes
otherwise. What a night does with each verdict is the release plan's
(:func:`pipelines.release.plan.plan`), not the gate's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pipelines.config import GateConfig
from pipelines.records import Interval, JsonRecord
from pipelines.stages.evaluate.result import LOWER_IS_BETTER
from pipelines.stages.gate.fairness_checks import fairness_checks
from pipelines.stages.gate.rules import (
    BLOCKING,
    NOT_ENOUGH,
    Check,
    Evidence,
    Outcome,
    Side,
    Verdict,
    ci_text,
    judge,
    judge_bound,
    needed_text,
    on_rows,
    threshold_text,
    value_text,
)


@dataclass(frozen=True)
class Decision(JsonRecord):
    verdict: Outcome
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    champion_version: str | None
    decided_at: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def replaces_failing_champion(self) -> bool:
        return any(c.group == "replacement" and c.verdict == "pass" for c in self.checks)


# --------------------------------------------------------------------------- the decision
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
    checks += _metric_checks(ev.metrics, cfg, ev.rows, "metric", "")
    checks += _comparison_checks(ev, cfg)
    checks += fairness_checks(ev, cfg)
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
    elif ev.serving_detail:
        checks.append(
            Check(
                "loads and predicts via serving path",
                "serving",
                "skip",
                None,
                "",
                ev.serving_detail,
            )
        )
    if ev.champion_version is not None:
        champion = _champion_checks(ev, cfg)
        checks += champion + _replacement(ev, cfg, checks, champion)
        if any(c.group == "replacement" and c.verdict == "pass" for c in checks):
            checks = [
                replace(c, waived=True)
                if c.group == "metric" and c.verdict in ("fail", "insufficient")
                else c
                for c in checks
            ]
    judged = [c for c in checks if c.group in BLOCKING and not c.waived]
    failed = [c for c in judged if c.verdict == "fail"]
    unsure = [c for c in judged if c.verdict == "insufficient"]
    about_champion = tuple(
        c.detail
        for c in checks
        if c.group == "replacement" or (c.group == "champion" and c.verdict == "fail")
    )
    verdict: Outcome
    if failed or unsure:
        verdict = "fail" if failed else "insufficient"
        reasons = tuple(c.detail for c in failed + unsure) + about_champion
    else:
        verdict = "pass"
        reasons = (f"all {sum(c.verdict == 'pass' for c in judged)} checks passed",)
        reasons += about_champion  # (with no champion yet, the skipped comparison says so)
    skipped = tuple(f"not judged: {c.detail}" for c in checks if c.verdict == "skip")
    return Decision(
        verdict=verdict,
        reasons=reasons + tuple(s for s in skipped if s not in reasons),
        checks=tuple(checks),
        champion_version=ev.champion_version,
        decided_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
    )


def _metric_checks(
    metrics: Mapping[str, Interval], cfg: GateConfig, n: int | None, group: str, who: str
) -> list[Check]:
    checks = []
    for name, bound in cfg.metrics.items():
        est = metrics.get(name)
        label = f"{who}{name}"
        if est is None:
            verdict: Verdict = "fail" if group == "metric" else "skip"
            checks.append(Check(label, group, verdict, None, "", f"{label}: not measured"))
            continue
        verdict, k, detail = judge_bound(name, est, bound, cfg.use_interval, n, who)
        checks.append(
            Check(label, group, verdict, value_text(est), threshold_text(bound), detail, k)
        )
    return checks


def _champion_checks(ev: Evidence, cfg: GateConfig) -> list[Check]:
    """The champion held to the same absolute bounds on the same fresh rows."""
    if not ev.champion_metrics:
        return [
            Check(
                f"champion v{ev.champion_version} bounds",
                "champion",
                "skip",
                None,
                "",
                f"champion v{ev.champion_version} was not measured on these rows",
            )
        ]
    return _metric_checks(
        ev.champion_metrics, cfg, ev.rows, "champion", f"champion v{ev.champion_version} "
    )


def _better(name: str) -> Side:
    return "max" if name in LOWER_IS_BETTER else "min"


def _replacement(
    ev: Evidence, cfg: GateConfig, checks: list[Check], champion: list[Check]
) -> list[Check]:
    """A champion that fails the bounds is replaced by a significantly better challenger."""
    failing = [c for c in champion if c.verdict == "fail"]
    if not failing:
        return []
    name = cfg.non_inferiority_metric
    diff = ev.differences.get(name)
    missed = ", ".join(f"{c.name.split(' ', 2)[-1]} {c.threshold}" for c in failing)
    head = f"champion v{ev.champion_version} fails {missed} on the same rows"
    if not cfg.replace_failing_champion:
        return [
            Check(
                "replaces failing champion",
                "replacement",
                "skip",
                None,
                "",
                f"{head}; replacing it is off (gate.replace_failing_champion)",
            )
        ]
    better = diff is not None and judge(diff, _better(name), 0.0, ev.rows)[0] == "pass"
    fair_worse = [
        c
        for c in checks
        if c.group in ("fairness_regression",) and c.verdict in ("fail", "insufficient")
    ]
    value = value_text(diff, signed=True) if diff is not None else None
    direction = "above" if _better(name) == "min" else "below"
    threshold = f"paired CI of {name} {direction} 0, no fairness regression"
    why = None
    if not better:
        why = f"the challenger is not significantly better on {name}" + (
            f" (paired {value}{on_rows(ev.rows)})" if value else " (no paired comparison)"
        )
    elif fair_worse:
        why = "the challenger is not shown no worse on fairness " + (
            f"({'; '.join(c.name for c in fair_worse)})"
        )
    if why is not None:
        reason = f"{head}; not replaced: {why}"
        return [Check("replaces failing champion", "replacement", "info", value, threshold, reason)]
    own = [c for c in checks if c.group == "metric" and c.verdict in ("fail", "insufficient")]
    though = (
        f", though it misses {', '.join(f'{c.name} {c.threshold}' for c in own)} itself"
        if own
        else ""
    )
    return [
        Check(
            "replaces failing champion",
            "replacement",
            "pass",
            value,
            threshold,
            f"{head}: the challenger replaces it, significantly better on {name} "
            f"(paired {value}{on_rows(ev.rows)}) and not worse on fairness{though}",
        )
    ]


def _comparison_checks(ev: Evidence, cfg: GateConfig) -> list[Check]:
    name = cfg.non_inferiority_metric
    check = f"{name} vs champion"
    if ev.champion_version is None:
        return [
            Check(
                check, "comparison", "skip", None, "", "no champion yet: only absolute checks apply"
            )
        ]
    diff = ev.differences.get(name)
    if diff is None:
        return [
            Check(
                check,
                "comparison",
                "fail",
                None,
                "",
                f"no paired comparison with champion v{ev.champion_version} was computed",
            )
        ]
    margin = cfg.non_inferiority_margin
    side: Side = "max" if name in LOWER_IS_BETTER else "min"
    thr = margin if side == "max" else -margin
    end, op, beyond = ("upper", "<=", "above") if side == "max" else ("lower", ">=", "below")
    threshold = f"CI {end} of difference {op} {thr:+g}"
    verdict, k = judge(diff, side, thr, ev.rows)
    champ = f"champion v{ev.champion_version}"
    value = value_text(diff, signed=True)
    if not math.isfinite(diff.lower) or not math.isfinite(diff.upper):
        detail = (
            f"{name} vs {champ}: {NOT_ENOUGH}: the paired difference could not be measured"
            f"{on_rows(ev.rows)}"
        )
    elif verdict == "pass":
        detail = (
            f"challenger is not worse than {champ} on {name} beyond the {margin} margin: "
            f"paired difference {value}{on_rows(ev.rows)}"
        )
    elif verdict == "fail":
        detail = (
            f"challenger is worse than {champ} on {name} beyond the {margin} margin: "
            f"paired CI {ci_text(diff, True)}{on_rows(ev.rows)} lies {beyond} {thr:+g}"
        )
    else:
        detail = (
            f"not shown non-inferior to {champ} on {name}: CI {ci_text(diff, True)}"
            f"{on_rows(ev.rows)} reaches {beyond} {thr:+g}; {needed_text(k)}"
        )
    return [Check(check, "comparison", verdict, value, threshold, detail, k)]
