"""The drift decision as value objects: per-column scores and verdicts, the share of drifted
features, the dataset verdict and the reasons; their JSON form and a short readable summary."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipelines.records import JsonRecord, OptFloat
from pipelines.stages.drift.columns import RULES, Kind


@dataclass(frozen=True)
class ColumnDrift(JsonRecord):
    """One column's drift: the method, its threshold, the score and the verdict.

    ``score`` is None when one side has no values at all (nothing to compare).
    ``missing_reference`` / ``missing_current`` are the shares of missing or infinite values,
    which the statistics ignore.
    """

    column: str
    kind: Kind
    method: str
    threshold: float
    score: OptFloat
    drifted: bool
    missing_reference: float = 0.0
    missing_current: float = 0.0

    @property
    def rule(self) -> str:
        return RULES[self.method]

    @property
    def severity(self) -> float:
        """How far past (>1) or short of (<1) its threshold the score is, for ranking columns."""
        if self.score is None:
            return math.inf if self.drifted else 0.0
        if self.rule == ">=":
            return self.score / self.threshold
        return self.threshold / max(self.score, 1e-300)

    def describe(self, label: str = "column") -> str:
        if self.score is None:
            side = "current" if self.missing_current == 1.0 else "reference"
            return f"{label} {self.column!r} has no values in the {side} data"
        stat = f"{self.method} p-value" if self.rule != ">=" else self.method
        if self.drifted:
            op = self.rule
        else:
            op = {">=": "<", "<=": ">", "<": ">="}[self.rule]
        return f"{label} {self.column!r} {stat} {self.score:.3g} {op} {self.threshold:g}"


@dataclass(frozen=True)
class DriftResult(JsonRecord):
    """The drift decision: per-column scores, the share of drifted features, and why."""

    drifted: bool
    share: float
    n_drifted: int
    n_columns: int
    dataset_share: float
    columns: tuple[ColumnDrift, ...]
    target: ColumnDrift
    reasons: tuple[str, ...]
    n_reference: int
    n_current: int
    engine: str

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.drifted)

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def metrics(self) -> dict[str, float]:
        """The share of drifted columns, for ``dvc metrics show`` (one table of every metrics
        file: one key keeps it in 100 columns); the rest is in ``drift.json``."""
        return {"drift_share": float(self.share)}


def ranked(columns: Iterable[ColumnDrift]) -> list[ColumnDrift]:
    """Most severe first; ties (to 9 digits, so both engines rank alike) in column order."""
    return sorted(columns, key=lambda c: -round(c.severity, 9))


def reasons(
    columns: Sequence[ColumnDrift],
    target: ColumnDrift,
    n_drifted: int,
    share: float,
    drifted: bool,
    dataset_share: float,
) -> list[str]:
    """The decision in short sentences: the share and verdict, each drifted column (most
    severe first), then the target."""
    where = "at or above" if drifted else "below"
    verdict = "dataset drift" if drifted else "no dataset drift"
    out = [
        f"{n_drifted} of {len(columns)} columns drifted ({share:.0%}), {where} the "
        f"{dataset_share:.0%} share: {verdict}"
    ]
    out += [c.describe() for c in ranked(c for c in columns if c.drifted)]
    suffix = (
        "" if target.score is None else (": label shift" if target.drifted else ": no label shift")
    )
    out.append(target.describe("target") + suffix)
    return out


def summary_lines(result: DriftResult, top: int = 5) -> list[str]:
    """A short readable summary: verdict and share, then the columns nearest to (or past) their
    thresholds, then the target. A result with no current rows says only why it was not judged."""
    if not result.n_current:
        return [f"drift: {reason}" for reason in result.reasons]
    lines = [
        f"drift: {'DATASET DRIFT' if result.drifted else 'no dataset drift'} - "
        f"{result.n_drifted} of {result.n_columns} feature columns drifted "
        f"({result.share:.0%}; dataset drift at {result.dataset_share:.0%}), "
        f"{result.n_reference:,} reference vs {result.n_current:,} current rows"
    ]
    title = "drifted columns" if result.n_drifted else "closest to their thresholds"
    lines.append(f"drift: {title}:")
    for c in ranked(result.columns)[:top]:
        if c.drifted or not result.n_drifted:
            flag = "DRIFT" if c.drifted else "ok   "
            lines.append(f"  {flag} {c.describe()}")
    flag = "DRIFT" if result.target.drifted else "ok   "
    lines.append(f"  {flag} {result.target.describe('target')}")
    return lines
