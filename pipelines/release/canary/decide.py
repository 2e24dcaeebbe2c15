"""The canary's decision: a pure function of the labelled live rows of both arms and the config.

The rows are the prediction log joined with the fed-back outcomes (one row per answer with its
``arm``, ``probability``, the features and ``label``). Rules (``params.deploy.canary``):

- wait until each arm has ``min_rows`` labelled rows (shadow: requests both models answered);
- roll back when the whole CI of (canary - champion) on ``metric`` lies below ``-margin``, or
  when a fairness measure regressed by more than ``fairness_margin``: the CI of its regression
  (canary against champion, per sensitive attribute) lies wholly above the margin;
- promote when the CI's lower bound is above ``-margin`` (not worse by more than the margin)
  and no fairness measure regressed;
- otherwise keep waiting; still undecided after ``max_hours``: roll back.

The decision is taken again on every monitor pass, so the intervals must stay valid however
often one looks. ``method: sequential`` (the default) uses confidence sequences
(:mod:`pipelines.release.canary.sequential`: time-uniform, from the rows' influence values);
``method: fixed`` the evaluate stage's bootstrap (``params.evaluate``: samples, confidence,
seed), whose error rate grows with the number of looks. In ``canary`` mode the arms answered
different requests (unpaired). In ``shadow`` mode both models answered the same requests, so
the rows are paired on (request_id, row) (fixed: resampled together, the evaluate stage's
paired bootstrap; sequential: influence values subtracted row by row): the variation the two
models share cancels and the CI is narrower. Fairness measures come from the fairness stage
(``params.fairness``, ``params.dataset.sensitive``); why their regression is judged on an
interval too: :mod:`pipelines.release.canary.groups`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, cast

import numpy as np
import pandas as pd
from pydantic import PlainSerializer

from pipelines.config import EvaluateConfig, Params
from pipelines.records import Interval, JsonRecord
from pipelines.records import Mode as Mode  # re-exported: control imports it from here
from pipelines.release.canary.groups import ArmSample, FairnessChange, compare_fairness
from pipelines.release.canary.sequential import compare_arms_sequential, planned_rows

# The evaluate stage's vectorised metrics and resampling: the unpaired CI needs the bootstrap
# draws of each arm, which its public functions reduce to intervals.
from pipelines.stages.evaluate.bootstrap import (
    metric_draws,
    paired_bootstrap_difference,
    percentile_interval,
)
from pipelines.stages.evaluate.result import EvaluationError, higher_is_better
from pipelines.stages.fairness import FairnessResult, assess_fairness

CanaryVerdict = Literal["promote", "rollback", "wait"]
MODES: tuple[Mode, ...] = ("canary", "shadow")
CHAMPION_ARM = "champion"
KEYS = ["request_id", "row"]  # one answer: a request and the row within it


@dataclass(frozen=True)
class Arm(JsonRecord):
    """One arm's judged rows: how many, which versions answered, the metric, the fairness."""

    name: str  # champion | canary | shadow
    versions: tuple[str, ...]
    rows: int
    positives: int
    metric: Interval | None = None
    fairness: FairnessResult | None = None


@dataclass(frozen=True)
class CanaryDecision(JsonRecord):
    """What to do with the canary, why, and the numbers behind it."""

    verdict: CanaryVerdict
    reasons: tuple[str, ...]
    mode: Mode
    metric: str
    paired: bool
    method: str  # sequential (confidence sequences) | fixed (a bootstrap CI per look)
    rows: int  # labelled rows judged: both arms' (canary mode) or the pairs (shadow)
    champion: Arm
    canary: Arm
    difference: Interval | None  # canary - champion on ``metric``
    fairness_changes: tuple[FairnessChange, ...]
    started: str
    decided_at: str
    hours: Annotated[float, PlainSerializer(lambda h: round(h, 3))]  # written to 3 places
    rules: Mapping[str, Any]

    @property
    def acts(self) -> bool:
        return self.verdict != "wait"


