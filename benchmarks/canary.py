"""The canary's decisions on simulated canaries with known truth, looked at again and again:
today's fixed interval re-checked at every look against the confidence sequence
(``deploy.canary.method``: ``fixed`` | ``sequential``).

Scores are binormal, calibrated to Adult: a positive rate of 0.24 and a champion whose ROC AUC
is 0.92 (the project's champion on Adult measures 0.92-0.93). A model's latent score is
``mu * y + shared * c + sqrt(1 - shared^2) * e`` (unit variance in each class, so its ROC AUC
is ``Phi(mu / sqrt 2)`` exactly) and its probability the logistic of it; ``c`` is the noise
two models share on the same request (``SHARED``: their scores correlate at 0.9 within a
class, as a retrained model's do with its champion's). Fairness is not simulated here: the
table is about the metric's interval.

- ``canary`` mode: the challenger answers ``SHARE`` (0.2) of the requests, so each look has
  four champion rows per canary row, on different requests (unpaired);
- ``shadow`` mode: both models score every request (paired).

A look comes every 50 labelled rows of the challenger's arm, from ``min_rows`` (300) up to
``MAX_ROWS`` (4,000; a canary at share 0.2 has then 20,000 labelled rows in all). At each look
the rule of :func:`~pipelines.release.canary.decide.metric_verdict` with ``margin`` 0.01: roll
back when the interval of (canary - champion) lies below ``-margin``, promote when above, else
wait; the first promote or roll back ends the canary. Still undecided at ``MAX_ROWS``: counted
as undecided (in production ``max_hours`` then rolls it back). The intervals:

- ``fixed``: ``point +- 1.96 se``, ``se`` from the influence values (DeLong for ROC AUC): the
  evaluate stage's linearised interval, which the percentile bootstrap the canary runs agrees
  with at these sizes (tested in tests/unit/test_evaluate.py); a thousand resamples at every
  one of 75 looks of thousands of canaries would take hours;
- ``sequential``: :func:`~pipelines.release.canary.sequential.radius` with the same variance.

The AUC and its influence values at every look of a stream come from one pass over the stream
(placement counts by look); the first canary of each scenario is checked against the
production code (:func:`~pipelines.release.canary.sequential.metric_influence`) at every look.

Truths: the challenger equal to the champion (a roll back is wrong; with ``margin`` 0 a
promotion too, as neither is worse), worse by exactly the margin (a promotion is wrong: the
error the non-inferiority rule bounds), and better by 0.02 and 0.05 (rows to a promotion).

By default 200 canaries per scenario (71 s of CPU; 265 s on 2 cores shared with other jobs);
``--full``: 1,000 (1,517 s there).

    python -m benchmarks.canary [--full] [--canaries N] [--max-rows N]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from benchmarks.common import machine_note, table
from pipelines.config import EvaluateConfig
from pipelines.records import Interval
from pipelines.release.canary.decide import metric_verdict
from pipelines.release.canary.sequential import metric_influence, planned_rows, radius

CHAMPION_AUC = 0.92
POSITIVE_RATE = 0.24
SHARED = 0.9  # within-class correlation of two models' scores on the same request
SHARE = 0.2  # canary mode: the challenger's share of requests
MIN_ROWS, STEP, MAX_ROWS = 300, 50, 4_000
MARGIN, CONFIDENCE = 0.01, 0.95
DEFAULT_CANARIES, FULL_CANARIES = 200, 1_000
TRUTHS = (0.0, -MARGIN, 0.02, 0.05)  # challenger - champion ROC AUC
PHI = NormalDist()


@dataclass(frozen=True)
class Looks:
    """The difference's point and variance at each look, and the challenger's rows there."""

    rows: np.ndarray  # challenger-arm rows at each look
    total: np.ndarray  # rows of the stream (both arms, or the pairs)
    point: np.ndarray
    variance: np.ndarray


def prefix_influence(y: np.ndarray, s: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, ...]:
    """ROC AUC and its influence values (the evaluate stage's, DeLong's placements) on each
    prefix ``[:cut]`` of the stream: ``auc`` (looks) and ``values`` (looks x rows, in the
    order of :func:`_class_order`: positives then negatives; 0 outside the prefix). Scores must
    not tie (continuous here)."""
    n = int(cuts[-1])
    y, s = y[:n].astype(bool), s[:n]
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(s)] = np.arange(n)
    block = np.searchsorted(cuts, np.arange(n), side="right")  # the first look a row is in
    pos, neg = _class_order(y)
    looks = np.arange(len(cuts))

    def below(member: np.ndarray, of: np.ndarray) -> np.ndarray:
        """[look, j]: rows of ``member`` in the look's prefix ranked below row ``of[j]``."""
        key = block[member] * (n + 1) + rank[member]
        sorted_key = np.sort(key)
        starts = np.searchsorted(sorted_key, looks * (n + 1))
        counts = np.searchsorted(sorted_key, looks[:, None] * (n + 1) + rank[of][None, :])
        return np.cumsum(counts - starts[:, None], axis=0)

    m = np.cumsum(np.bincount(block[pos], minlength=len(cuts))).astype(np.float64)
    k = np.cumsum(np.bincount(block[neg], minlength=len(cuts))).astype(np.float64)
    v10 = below(neg, pos) / k[:, None]  # a positive's share of negatives below it
    v01 = (m[:, None] - below(pos, neg)) / m[:, None]  # a negative's share of positives above
    in_pos = block[pos][None, :] <= looks[:, None]
    in_neg = block[neg][None, :] <= looks[:, None]
    auc = np.where(in_pos, v10, 0.0).sum(axis=1) / m
    size = cuts.astype(np.float64)[:, None]
    values = np.hstack(
        [
            np.where(in_pos, (v10 - auc[:, None]) * size / m[:, None], 0.0),
            np.where(in_neg, (v01 - auc[:, None]) * size / k[:, None], 0.0),
        ]
    )
    return auc, values


