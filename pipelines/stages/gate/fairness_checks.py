"""The gate's fairness checks: bounds on each sensitive attribute's measures and no regression
against the champion, judged on the measure's CI and the paired CI of the change when the
evidence has them (on the point otherwise). The interval decides whether a violation is shown:
a gap between groups is a max minus a min, so small groups widen its interval and push it
upwards; a point within the bound passes, a whole CI beyond it fails, and a point beyond it
with a CI reaching back is not enough evidence (with the rows a decision would need). A
degenerate champion is no fairness baseline, and groups below a measure's minimum size are
named, not judged."""

from __future__ import annotations

import math

from pipelines.config import GateConfig
from pipelines.records import Interval
from pipelines.stages.gate.rules import (
    FAIRNESS_LOWER_IS_BETTER,
    Check,
    Evidence,
    ci_text,
    judge,
    judge_bound,
    needed_text,
    on_rows,
    threshold_text,
    value_text,
    worst_verdict,
)


def fairness_checks(ev: Evidence, cfg: GateConfig) -> list[Check]:
    checks = []
    for name, bound in cfg.fairness.items():
        thr = threshold_text(bound)
        by_attr = {
            a: m[name]
            for a, m in ev.fairness_intervals.items()
            if name in m and math.isfinite(m[name].point)  # else: under two groups to compare
        }
        if by_attr:  # judged attribute by attribute on the measure's CI
            judged = {
                a: judge_bound(name, est, bound, True, ev.rows, "", burden="fail")
                for a, est in by_attr.items()
            }
            verdict, k = worst_verdict([(v, k) for v, k, _ in judged.values()])
            # the attribute shown: the worst point among those with the worst verdict
            sign = 1.0 if bound.max is not None else -1.0
            attr = max(
                (a for a, (v, _, _) in judged.items() if v == verdict),
                key=lambda a: sign * by_attr[a].point,
            )
            detail = judged[attr][2].replace(f"{name}", f"{name} ({attr})", 1)
            checks.append(
                Check(name, "fairness", verdict, value_text(by_attr[attr]), thr, detail, k)
            )
            continue
        v = None if ev.fairness_intervals else ev.fairness.get(name)
        if v is None:
            checks.append(
                Check(
                    name,
                    "fairness",
                    "skip",
                    None,
                    "",
                    f"{name}: no attribute has two groups large enough to compare",
                )
            )
            continue
        ok = (bound.min is None or v >= bound.min) and (bound.max is None or v <= bound.max)
        detail = f"{name} {v:.4f} {'meets' if ok else 'misses'} {thr} (worst attribute)"
        checks.append(Check(name, "fairness", "pass" if ok else "fail", v, thr, detail))
    checks += [
        Check("group size", "fairness", "skip", None, "", note) for note in ev.fairness_not_judged
    ]
    if ev.champion_version is None:
        return checks
    champ = f"champion v{ev.champion_version}"
    if ev.champion_degenerate:
        return checks + [
            Check(
                f"fairness vs {champ}",
                "fairness_regression",
                "skip",
                None,
                "",
                f"{champ} is degenerate ({ev.champion_degenerate}): not a fairness baseline",
            )
        ]
    return checks + _regression_checks(ev, cfg, champ)


def _regression_checks(ev: Evidence, cfg: GateConfig, champ: str) -> list[Check]:
    margin = cfg.fairness_regression_margin
    checks = []
    for attr, measures in ev.fairness_by_attribute.items():
        before = ev.champion_fairness_by_attribute.get(attr, {})
        for measure, new in measures.items():
            name = f"{measure} ({attr}) vs champion"
            old = before.get(measure)
            if old is None or new is None:
                checks.append(
                    Check(
                        name,
                        "fairness_regression",
                        "skip",
                        None,
                        "",
                        f"{measure} for {attr}: not defined for {champ} on these rows",
                    )
                )
                continue
            lower_better = measure in FAIRNESS_LOWER_IS_BETTER
            # the regression, worse-is-positive: challenger - champion, or its negation for ratios
            change = ev.fairness_changes.get(attr, {}).get(measure)
            paired = change is not None
            if change is None:
                change = Interval(new - old, new - old, new - old)
            reg = change if lower_better else Interval(-change.point, -change.upper, -change.lower)
            verdict, k = judge(reg, "max", margin, ev.rows, burden="fail")
            shown = f"{new:.4f} vs {champ} {old:.4f}"
            if verdict == "pass":
                detail = f"{measure} for {attr} {shown}: within the {margin} margin" + (
                    f" (regression CI {ci_text(reg, True)})" if paired else ""
                )
            elif verdict == "fail":
                detail = f"{measure} for {attr} {shown}: regresses beyond the {margin} margin" + (
                    f" (regression CI {ci_text(reg, True)}{on_rows(ev.rows)})" if paired else ""
                )
            else:
                detail = (
                    f"{measure} for {attr} {shown}: not shown within the {margin} margin: "
                    f"regression CI {ci_text(reg, True)}{on_rows(ev.rows)} reaches above {margin}; "
                    f"{needed_text(k)}"
                )
            checks.append(
                Check(
                    name,
                    "fairness_regression",
                    verdict,
                    round(reg.point, 6),
                    f"regression <= {margin}",
                    detail,
                    k,
                )
            )
    return checks