def decide(
    rows: pd.DataFrame,
    params: Params,
    *,
    mode: Mode,
    started: datetime,
    now: datetime,
    canary_version: str | None = None,
) -> CanaryDecision:
    """Judge the canary on ``rows`` (labelled answers since ``started``). Pure: same inputs,
    same decision. Rows of the challenger's arm from another version than ``canary_version``
    (when given) are left out."""
    if mode not in MODES:
        raise ValueError(f"unknown canary mode {mode!r}; modes are {list(MODES)}")
    cfg = params.deploy.canary
    if not higher_is_better(cfg.metric):
        raise ValueError(f"canary metric {cfg.metric!r} must be one where higher is better")
    hours = max(0.0, (now - started).total_seconds() / 3600.0)
    champ, chall = _arms(rows, mode, canary_version)
    paired = mode == "shadow"
    planned = planned_rows(cfg.min_rows, paired=paired)
    y_champ, y_chall = _labels(champ, params), _labels(chall, params)

    def result(
        verdict: CanaryVerdict,
        reasons: list[str],
        champion: Arm,
        canary: Arm,
        difference: Interval | None = None,
        changes: tuple[FairnessChange, ...] = (),
    ) -> CanaryDecision:
        return CanaryDecision(
            verdict=verdict,
            reasons=tuple(reasons),
            mode=mode,
            metric=cfg.metric,
            paired=mode == "shadow",
            method=cfg.method,
            rows=champion.rows if mode == "shadow" else champion.rows + canary.rows,
            champion=champion,
            canary=canary,
            difference=difference,
            fairness_changes=changes,
            started=started.isoformat(timespec="seconds"),
            decided_at=now.isoformat(timespec="seconds"),
            hours=hours,
            rules={
                **cfg.model_dump(),
                "confidence": params.evaluate.confidence,
                "bootstrap_samples": params.evaluate.bootstrap_samples,
                "seed": params.evaluate.seed,
                "min_group_size": params.fairness.min_group_size,
                "planned_rows": planned,
            },
        )

    def wait_or_give_up(
        reasons: list[str],
        champion: Arm,
        canary: Arm,
        difference: Interval | None = None,
        changes: tuple[FairnessChange, ...] = (),
    ) -> CanaryDecision:
        if hours >= cfg.max_hours:
            undecided = f"undecided after {hours:.1f} h (limit {cfg.max_hours:g} h): rolled back"
            return result("rollback", [undecided, *reasons], champion, canary, difference, changes)
        waiting = f"waiting ({hours:.1f} of {cfg.max_hours:g} h)"
        return result("wait", [*reasons, waiting], champion, canary, difference, changes)

    arm_name = "shadow" if mode == "shadow" else "canary"
    counted = (_arm(CHAMPION_ARM, champ, y_champ), _arm(arm_name, chall, y_chall))
    short = [
        f"{a.name} arm has {a.rows} labelled rows of the {cfg.min_rows} needed"
        for a in counted
        if a.rows < cfg.min_rows
    ]
    if short:
        return wait_or_give_up(short, *counted)
    try:
        m_champ, m_chall, diff = compare_arms(
            y_champ,
            champ["probability"].to_numpy(),
            y_chall,
            chall["probability"].to_numpy(),
            cfg.metric,
            params.evaluate,
            paired=paired,
            sequential=cfg.method == "sequential",
            planned_rows=planned,
        )
    except EvaluationError as err:
        return wait_or_give_up([f"cannot measure {cfg.metric} yet: {err}"], *counted)
    seed = params.evaluate.seed
    s_champ = _fairness(champ, y_champ, params, seed)
    s_chall = _fairness(chall, y_chall, params, seed + (mode != "shadow"))
    champion = _arm(CHAMPION_ARM, champ, y_champ, m_champ, s_champ.result if s_champ else None)
    canary = _arm(arm_name, chall, y_chall, m_chall, s_chall.result if s_chall else None)
    changes = (
        compare_fairness(s_champ, s_chall, params, paired=paired, planned_rows=planned)
        if s_champ and s_chall
        else ()
    )
    worse = [c for c in changes if c.regressed]
    shown = f"{diff.point:+.4f} [{diff.lower:+.4f}, {diff.upper:+.4f}]"
    how = "paired on the same requests" if mode == "shadow" else "unpaired"
    kind = "confidence sequence" if cfg.method == "sequential" else "CI"
    numbers = (
        f"{cfg.metric} canary {m_chall.point:.4f} vs champion {m_champ.point:.4f}, "
        f"difference {shown} ({params.evaluate.confidence:.0%} {kind}, {how}, "
        f"{champion.rows if paired else champion.rows + canary.rows} rows)"
    )
    reasons = [
        f"{c.measure} for {c.attribute}: canary {c.canary:.4f} vs champion {c.champion:.4f}, "
        f"worse by {c.regression.point:.4f} [{c.regression.lower:.4f}, "
        f"{c.regression.upper:.4f}], beyond the {cfg.fairness_margin} allowed"
        for c in worse
    ]
    if metric_verdict(diff, cfg.margin) == "rollback":
        reasons.insert(
            0, f"canary is worse than the champion beyond the {cfg.margin} margin: {numbers}"
        )
    if reasons:
        return result("rollback", reasons, champion, canary, diff, changes)
    if metric_verdict(diff, cfg.margin) == "promote":
        return result(
            "promote",
            [
                f"canary is not worse than the champion by more than {cfg.margin}: {numbers}",
                _fairness_summary(changes, cfg.fairness_margin),
            ],
            champion,
            canary,
            diff,
            changes,
        )
    undecided = f"the CI reaches past -{cfg.margin}, so neither clearly fine nor worse: {numbers}"
    return wait_or_give_up([undecided], champion, canary, diff, changes)