def _class_order(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = y.astype(bool)
    return np.flatnonzero(y), np.flatnonzero(~y)


def simulate(
    rng: np.random.Generator, delta: float, paired: bool, max_rows: int, check: bool = False
) -> Looks:
    """One canary's looks: the champion at ``CHAMPION_AUC``, the challenger ``delta`` off."""
    rows = np.arange(MIN_ROWS, max_rows + 1, STEP)
    mu_old = math.sqrt(2) * PHI.inv_cdf(CHAMPION_AUC)
    mu_new = math.sqrt(2) * PHI.inv_cdf(CHAMPION_AUC + delta)

    def stream(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = (rng.random(n) < POSITIVE_RATE).astype(np.float64)
        c = rng.normal(size=n)
        own = math.sqrt(1 - SHARED**2)
        z_old = mu_old * y + SHARED * c + own * rng.normal(size=n)
        z_new = mu_new * y + SHARED * c + own * rng.normal(size=n)
        return y, _proba(z_old), _proba(z_new)

    if paired:
        y, p_old, p_new = stream(max_rows)
        auc_old, if_old = prefix_influence(y, p_old, rows)
        auc_new, if_new = prefix_influence(y, p_new, rows)
        variance = np.sum((if_new - if_old) ** 2, axis=1) / rows**2
        total = rows
        checks = [(y, p_old, rows, auc_old, if_old), (y, p_new, rows, auc_new, if_new)]
    else:
        ratio = round((1 - SHARE) / SHARE)
        champ_rows = rows * ratio
        y_old, p_old, _ = stream(int(champ_rows[-1]))
        y_new, _, p_new = stream(max_rows)
        auc_old, if_old = prefix_influence(y_old, p_old, champ_rows)
        auc_new, if_new = prefix_influence(y_new, p_new, rows)
        variance = np.sum(if_old**2, axis=1) / champ_rows**2 + np.sum(if_new**2, axis=1) / rows**2
        total = rows + champ_rows
        checks = [
            (y_old, p_old, champ_rows, auc_old, if_old),
            (y_new, p_new, rows, auc_new, if_new),
        ]
    if check:  # the one-pass computation is the production code's at every look
        cfg = EvaluateConfig()
        for y, p, cuts, auc, values in checks:
            order = np.concatenate(_class_order(y[: cuts[-1]]))
            for i, cut in enumerate(cuts):
                point, expected = metric_influence(y[:cut], p[:cut], "roc_auc", cfg)
                full = np.zeros(int(cuts[-1]))
                full[order] = values[i]
                assert abs(point - auc[i]) < 1e-9 and np.allclose(full[:cut], expected)
                assert not full[cut:].any()
    return Looks(rows, total, auc_new - auc_old, variance)


def _proba(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(z - 1.2))))


