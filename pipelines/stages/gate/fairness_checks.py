"""The gate's fairness checks: bounds on each sensitive attribute's measures and no regression
against the champion, judged on the measure's CI and the paired CI of the change when the
evidence has them (on the point otherwise). The interval decides whether a violation is shown:
a gap between groups is a max minus a min, so small groups widen its interval and push it
upwards; a point within the bound passes, a whole CI beyond it fails, and a point beyond it
with a CI reaching back is not enough evidence (with the rows a decision would need). A
degenerate champion is no fairness baseline.

Groups below a measure's minimum size have no interval of their own, but a regression they
could hide never passes unseen when they are a material part of the population (together at
least ``gate.fairness_small_groups_hold_share`` of the rows: a sex with few positives, not a
handful of rare categories): pooled as one group beside the judged ones, a regression of
their point beyond the margin is not enough evidence, naming the groups, their sizes and about
how many rows would judge them. Below that share they are reported with their pooled point
and the rows needed, and do not block: a ratio on 25 rows moves by noise alone. A measure
with fewer than two groups large enough to compare, even pooled (and the small ones at least
that share), is not enough evidence for its bound and its regression whatever its point.
Otherwise they are reported as not judged and do not block (a bound is on gaps between groups
as they are: a pooled point beyond it is reported, not held). Pooled, because one group of a
few rows has rates in steps of 0.2 or more: its own point would block on noise."""

from __future__ import annotations

import math