def metric_verdict(diff: Interval, margin: float) -> CanaryVerdict:
    """The metric's part of the rule: roll back when the whole interval of (canary - champion)
    lies below ``-margin``, promote when it lies above, else wait."""
    if diff.upper < -margin:
        return "rollback"
    return "promote" if diff.lower > -margin else "wait"


def compare_arms(
    y_champion: np.ndarray,
    p_champion: np.ndarray,
    y_canary: np.ndarray,
    p_canary: np.ndarray,
    metric: str,
    cfg: EvaluateConfig,
    *,
    paired: bool,
    sequential: bool = False,
    planned_rows: float | None = None,
) -> tuple[Interval, Interval, Interval]:
    """Each arm's ``metric`` with its bootstrap CI, and the CI of (canary - champion).

    ``paired``: the arms are the same rows (same labels, in the same order) scored by two
    models; the difference is the evaluate stage's paired bootstrap. Otherwise the arms are
    resampled independently (seeds ``cfg.seed`` and ``cfg.seed + 1``) and the difference's CI
    is that of the differences of the resampled metrics. ``sequential``: confidence sequences
    instead, tightest at ``planned_rows`` (default: the rows seen)
    (:func:`~pipelines.release.canary.sequential.compare_arms_sequential`).
    """
    if paired and not np.array_equal(y_champion, y_canary):
        raise EvaluationError("paired arms must hold the same rows with the same labels")
    if sequential:
        rows = len(y_champion) if paired else len(y_champion) + len(y_canary)
        return compare_arms_sequential(
            *(y_champion, p_champion, y_canary, p_canary, metric, cfg),
            paired=paired,
            planned_rows=planned_rows or rows,
        )
    point_ch, draws_ch = metric_draws(y_champion, p_champion, metric, cfg, cfg.seed)
    point_ca, draws_ca = metric_draws(y_canary, p_canary, metric, cfg, cfg.seed + (not paired))
    champion = Interval(point_ch, *percentile_interval(draws_ch, cfg.confidence))
    canary = Interval(point_ca, *percentile_interval(draws_ca, cfg.confidence))
    if paired:
        diff = paired_bootstrap_difference(y_canary, p_canary, p_champion, metric, cfg)
    else:
        diff = Interval(
            point_ca - point_ch, *percentile_interval(draws_ca - draws_ch, cfg.confidence)
        )
    return champion, canary, diff


# --------------------------------------------------------------------------- helpers
def _arms(rows: pd.DataFrame, mode: Mode, version: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The champion's rows and the challenger's (in shadow mode: the same requests, paired)."""
    other = "shadow" if mode == "shadow" else "canary"
    champ = rows[rows["arm"] == CHAMPION_ARM].drop_duplicates(KEYS)
    chall = rows[rows["arm"] == other].drop_duplicates(KEYS)
    if version is not None:
        chall = chall[chall["model_version"].astype(str) == str(version)]
    if mode == "canary":
        return champ.reset_index(drop=True), chall.reset_index(drop=True)
    pairs = champ.merge(
        chall[[*KEYS, "probability", "model_version"]], on=KEYS, suffixes=("", "_shadow")
    )
    shadow = pairs.assign(
        probability=pairs["probability_shadow"], model_version=pairs["model_version_shadow"]
    )
    return pairs, shadow


def _fairness_summary(changes: tuple[FairnessChange, ...], margin: float) -> str:
    if not changes:
        return "no fairness measure could be compared (no group large enough in both arms)"
    top = max(changes, key=lambda c: c.regression.point)
    r = top.regression
    return (
        f"no fairness measure regressed by more than {margin} ({len(changes)} compared; the "
        f"largest change: {top.measure} for {top.attribute} {r.point:+.4f} "
        f"[{r.lower:+.4f}, {r.upper:+.4f}])"
    )


def _labels(frame: pd.DataFrame, params: Params) -> np.ndarray:
    is_positive = frame["label"].astype(str) == params.dataset.positive_label
    return cast(np.ndarray, is_positive.to_numpy(dtype=np.int64))


def _arm(
    name: str,
    frame: pd.DataFrame,
    y: np.ndarray,
    metric: Interval | None = None,
    fairness: FairnessResult | None = None,
) -> Arm:
    versions = tuple(sorted({str(v) for v in frame["model_version"]}))
    return Arm(name, versions, len(frame), int(y.sum()), metric, fairness)


def _fairness(frame: pd.DataFrame, y: np.ndarray, params: Params, seed: int) -> ArmSample | None:
    """The fairness stage's assessment of an arm, with what its bootstrap needs."""
    columns = [c for c in params.dataset.sensitive if c in frame.columns]
    if not columns:
        return None
    sensitive = frame[columns].reset_index(drop=True)
    y_pred = (frame["probability"].to_numpy() >= params.evaluate.decision_threshold).astype(int)
    result = assess_fairness(y, y_pred, sensitive, params.fairness)
    return ArmSample(sensitive, y, y_pred, result, seed)
