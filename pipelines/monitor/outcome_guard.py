"""Outcomes that contradict the answers are held for review, not landed as training data.

An outcome is authentic when it comes with the feedback token for an answer the server gave
(:mod:`pipelines.serve.feedback`), but a client holding the token can still send wrong labels:
flipped on purpose or by a bug (the positive label mapped to the negative one). Such outcomes
pass every schema check, so before a monitor pass lands new outcomes as a batch, they are
judged against what the model answered for them:

- **disagreement**: the ROC AUC of the served probabilities on the new outcomes, with its DeLong
  interval; the whole interval below ``monitor.outcome_guard.min_auc`` means the outcomes run
  against the answers (a wholesale flip gives about one minus the model's AUC). A concept change
  that affects part of the population moves the AUC toward 0.5, not far below it, so the
  default bound (0.3) holds flips and lets such changes land;
- **label share**: the share of positive outcomes (Wilson interval) entirely farther than
  ``max_share_change`` from the training data's share;
- **confident answers contradicted**: among answers the model gave with a probability beyond
  ``confident`` (either way), the share whose outcome says the opposite; its Wilson interval
  entirely above ``max_confident_contradicted`` holds the outcomes (a sound model is rarely
  wrong when it is sure; a flip makes it wrong on most of them).

Fewer than ``min_rows`` new outcomes are landed unjudged, and the pass says so with the numbers.
Held outcomes are kept with this judgement under ``quarantine/outcomes-<time>/`` and never
landed again; a person who finds them correct moves ``outcomes.parquet`` into the landing
folder. Pure: arrays in, a judgement out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from pipelines.config import EvaluateConfig, OutcomeGuardConfig
from pipelines.records import JsonRecord
from pipelines.stages.evaluate.linear import influence, linear_interval


@dataclass(frozen=True)
class OutcomeCheck(JsonRecord):
    """The judgement of one pass's new outcomes."""

    rows: int
    judged: bool
    held: bool
    reasons: list[str] = field(default_factory=list)
    roc_auc: dict[str, float] | None = None  # point, lower, upper
    positive_share: dict[str, float] | None = None
    reference_share: float | None = None
    confident_contradicted: dict[str, float] | None = None  # share of confident answers

    def summary(self) -> str:
        return "; ".join(self.reasons)


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of a share ``k / n``."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def judge_outcomes(
    y: np.ndarray,
    proba: np.ndarray,
    reference_share: float,
    cfg: OutcomeGuardConfig,
    evaluate: EvaluateConfig,
) -> OutcomeCheck:
    """Hold ``y`` (1 = positive outcome) when it contradicts the served ``proba``."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n = len(y)
    if not cfg.enabled:
        return OutcomeCheck(n, False, False, ["outcome guard off (monitor.outcome_guard)"])
    if n < cfg.min_rows:
        return OutcomeCheck(
            n,
            False,
            False,
            [
                f"{n} new outcomes, fewer than monitor.outcome_guard.min_rows {cfg.min_rows}: "
                "landed without the agreement check"
            ],
        )
    confidence = evaluate.confidence
    reasons: list[str] = []
    held = False
    k = int(y.sum())
    lo, hi = wilson(k, n, confidence)
    share = {"point": k / n, "lower": lo, "upper": hi}
    off = max(reference_share - hi, lo - reference_share)
    if off > cfg.max_share_change:
        held = True
        reasons.append(
            f"{n} new outcomes are {k / n:.1%} positive [{lo:.1%}, {hi:.1%}] against "
            f"{reference_share:.1%} in the training data: more than "
            f"monitor.outcome_guard.max_share_change {cfg.max_share_change} apart"
        )
    auc: dict[str, float] | None = None
    if 0 < k < n:
        points, values = influence(y.astype(np.float64), proba, evaluate)
        iv = linear_interval(points["roc_auc"], values["roc_auc"], confidence)
        auc = {"point": iv.point, "lower": iv.lower, "upper": iv.upper}
        if iv.upper < cfg.min_auc:
            held = True
            reasons.append(
                f"the outcomes run against the answers: ROC AUC of the served probabilities "
                f"{iv.point:.3f} [{iv.lower:.3f}, {iv.upper:.3f}] on {n} new outcomes is below "
                f"monitor.outcome_guard.min_auc {cfg.min_auc} (flipped labels look like this)"
            )
        else:
            reasons.append(
                f"outcomes agree with the answers: ROC AUC {iv.point:.3f} "
                f"[{iv.lower:.3f}, {iv.upper:.3f}] on {n} rows"
            )
    else:
        reasons.append(f"all {n} new outcomes have one label: agreement not measurable")
    sure = (proba >= cfg.confident) | (proba <= 1 - cfg.confident)
    m = int(sure.sum())
    contradicted: dict[str, float] | None = None
    if m >= cfg.min_rows // 4 and m > 0:
        wrong = int(((proba[sure] >= 0.5).astype(np.int64) != y[sure]).sum())
        c_lo, c_hi = wilson(wrong, m, confidence)
        contradicted = {"point": wrong / m, "lower": c_lo, "upper": c_hi, "answers": m}
        if c_lo > cfg.max_confident_contradicted:
            held = True
            reasons.append(
                f"{wrong} of the {m} confident answers (probability beyond {cfg.confident:g}) "
                f"are contradicted: {wrong / m:.0%} [{c_lo:.0%}, {c_hi:.0%}], more than "
                f"monitor.outcome_guard.max_confident_contradicted {cfg.max_confident_contradicted}"
            )
    return OutcomeCheck(n, True, held, reasons, auc, share, reference_share, contradicted)