from pipelines.config import Bound, GateConfig
from pipelines.records import Interval
from pipelines.stages.fairness.intervals import SmallGroups
from pipelines.stages.gate.rules import (
    FAIRNESS_LOWER_IS_BETTER,
    NOT_ENOUGH,
    Check,
    Evidence,
    Verdict,
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
    share = cfg.fairness_small_groups_hold_share
    checks = [_bound_check(ev, name, bound, share) for name, bound in cfg.fairness.items()]
    checks += [
        Check(f"{m} ({a}) group size", "fairness", "skip", None, "", _not_judged(a, m, sg))
        for a, by_measure in ev.fairness_small.items()
        for m, sg in by_measure.items()
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


def _within(value: float, bound: Bound) -> bool:
    return (bound.min is None or value >= bound.min) and (bound.max is None or value <= bound.max)


def _small_text(sg: SmallGroups) -> str:
    return f"{', '.join(sg.groups)} below the minimum {sg.minimum}"


def _not_judged(attr: str, measure: str, sg: SmallGroups) -> str:
    pooled = f"{sg.point:.4f}" if math.isfinite(sg.point) else "undefined"
    other = (
        f" (champion {sg.other:.4f})" if sg.other is not None and math.isfinite(sg.other) else ""
    )
    return (
        f"{measure} for {attr}: {_small_text(sg)}: not judged on an interval; pooled as one "
        f"group beside the judged ones: {pooled}{other}; {needed_text(sg.rows_needed)} to judge "
        "each on its own"
    )


def _bound_check(ev: Evidence, name: str, bound: Bound, min_share: float) -> Check:
    thr = threshold_text(bound)
    # attribute -> (verdict, rows needed, reason, value shown, point)
    judged: dict[str, tuple[Verdict, int | None, str, str, float]] = {}
    for a, m in ev.fairness_intervals.items():
        est = m.get(name)
        if est is not None and math.isfinite(est.point):  # else: under two groups to compare
            v, k, why = judge_bound(name, est, bound, True, ev.rows, "", burden="fail")
            judged[a] = (v, k, why.replace(name, f"{name} ({a})", 1), value_text(est), est.point)
    for a, by_measure in ev.fairness_small.items():
        sg = by_measure.get(name)
        if sg is None or (a in judged and judged[a][0] != "pass"):
            continue  # no small groups, or the judged groups already hold the check
        if sg.share < min_share:
            continue  # a small share of the rows: reported (the group-size note), not held
        finite = math.isfinite(sg.point)
        pooled = f"{sg.point:.4f}" if finite else "undefined"
        if not sg.comparable:
            why = (
                f"{name} ({a}): {NOT_ENOUGH}: {_small_text(sg)}, and fewer than two groups "
                f"large enough to compare even with them pooled (pooled point {pooled}); "
                f"{needed_text(sg.rows_needed)}"
            )
        else:
            # a bound is on gaps between groups as they are: a pooled point beyond it is
            # reported (the group-size note), not held; the regression checks hold it
            continue
        point = sg.point if finite else math.inf
        judged[a] = ("insufficient", sg.rows_needed, why, pooled, point)
    if judged:  # judged attribute by attribute
        verdict, k = worst_verdict([(v, k) for v, k, *_ in judged.values()])
        # the attribute shown: the worst point among those with the worst verdict
        sign = 1.0 if bound.max is not None else -1.0
        worst = [a for a, r in judged.items() if r[0] == verdict]
        attr = max(worst, key=lambda a: sign * judged[a][4])
        _, _, detail, value, _ = judged[attr]
        return Check(name, "fairness", verdict, value, thr, detail, k)
    worst_point = None if ev.fairness_intervals else ev.fairness.get(name)
    if worst_point is None:
        return Check(
            name,
            "fairness",
            "skip",
            None,
            "",
            f"{name}: no attribute has two groups large enough to compare",
        )
    ok = _within(worst_point, bound)
    detail = f"{name} {worst_point:.4f} {'meets' if ok else 'misses'} {thr} (worst attribute)"
    return Check(name, "fairness", "pass" if ok else "fail", worst_point, thr, detail)


def _regression_checks(ev: Evidence, cfg: GateConfig, champ: str) -> list[Check]:
    checks = []
    for attr in dict.fromkeys([*ev.fairness_by_attribute, *ev.fairness_small]):
        measures = ev.fairness_by_attribute.get(attr, {})
        small = ev.fairness_small.get(attr, {})
        for measure in dict.fromkeys([*measures, *small]):
            check = _regression_check(ev, cfg, champ, attr, measure)
            sg = small.get(measure)
            held = sg is not None and sg.share >= cfg.fairness_small_groups_hold_share
            if sg is not None and held and check.verdict in ("pass", "skip"):
                check = _small_regression(check, sg, cfg.fairness_regression_margin, attr, measure)
            checks.append(check)
    return checks


def _worse(measure: str, change: float) -> float:
    """A change, worse-is-positive."""
    return change if measure in FAIRNESS_LOWER_IS_BETTER else -change


def _small_regression(
    check: Check, sg: SmallGroups, margin: float, attr: str, measure: str
) -> Check:
    """A regression check that passed on the judged groups (or had none), held when the groups
    too small to judge, pooled, regress beyond the margin."""
    both = sg.other is not None and math.isfinite(sg.point) and math.isfinite(sg.other)
    reg = _worse(measure, sg.point - sg.other) if both and sg.other is not None else math.nan
    if not sg.comparable:
        shown = f"{reg:+.4f}" if math.isfinite(reg) else "undefined"
        detail = (
            f"{measure} for {attr}: {NOT_ENOUGH}: {_small_text(sg)}, and fewer than two groups "
            f"large enough to compare even with them pooled (pooled regression {shown}); "
            f"{needed_text(sg.rows_needed)}"
        )
    elif math.isfinite(reg) and reg > margin:
        detail = (
            f"{measure} for {attr}: {NOT_ENOUGH}: {_small_text(sg)} are not judged, and with "
            f"them pooled as one group it regresses by {reg:+.4f} ({sg.point:.4f} vs "
            f"{sg.other:.4f}), beyond the {margin} margin; {needed_text(sg.rows_needed)}"
        )
    else:
        return check
    return Check(
        check.name,
        "fairness_regression",
        "insufficient",
        round(reg, 6) if math.isfinite(reg) else None,
        f"regression <= {margin}",
        detail,
        sg.rows_needed,
    )


def _regression_check(ev: Evidence, cfg: GateConfig, champ: str, attr: str, measure: str) -> Check:
    margin = cfg.fairness_regression_margin
    name = f"{measure} ({attr}) vs champion"
    new = ev.fairness_by_attribute.get(attr, {}).get(measure)
    old = ev.champion_fairness_by_attribute.get(attr, {}).get(measure)
    if old is None or new is None:
        return Check(
            name,
            "fairness_regression",
            "skip",
            None,
            "",
            f"{measure} for {attr}: not defined for "
            f"{'the challenger' if new is None else champ} on the groups large enough to judge",
        )
    # the regression, worse-is-positive: challenger - champion, or its negation for ratios
    change = ev.fairness_changes.get(attr, {}).get(measure)
    paired = change is not None
    if change is None:
        change = Interval(new - old, new - old, new - old)
    reg = (
        change
        if measure in FAIRNESS_LOWER_IS_BETTER
        else Interval(-change.point, -change.upper, -change.lower)
    )
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
    return Check(
        name,
        "fairness_regression",
        verdict,
        round(reg.point, 6),
        f"regression <= {margin}",
        detail,
        k,
    )
