"""Attribution drift: does the champion lean on other features for live traffic than for the
data it was trained on?

The champion's exact per-feature contributions (:mod:`pipelines.serve.explain`) on a seeded
sample of the live window and on one of the reference, each summed up as the mean |contribution|
per feature; the nDCG of the live ranking against the reference's (relevance: the reference's
importances) and the features that moved most. Input drift says the inputs changed; this says
whether the change reaches what the model's answers rest on. Below
``monitor.attribution_ndcg_min`` it is flagged, in the report, ``verdict.json`` and the metrics;
never a retrain on its own (the drift and performance verdicts decide that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry, Gauge
from pydantic import computed_field

from pipelines.config import Params
from pipelines.records import JsonRecord
from pipelines.serve.explain import RankingComparison, compare_rankings, global_importance

SAMPLE_ROWS = 500  # rows explained per side: a seeded sample of the window and of the reference
NAMES = (
    "retrain_live_attribution_ndcg",
    "retrain_live_attribution_drifted",
    "retrain_live_feature_importance",
)


@dataclass(frozen=True, kw_only=True)
class AttributionDrift(RankingComparison, JsonRecord):
    """Reference and live importances (largest first) and how alike their rankings are
    (``rows``: live rows explained; ``ndcg`` None: not measured, see ``note``)."""

    reference: dict[str, float]
    live: dict[str, float]
    flagged = computed_field(RankingComparison.flagged)  # written with the rest

    def markdown(self) -> str:
        lines = ["", "## Attribution drift (champion's mean |contribution| per feature)", ""]
        if self.ndcg is None:
            return "\n".join([*lines, f"Not measured: {self.note}"]) + "\n"
        flag = " **changed ranking**" if self.flagged else ""
        lines += [
            f"nDCG {self.ndcg:.3f} of the live ranking against the reference's (bound "
            f"{self.bound:g}) on {self.rows} live rows.{flag}",
            "",
            "| feature | reference | live |",
            "|---|---|---|",
        ]
        rank = {f: r for r, f in enumerate(self.live, 1)}
        for r, (f, v) in enumerate(self.reference.items(), 1):
            live = self.live.get(f)
            now = "" if live is None else f"{live:.4f} (#{rank[f]})"
            lines.append(f"| {f} | {v:.4f} (#{r}) | {now} |")
        return "\n".join(lines) + "\n"


def attribution_drift(
    explainer: Any, reference_X: Any, live_X: Any, bound: float
) -> AttributionDrift:
    """Pure: both samples' importances under one explainer, the nDCG and the top moves."""
    if len(live_X) == 0:
        return _not_measured(bound, "no live rows in the window")
    ref = global_importance(explainer, reference_X)
    live = global_importance(explainer, live_X)
    cmp = compare_rankings(ref, live, bound, len(live_X))
    return AttributionDrift(**vars(cmp), reference=ref, live=live)


def _not_measured(bound: float, note: str) -> AttributionDrift:
    return AttributionDrift(**vars(compare_rankings({}, {}, bound, 0, note)), reference={}, live={})


def assess_attribution(
    params: Params, reference: pd.DataFrame, live: pd.DataFrame, champion: str | None
) -> AttributionDrift:
    """The edge: the champion loaded the way serving loads it, both sides sampled and
    explained. A failure is a note, never an error of the monitor pass."""
    bound = params.monitor.attribution_ndcg_min
    if champion is None:
        return _not_measured(bound, "no champion")
    try:
        from pipelines.serve.fastpath import frame_records
        from pipelines.serve.model import ServingSpec, load_registered

        spec = ServingSpec.from_params(params)
        key = params.paths.signing_public_key
        scorer = load_registered(params.tracking_uri, spec, champion, key).scorer
        explainer = scorer.explainer()
        if explainer is None:
            return _not_measured(bound, f"v{champion} is not explained")

        def matrix(frame: pd.DataFrame) -> Any:
            rows = frame.sample(n=min(SAMPLE_ROWS, len(frame)), random_state=0)
            return scorer.matrix(scorer.encode(frame_records(rows, spec.fields)))

        return attribution_drift(explainer, matrix(reference), matrix(live), bound)
    except Exception as err:  # noqa: BLE001 - a report section, never the pass's verdict
        note = f"not measured: {type(err).__name__}: {err}"
        return _not_measured(bound, note)


def add_gauges(reg: CollectorRegistry, drift: AttributionDrift) -> None:
    """The attribution drift's numbers, beside the monitor's own in its registry."""
    if drift.ndcg is None:
        return
    Gauge(NAMES[0], "nDCG of the live importance ranking vs the reference's", registry=reg).set(
        drift.ndcg
    )
    Gauge(NAMES[1], "1 if the live importance ranking changed beyond the bound", registry=reg).set(
        int(drift.flagged)
    )
    imp = Gauge(NAMES[2], "Mean |contribution| per feature", ("feature", "side"), registry=reg)
    for side, values in (("reference", drift.reference), ("live", drift.live)):
        for f, v in values.items():
            imp.labels(f, side).set(v)
