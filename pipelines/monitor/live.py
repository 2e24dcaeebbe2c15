"""The monitor's pure core: live inputs against the training data, live outcomes against the
champion's evaluated metric, and whether that calls for a retrain.

Drift uses the drift stage's column tests on the logged inputs (answers of the champion and a
canary; shadow answers repeat inputs and are left out). The target column of the live side is the
predicted label, so the target test reads as *prediction drift*; it is reported, not counted.
Performance uses the evaluate stage's bootstrap on the champion's labelled answers; the drop is
the champion's evaluated metric minus the **top** of the live interval, so a retrain is asked for
only when the model is worse than at its evaluation even in the most favourable reading.

Before outcomes arrive, the same metric is *estimated* on every answer of the champion in the
window from the calibrator kept with the version (:mod:`pipelines.monitor.estimate`), with its
own drop (a retrain on it only with ``monitor.estimated.retrain``). Where outcomes did arrive,
the estimate on those very rows is set against the realised metric: a realised value outside
the estimate's interval is reported as a likely concept change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.config import Params
from pipelines.records import JsonRecord

if TYPE_CHECKING:
    from pipelines.stages.evaluate.calibration import Calibrator

JUDGED_ARMS = ("champion", "canary")  # live traffic: not shadow answers, not probes


@dataclass(frozen=True)
class LiveVerdict(JsonRecord):
    """One monitor pass (``reports/monitor/verdict.json``)."""

    at: str
    window_hours: float
    rows: int
    labelled_rows: int
    champion_version: str | None
    versions: dict[str, int]
    metric: str
    drift: dict[str, Any] | None = None
    drift_share: float | None = None
    drifted_columns: list[str] = field(default_factory=list)
    live: dict[str, float] | None = None  # point, lower, upper
    baseline: float | None = None
    drop: float | None = None
    estimated: dict[str, float] | None = None  # point, lower, upper, rows (no outcomes needed)
    estimated_drop: float | None = None
    concept_change: dict[str, Any] | None = None  # estimate vs realised on the labelled rows
    retrain: bool = False
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.rows:,} answers, {self.labelled_rows:,} with outcomes"]
        if self.drift_share is not None:
            parts.append(f"drift share {self.drift_share:.2f}")
        if self.live is not None:
            lv = self.live
            parts.append(
                f"live {self.metric} {lv['point']:.3f} [{lv['lower']:.3f}, {lv['upper']:.3f}]"
            )
        if self.drop is not None:
            parts.append(f"drop {self.drop:+.3f}")
        if self.estimated is not None:
            es = self.estimated
            parts.append(
                f"estimated {self.metric} {es['point']:.3f} [{es['lower']:.3f}, {es['upper']:.3f}]"
            )
        if self.concept_change is not None and self.concept_change["outside"]:
            parts.append("likely concept change")
        return "; ".join(parts) + (" -> RETRAIN" if self.retrain else " -> ok")


def live_frame(predictions: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Logged inputs as a dataset frame: features as trained, the predicted label as target."""
    ds = params.dataset
    live = predictions[predictions["arm"].isin(JUDGED_ARMS)]
    out = live[list(ds.features.all)].copy()
    for c in ds.features.numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    neg = ds.negative_label or f"not {ds.positive_label}"
    thr = params.evaluate.decision_threshold
    out[ds.target] = np.where(live["probability"].to_numpy() >= thr, ds.positive_label, neg)
    return out.reset_index(drop=True)


def assess_live(
    reference: pd.DataFrame,
    predictions: pd.DataFrame,
    labelled: pd.DataFrame,
    params: Params,
    *,
    baseline: float | None,
    champion_version: str | None,
    at: str,
    calibrator: Calibrator | None = None,
) -> LiveVerdict:
    """Judge one window of live traffic. ``labelled`` is ``predictions`` joined with outcomes."""
    from pipelines.stages.drift.detect import detect_drift
    from pipelines.stages.evaluate.bootstrap import evaluate_scores

    mon = params.monitor
    reasons: list[str] = []
    retrain = False
    judged = predictions[predictions["arm"].isin(JUDGED_ARMS)]
    versions = {str(k): int(v) for k, v in judged["model_version"].value_counts().items()}
    verdict: dict[str, Any] = {}

    if len(judged) < mon.min_rows:
        reasons.append(f"drift not judged: {len(judged)} answers, fewer than {mon.min_rows}")
    else:
        result = detect_drift(
            reference, live_frame(predictions, params), params.dataset, params.drift
        )
        share = float(result.share)
        verdict["drift"] = result.to_dict()
        verdict["drift_share"] = share
        verdict["drifted_columns"] = list(result.drifted_columns)
        if share >= mon.max_drift_share:
            retrain = True
            cols = ", ".join(result.drifted_columns[:5])
            reasons.append(
                f"live drift: {result.n_drifted}/{result.n_columns} feature columns drifted "
                f"(share {share:.2f} >= {mon.max_drift_share}): {cols}"
            )
        else:
            reasons.append(f"live drift share {share:.2f} < {mon.max_drift_share}")

    mine = labelled[labelled["arm"] == "champion"]
    if champion_version is not None:
        mine = mine[mine["model_version"] == champion_version]
    if len(mine) < mon.min_labelled_rows:
        reasons.append(
            f"performance not judged: {len(mine)} labelled answers of the champion, "
            f"fewer than {mon.min_labelled_rows}"
        )
    else:
        y = (mine["label"].to_numpy() == params.dataset.positive_label).astype(int)
        ev = evaluate_scores(y, mine["probability"].to_numpy(dtype=float), params.evaluate)
        iv = ev.metric(mon.metric)
        live = {"point": float(iv.point), "lower": float(iv.lower), "upper": float(iv.upper)}
        if not all(math.isfinite(v) for v in live.values()):
            reasons.append(f"live {mon.metric} undefined (one class only among the outcomes)")
        else:
            verdict["live"] = live
        if "live" not in verdict:
            pass
        elif baseline is None:
            reasons.append(
                f"live {mon.metric} {live['point']:.3f}; no evaluated baseline to compare"
            )
        else:
            drop = baseline - live["upper"]
            verdict["baseline"], verdict["drop"] = baseline, drop
            if drop > mon.max_performance_drop:
                retrain = True
                reasons.append(
                    f"live {mon.metric} [{live['lower']:.3f}, {live['upper']:.3f}] is below the "
                    f"evaluated {baseline:.3f} by {drop:.3f} > {mon.max_performance_drop}"
                )
            else:
                reasons.append(
                    f"live {mon.metric} {live['point']:.3f} [{live['lower']:.3f}, "
                    f"{live['upper']:.3f}] vs evaluated {baseline:.3f}: drop {drop:+.3f} "
                    f"<= {mon.max_performance_drop}"
                )
    champ = judged[judged["arm"] == "champion"]
    if champion_version is not None:
        champ = champ[champ["model_version"] == champion_version]
    estimated = assess_estimate(champ, mine, params, baseline, calibrator, reasons)
    retrain = bool(estimated.pop("estimated_retrain")) or retrain
    verdict |= estimated
    return LiveVerdict(
        at=at,
        window_hours=mon.window_hours,
        rows=len(judged),
        labelled_rows=int(labelled["arm"].isin(JUDGED_ARMS).sum()),
        champion_version=champion_version,
        versions=versions,
        metric=mon.metric,
        retrain=retrain,
        reasons=reasons,
        **verdict,
    )


