"""The fairness core: per-group rates and gaps, judged over groups large enough to judge."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, get_args

import numpy as np
import pandas as pd

from pipelines.config import FairnessConfig, FairnessMeasure
from pipelines.groups import INTERSECTION as INTERSECTION  # re-exported: named here before
from pipelines.groups import cross_groups, sensitive_groups
from pipelines.records import JsonRecord, OptFloat

MEASURES: tuple[str, ...] = get_args(FairnessMeasure)
_WORST_IS_MIN = frozenset({"disparate_impact_ratio"})  # the others: larger is worse
MISSING = "missing"


class FairnessError(ValueError):
    """Predictions or sensitive attributes that cannot be assessed."""


# --------------------------------------------------------------------------- value objects
@dataclass(frozen=True)
class GroupRates(JsonRecord):
    """One judged group (n >= min_group_size).

    TPR (FPR) is None when the group has no actual positives (negatives); it is reported but left
    out of the equalized-odds gap when the group has fewer than min_group_size of them.
    """

    group: str
    n: int
    positives: int
    selection_rate: float
    tpr: OptFloat
    fpr: OptFloat


@dataclass(frozen=True)
class SmallGroup(JsonRecord):
    """A group below ``min_group_size``: reported, not judged."""

    group: str
    n: int


@dataclass(frozen=True)
class AttributeFairness(JsonRecord):
    """Groups and gaps for one sensitive attribute, or for an intersection of several."""

    attribute: str
    columns: tuple[str, ...]
    groups: tuple[GroupRates, ...]
    too_small: tuple[SmallGroup, ...]
    demographic_parity_difference: OptFloat
    equalized_odds_difference: OptFloat
    disparate_impact_ratio: OptFloat

    @property
    def is_intersection(self) -> bool:
        return len(self.columns) > 1

    @property
    def measures(self) -> dict[str, float | None]:
        return {m: getattr(self, m) for m in MEASURES}


@dataclass(frozen=True)
class WorstMeasure(JsonRecord):
    """The worst value of one measure over the attributes, and where it occurred."""

    value: OptFloat
    attribute: str | None


@dataclass(frozen=True)
class FairnessResult(JsonRecord):
    """Per-attribute gaps, the worst of each measure, and notes on what could not be judged."""

    n: int
    min_group_size: int
    attributes: tuple[AttributeFairness, ...]
    worst: Mapping[str, WorstMeasure]
    notes: tuple[str, ...] = ()

    def attribute(self, name: str) -> AttributeFairness:
        for a in self.attributes:
            if a.attribute == name:
                return a
        raise KeyError(f"no attribute {name!r}; have {[a.attribute for a in self.attributes]}")

    def worst_of(self, intersection: bool = True) -> dict[str, WorstMeasure]:
        """Worst value of each measure, over single attributes only unless ``intersection``."""
        return _worst(tuple(a for a in self.attributes if intersection or not a.is_intersection))

    def headline_metrics(self) -> dict[str, float]:
        """The worst demographic parity and equalized odds differences over the attributes,
        as ``dp_diff`` and ``eo_diff``, for ``dvc metrics show`` (one table of every metrics
        file: short keys keep it in 100 columns); per attribute in ``fairness.json``."""
        short = {"demographic_parity_difference": "dp_diff", "equalized_odds_difference": "eo_diff"}
        return {
            key: float(w.value)
            for m, key in short.items()
            if (w := self.worst.get(m)) is not None and w.value is not None
        }

    def flat_metrics(self) -> dict[str, float]:
        """``{"<attribute>.<measure>": value, "worst.<measure>": value}`` (defined values only)."""
        out: dict[str, float] = {}
        for a in self.attributes:
            for m, v in a.measures.items():
                if v is not None:
                    out[f"{a.attribute}.{m}"] = v
        for m, w in self.worst.items():
            if w.value is not None:
                out[f"worst.{m}"] = w.value
        return out


# --------------------------------------------------------------------------- core
def _binary(values: Any, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise FairnessError(f"{name} must be 1-D (got shape {a.shape})")
    if not np.isin(a, (0, 1)).all():
        raise FairnessError(f"{name} must hold only 0 and 1")
    return a.astype(np.int64)


def group_labels(column: pd.Series) -> np.ndarray:
    """String group labels; missing values (None/NaN) become the group ``"missing"``."""
    values = column.to_numpy(dtype=object)
    return np.array([MISSING if pd.isna(v) else str(v) for v in values], dtype=object)


def _gap(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return max(defined) - min(defined) if len(defined) >= 2 else None


def _assess_attribute(
    name: str,
    columns: tuple[str, ...],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    cfg: FairnessConfig,
    notes: list[str],
) -> AttributeFairness:
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    with warnings.catch_warnings():  # empty confusion rows: handled below as undefined rates
        warnings.simplefilter("ignore")
        by_group = MetricFrame(
            metrics={
                "n": count,
                "positives": lambda yt, yp: int(np.sum(yt)),
                "selection_rate": partial(selection_rate, pos_label=1),
                "tpr": partial(true_positive_rate, pos_label=1),
                "fpr": partial(false_positive_rate, pos_label=1),
            },
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=pd.Series(groups, name=name),
        ).by_group
    judged: list[GroupRates] = []
    small: list[SmallGroup] = []
    for group, row in by_group.iterrows():
        n, positives = int(row["n"]), int(row["positives"])
        if n < cfg.min_group_size:
            small.append(SmallGroup(str(group), n))
            continue
        tpr = float(row["tpr"]) if positives > 0 else None
        fpr = float(row["fpr"]) if positives < n else None
        judged.append(GroupRates(str(group), n, positives, float(row["selection_rate"]), tpr, fpr))
    if small:
        listed = ", ".join(f"{g.group!r} (n={g.n})" for g in small)
        notes.append(f"{name}: too small to judge (n < {cfg.min_group_size}): {listed}")
    # A TPR rests on the group's positives and an FPR on its negatives: the size rule applies
    # to those counts too, or a group of 40 with 3 positives decides the equalized-odds gap.
    tprs = [g.tpr for g in judged if g.positives >= cfg.min_group_size]
    fprs = [g.fpr for g in judged if g.n - g.positives >= cfg.min_group_size]
    for rate, side, few in (
        ("TPR", "positives", [g for g in judged if g.positives < cfg.min_group_size]),
        ("FPR", "negatives", [g for g in judged if g.n - g.positives < cfg.min_group_size]),
    ):
        if few:
            listed = ", ".join(
                f"{g.group!r} ({g.positives if side == 'positives' else g.n - g.positives})"
                for g in few
            )
            notes.append(
                f"{name}: {rate} not judged for groups with < {cfg.min_group_size} actual "
                f"{side}: {listed}"
            )
    rates = [g.selection_rate for g in judged]
    dpd = _gap(list(rates))
    tpr_gap, fpr_gap = _gap(tprs), _gap(fprs)
    gaps = [g for g in (tpr_gap, fpr_gap) if g is not None]
    eod = max(gaps) if gaps else None
    di = min(rates) / max(rates) if len(rates) >= 2 and max(rates) > 0 else None
    if len(judged) < 2:
        notes.append(f"{name}: fewer than two groups with n >= {cfg.min_group_size}: not judged")
    return AttributeFairness(
        attribute=name,
        columns=columns,
        groups=tuple(judged),
        too_small=tuple(small),
        demographic_parity_difference=dpd,
        equalized_odds_difference=eod,
        disparate_impact_ratio=di,
    )


def _worst(attributes: tuple[AttributeFairness, ...]) -> dict[str, WorstMeasure]:
    out = {}
    for m in MEASURES:
        defined = [(a.measures[m], a.attribute) for a in attributes if a.measures[m] is not None]
        if not defined:
            out[m] = WorstMeasure(None, None)
            continue
        pick = min if m in _WORST_IS_MIN else max
        value, attribute = pick(defined, key=lambda t: t[0])  # type: ignore[arg-type,return-value]
        out[m] = WorstMeasure(value, attribute)
    return out


def assess_fairness(
    y_true: Any, y_pred: Any, sensitive: pd.DataFrame, cfg: FairnessConfig
) -> FairnessResult:
    """Per-group n, selection rate, TPR, FPR and the gaps between judged groups.

    For each column of ``sensitive`` (and, with ``cfg.intersection`` and two or more columns,
    all of them crossed, named e.g. ``"sex x race"``):
    demographic parity difference (max - min selection rate), equalized odds difference (the
    larger of the TPR and FPR gaps) and disparate impact ratio (min / max selection rate), all
    over groups with ``n >= cfg.min_group_size`` (TPR and FPR also need that many actual
    positives and negatives). ``worst`` holds the largest difference and smallest ratio over all
    attributes, the intersection included; :meth:`FairnessResult.worst_of` can leave it out.
    """
    yt, yp = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if len(yt) != len(yp) or len(yt) != len(sensitive):
        raise FairnessError(
            f"lengths differ: y_true {len(yt)}, y_pred {len(yp)}, sensitive {len(sensitive)}"
        )
    if len(yt) == 0:  # too little evidence, not an error: nothing is judged, and it says so
        return FairnessResult(0, cfg.min_group_size, (), _worst(()), ("no rows to assess",))
    names = [str(c) for c in sensitive.columns]
    if len(set(names)) != len(names):
        raise FairnessError(f"duplicate sensitive column names: {names}")
    notes: list[str] = []
    if not names:
        notes.append("no sensitive attributes given: nothing assessed")
    labels = {c: group_labels(sensitive_groups(sensitive[c], cfg)) for c in sensitive.columns}
    attrs = [
        _assess_attribute(str(c), (str(c),), yt, yp, labels[c], cfg, notes)
        for c in sensitive.columns
    ]
    if cfg.intersection and len(names) >= 2:
        crossed = cross_groups({str(c): labels[c] for c in sensitive.columns}, cfg)
        attrs.append(
            _assess_attribute(
                INTERSECTION.join(names), tuple(names), yt, yp, crossed.astype(object), cfg, notes
            )
        )
    attributes = tuple(attrs)
    return FairnessResult(
        n=len(yt),
        min_group_size=cfg.min_group_size,
        attributes=attributes,
        worst=_worst(attributes),
        notes=tuple(notes),
    )