def first_decision(looks: Looks, method: str, margin: float, paired: bool) -> tuple[str, int]:
    """The first look that promotes or rolls back under ``method``: (verdict, challenger rows);
    ("undecided", max rows) when none does."""
    z = PHI.inv_cdf(0.5 + CONFIDENCE / 2)
    planned = planned_rows(MIN_ROWS, paired=paired)
    for i, rows in enumerate(looks.rows):
        point, var = float(looks.point[i]), float(looks.variance[i])
        if method == "sequential":
            r = radius(var, float(looks.total[i]), CONFIDENCE, planned)
        else:
            r = z * math.sqrt(var)
        verdict = metric_verdict(Interval(point, point - r, point + r), margin)
        if verdict != "wait":
            return verdict, int(rows)
    return "undecided", int(looks.rows[-1])


def run(canaries: int, max_rows: int, seed: int = 0) -> list[list[str]]:
    rows_out = []
    for mode in ("canary", "shadow"):
        paired = mode == "shadow"
        for delta in TRUTHS:
            rng = np.random.default_rng([seed, int(paired), int(round(delta * 1000)) + 100])
            t0 = time.perf_counter()
            sims = [simulate(rng, delta, paired, max_rows, check=i == 0) for i in range(canaries)]
            seconds = time.perf_counter() - t0
            margins = (MARGIN, 0.0) if delta == 0 else (MARGIN,)
            for margin in margins:
                for method in ("fixed", "sequential"):
                    out = [first_decision(s, method, margin, paired) for s in sims]
                    rows_out.append(_row(mode, delta, margin, method, out, seconds))
                    print("  " + " | ".join(rows_out[-1]), flush=True)  # as it finishes
    return rows_out


def _row(
    mode: str, delta: float, margin: float, method: str, out: list[tuple[str, int]], s: float
) -> list[str]:
    n = len(out)
    promote = sum(v == "promote" for v, _ in out) / n
    rollback = sum(v == "rollback" for v, _ in out) / n
    undecided = 1 - promote - rollback
    if delta < 0 or (delta == 0 and margin == 0):
        wrong = promote + (rollback if delta == 0 else 0.0)
        wrong_s = f"{wrong:.1%} ({'promote' if delta < 0 else 'promote or roll back'})"
        nominal = "<= 2.5%" if delta < 0 else "<= 5%"
    elif delta == 0:
        wrong_s, nominal = f"{rollback:.1%} (roll back)", "<= 2.5%"
    else:
        wrong_s, nominal = f"{rollback:.1%} (roll back)", "-"
    decided = [r for v, r in out if v == "promote"]
    mean_rows = float(np.mean([r for _, r in out]))  # undecided counted at the maximum
    median = f"{int(np.median(decided)):,}" if decided else "-"
    return [
        mode,
        f"{delta:+.2f}",
        f"{margin:g}",
        method,
        f"{promote:.1%}",
        f"{rollback:.1%}",
        f"{undecided:.1%}",
        wrong_s,
        nominal,
        f"{mean_rows:,.0f}",
        median,
        f"{s:.0f}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.canary", description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help=f"{FULL_CANARIES} canaries per scenario")
    ap.add_argument("--canaries", type=int, default=None, help="canaries per scenario")
    ap.add_argument("--max-rows", type=int, default=MAX_ROWS, help="challenger rows at most")
    args = ap.parse_args(argv)
    canaries = args.canaries or (FULL_CANARIES if args.full else DEFAULT_CANARIES)
    print(
        f"{canaries} simulated canaries per scenario; a look every {STEP} labelled rows of the "
        f"challenger's arm from {MIN_ROWS} to {args.max_rows:,}; champion ROC AUC "
        f"{CHAMPION_AUC}, binormal scores (within-class correlation {SHARED}); canary share "
        f"{SHARE}; {CONFIDENCE:.0%} intervals.",
        flush=True,
    )
    header = [
        "mode",
        "truth",
        "margin",
        "method",
        "promote",
        "roll back",
        "undecided",
        "wrong",
        "nominal",
        "mean rows",
        "median rows to promote",
        "sim s",
    ]
    print(table(header, run(canaries, args.max_rows)), flush=True)
    print(
        "rows: the challenger's arm at the decision (canary mode: the champion's arm has 4x "
        f"as many); mean rows counts an undecided canary at the maximum. {machine_note()}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