def assess_estimate(
    answers: pd.DataFrame,
    labelled: pd.DataFrame,
    params: Params,
    baseline: float | None,
    calibrator: Calibrator | None,
    reasons: list[str],
) -> dict[str, Any]:
    """The metric estimated on the champion's ``answers`` (no outcomes needed), its drop from
    the evaluated ``baseline`` and, on the ``labelled`` ones, estimate against realised.
    Appends its reasons; ``estimated_retrain`` says whether the estimate asks for a retrain."""
    from pipelines.monitor.estimate import compare, estimate_metric, realised_metric

    mon, ev = params.monitor, params.evaluate
    out: dict[str, Any] = {"estimated_retrain": False}
    if calibrator is None:
        reasons.append(f"{mon.metric} not estimated: the champion keeps no calibrator")
        return out
    if len(answers) < mon.min_rows:
        reasons.append(
            f"{mon.metric} not estimated: {len(answers)} answers of the champion, "
            f"fewer than {mon.min_rows}"
        )
        return out

    def estimate(rows: pd.DataFrame) -> Any:
        s = rows["probability"].to_numpy(dtype=float)
        return estimate_metric(
            mon.metric, s, calibrator.apply(s), ev.decision_threshold,
            replicates=calibrator.apply_replicates(s), confidence=ev.confidence,
            draws=mon.estimated.draws, seed=ev.seed,
        )  # fmt: skip

    est = estimate(answers)
    if not math.isfinite(est.point):
        reasons.append(f"{mon.metric} not estimated: undefined on these answers")
        return out
    out["estimated"] = est.interval() | {"rows": float(est.rows)}
    shown = f"estimated {mon.metric} {est.point:.3f} [{est.lower:.3f}, {est.upper:.3f}]"
    if baseline is not None:
        drop = baseline - est.upper
        out["estimated_drop"] = drop
        if drop > mon.estimated.max_drop:
            asks = mon.estimated.retrain
            out["estimated_retrain"] = asks
            reasons.append(
                f"{shown} on {est.rows:,} answers is below the evaluated {baseline:.3f} by "
                f"{drop:.3f} > {mon.estimated.max_drop}"
                + ("" if asks else " (reported only: monitor.estimated.retrain is off)")
            )
        else:
            reasons.append(f"{shown} vs evaluated {baseline:.3f}: drop {drop:+.3f}")
    else:
        reasons.append(f"{shown} on {est.rows:,} answers; no evaluated baseline to compare")
    if len(labelled) >= mon.min_labelled_rows:
        y = (labelled["label"].to_numpy() == params.dataset.positive_label).astype(int)
        s = labelled["probability"].to_numpy(dtype=float)
        realised = realised_metric(mon.metric, y, s, ev.decision_threshold)
        on_labelled = estimate(labelled)
        if math.isfinite(realised) and math.isfinite(on_labelled.point):
            agree = compare(on_labelled, realised)
            out["concept_change"] = agree.to_dict()
            e = on_labelled
            said = (
                f"{len(labelled):,} outcomes: realised {mon.metric} {realised:.3f}, "
                f"expected in [{e.realised_lower:.3f}, {e.realised_upper:.3f}]"
            )
            reasons.append(
                f"likely concept change: {said} (the outcome given the inputs moved)"
                if agree.outside
                else f"estimate holds: {said}"
            )
    return out


def landing_rows(labelled: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Labelled answers as a batch of the dataset (features + true target, in the order of
    ``dataset.columns``, as every accepted batch: the window's holdout hashes row content
    column by column), one row per answered record (a shadow answer repeats a champion one
    and is left out, as are probes such as the deploy's smoke check)."""
    ds = params.dataset
    rows = labelled[labelled["arm"].isin(JUDGED_ARMS)].drop_duplicates(["request_id", "row"])
    out = rows[list(ds.features.all)].copy()
    for c in ds.features.numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    out[ds.target] = rows["label"].to_numpy()
    return out[[c for c in ds.columns if c in out.columns]].reset_index(drop=True)
