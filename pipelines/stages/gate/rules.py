"""The gate's rules of evidence: what a check is, what the gate judges, and how an interval
is read against a threshold (three verdicts, and the rows a decision would need).

- ``pass``: the interval shows the rule holds (a ``min`` bound below the whole CI, ...);
- ``fail``: the interval shows the rule is broken (the whole CI beyond the threshold);
- ``insufficient``: the interval straddles the threshold: not enough evidence either way. A
  CI's half-width shrinks as 1/sqrt(n), so a decision needs about
  ``n_needed = n * (half_width / distance)^2`` rows, with the half-width on the side facing the
  threshold and the distance from the point to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipelines.config import Bound
from pipelines.records import Interval
from pipelines.stages.fairness.intervals import SmallGroups

Verdict = Literal["pass", "fail", "insufficient", "skip", "info"]
Outcome = Literal["pass", "fail", "insufficient"]
FAIRNESS_LOWER_IS_BETTER = {"demographic_parity_difference", "equalized_odds_difference"}
NOT_ENOUGH = "not enough evidence"
BLOCKING = ("validation", "metric", "comparison", "fairness", "fairness_regression", "serving")


@dataclass(frozen=True)
class Check:
    name: str
    group: str  # validation | metric | comparison | fairness | fairness_regression | serving
    # | champion (the champion's own bounds: reported, never blocking) | replacement
    verdict: Verdict
    value: float | int | str | None  # int: a count (failed expectations)
    threshold: str
    detail: str
    rows_needed: int | None = None  # with ``insufficient``: fresh rows a decision would need
    waived: bool = False  # a challenger replacing a champion that fails the bounds


@dataclass(frozen=True)
class Evidence:
    """What the gate judges. Fairness values are the worst over sensitive attributes."""

    metrics: Mapping[str, Interval]
    fairness: Mapping[str, float]
    validation_failures: int = 0
    champion_version: str | None = None
    champion_metrics: Mapping[str, Interval] = field(default_factory=dict)
    differences: Mapping[str, Interval] = field(default_factory=dict)  # challenger - champion
    # attribute -> measure -> value, for regressions judged attribute by attribute
    fairness_by_attribute: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    champion_fairness_by_attribute: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    serving_ok: bool | None = None
    serving_detail: str = ""
    rows: int | None = None  # distinct held-out rows the intervals rest on
    # attribute -> measure -> CI of the measure; and the paired CI of (challenger - champion)
    fairness_intervals: Mapping[str, Mapping[str, Interval]] = field(default_factory=dict)
    fairness_changes: Mapping[str, Mapping[str, Interval]] = field(default_factory=dict)
    # attribute -> measure -> its groups below the minimum size, pooled (judged on the point)
    fairness_small: Mapping[str, Mapping[str, SmallGroups]] = field(default_factory=dict)
    champion_degenerate: str | None = None  # why the champion is no fairness baseline


Burden = Literal["pass", "fail"]  # what an interval must show (see :func:`judge`)
Side = Literal["min", "max"]  # the value must be >= (min) or <= (max) the threshold


def rows_needed(n: int | None, point: float, facing: float, threshold: float) -> int | None:
    """Rows a decision about ``threshold`` would need at the observed variance: the half-width
    on the side facing the threshold, ``|point - facing|``, shrinks as 1/sqrt(n) until it is
    shorter than the distance ``|point - threshold|``. None when that cannot be estimated."""
    half, dist = abs(point - facing), abs(point - threshold)
    if n is None or n <= 0 or not (math.isfinite(half) and math.isfinite(dist)) or dist == 0:
        return None
    return max(n + 1, math.ceil(n * (half / dist) ** 2))


def judge(
    est: Interval, side: Side, threshold: float, n: int | None, burden: Burden = "pass"
) -> tuple[Verdict, int | None]:
    """``pass`` when the CI shows ``est`` on the right side of ``threshold``, ``fail`` when it
    shows it on the wrong one, else ``insufficient`` with the rows a decision would need.

    ``burden``: what the interval must show. ``"pass"`` (metrics, the comparison): a pass needs
    the whole CI on the right side. ``"fail"`` (fairness gaps, whose intervals small groups
    widen and bias upward): a point on the right side passes, and a fail needs the whole CI on
    the wrong side; a point beyond with a CI reaching back is not enough evidence."""
    lo, hi, point = est.lower, est.upper, est.point
    if not all(math.isfinite(v) for v in (lo, hi, point)):
        return "insufficient", None
    on_good_side = point >= threshold if side == "min" else point <= threshold
    good_side = lo >= threshold if side == "min" else hi <= threshold
    bad_side = hi < threshold if side == "min" else lo > threshold
    if good_side or (burden == "fail" and on_good_side):
        return "pass", None
    if bad_side:
        return "fail", None
    facing = (lo if on_good_side else hi) if side == "min" else (hi if on_good_side else lo)
    return "insufficient", rows_needed(n, point, facing, threshold)


def on_rows(n: int | None) -> str:
    return f" on {n:,} rows" if n is not None else ""


def needed_text(k: int | None) -> str:
    return f"about {k:,} rows needed" if k is not None else "rows needed cannot be estimated"


def ci_text(est: Interval, signed: bool = False) -> str:
    f = "{:+.4f}" if signed else "{:.4f}"
    return f"[{f.format(est.lower)}, {f.format(est.upper)}]"


def value_text(est: Interval, signed: bool = False) -> str:
    return f"{('{:+.4f}' if signed else '{:.4f}').format(est.point)} {ci_text(est, signed)}"


def sides(bound: Bound) -> list[tuple[Side, float]]:
    out: list[tuple[Side, float]] = []
    if bound.min is not None:
        out.append(("min", bound.min))
    if bound.max is not None:
        out.append(("max", bound.max))
    return out


def threshold_text(bound: Bound) -> str:
    return " and ".join(f"{'>=' if s == 'min' else '<='} {v}" for s, v in sides(bound))


def worst_verdict(verdicts: list[tuple[Verdict, int | None]]) -> tuple[Verdict, int | None]:
    """The worst of several verdicts (fail, then not enough evidence), with the most rows any
    of them needs."""
    worst: tuple[Verdict, ...] = ("fail", "insufficient")
    for v in worst:
        hits = [k for got, k in verdicts if got == v]
        if hits:
            known = [k for k in hits if k is not None]
            return v, max(known) if known else None
    return "pass", None


def judge_bound(
    name: str,
    est: Interval,
    bound: Bound,
    use_interval: bool,
    n: int | None,
    who: str = "",
    burden: Burden = "pass",
) -> tuple[Verdict, int | None, str]:
    """A value against a bound: the verdict, the rows a decision would need, the reason."""
    thr = threshold_text(bound)
    label = f"{who}{name}"
    if not use_interval:
        pt = Interval(est.point, est.point, est.point)
        verdict, _ = worst_verdict([judge(pt, s, t, n) for s, t in sides(bound)])
        verb = "meets" if verdict == "pass" else "misses"
        if verdict == "insufficient":
            return verdict, None, f"{label}: {NOT_ENOUGH}: not measured{on_rows(n)}"
        return verdict, None, f"{label} {value_text(est)} {verb} {thr} (judged on point)"
    verdict, k = worst_verdict([judge(est, s, t, n, burden) for s, t in sides(bound)])
    if not math.isfinite(est.lower) or not math.isfinite(est.upper):
        return verdict, k, f"{label}: {NOT_ENOUGH}: could not be measured{on_rows(n)}"
    if verdict == "pass":
        shown = all(judge(est, s, t, n)[0] == "pass" for s, t in sides(bound))
        basis = (
            f"judged on CI{on_rows(n)}" if shown else f"no violation shown by the CI{on_rows(n)}"
        )
        return verdict, k, f"{label} {value_text(est)} meets {thr} ({basis})"
    if verdict == "fail":
        return (
            verdict,
            k,
            f"{label} {value_text(est)} misses {thr}: the whole CI{on_rows(n)} is beyond it",
        )
    reach = "; ".join(
        f"reaches {'below' if s == 'min' else 'above'} {t}"
        for s, t in sides(bound)
        if judge(est, s, t, n, burden)[0] == "insufficient"
    )
    return (
        verdict,
        k,
        f"{label} not shown to meet {thr}: CI {ci_text(est)}{on_rows(n)} {reach}; {needed_text(k)}",
    )
