"""Typed value objects that travel between the stages, the night, the edges and the DAG.

Each is a frozen dataclass with ``to_dict`` / ``from_dict`` for the JSON files the stages write
(DVC tracks those files; the objects are what code reads back). One :class:`Interval` serves
every point-and-interval value: a metric with its bootstrap CI, a paired difference between two
models, a live estimate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


def _num(x: float) -> float | None:
    """JSON has no NaN or infinity: such values are written as null."""
    return None if x is None or not math.isfinite(x) else float(x)


def _from_num(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval (NaN where undefined)."""

    point: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float | None]:
        return {"point": _num(self.point), "lower": _num(self.lower), "upper": _num(self.upper)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Interval:
        return cls(_from_num(d["point"]), _from_num(d["lower"]), _from_num(d["upper"]))


Verdict = Literal["pass", "fail"]
Mode = Literal["canary", "shadow"]  # a rollout beside the champion


# --------------------------------------------------------------------------- the release plan
class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Promote(_Step):
    """The version becomes the champion now."""

    kind: Literal["promote"] = "promote"
    reason: str


class HoldForRollout(_Step):
    """The version goes out beside the champion first (alias ``rollout`` until it is out, then
    ``canary``), and labelled live traffic decides it."""

    kind: Literal["hold_for_rollout"] = "hold_for_rollout"
    mode: Mode
    reason: str


class Reject(_Step):
    """The version is kept, tagged rejected; the champion is untouched."""

    kind: Literal["reject"] = "reject"
    reasons: tuple[str, ...]
    by: Literal["gate", "human"] = "gate"


class HoldForApproval(_Step):
    """A human answers first (alias ``pending``); ``then`` is what an approval leads to."""

    kind: Literal["hold_for_approval"] = "hold_for_approval"
    then: Annotated[Promote | HoldForRollout, Field(discriminator="kind")]
    timeout_minutes: float


Plan = Annotated[Promote | HoldForApproval | HoldForRollout | Reject, Field(discriminator="kind")]
PLAN: TypeAdapter[Plan] = TypeAdapter(Plan)


@dataclass(frozen=True)
class Registration:
    """What the ``register`` stage did with the gate's decision (``registration.json``)."""

    model: str
    version: str
    verdict: Verdict
    champion: str | None
    run_id: str
    event: dict[str, Any] = field(default_factory=dict)
    plan: Plan | None = None  # what the release policy decided (:mod:`pipelines.release.plan`)

    @property
    def promoted(self) -> bool:
        """The plan made the version the champion at registration."""
        return isinstance(self.plan, Promote) if self.plan else self.verdict == "pass"

    @property
    def held_for_approval(self) -> bool:
        return isinstance(self.plan, HoldForApproval)

    @property
    def previous_champion(self) -> str | None:
        value = self.event.get("previous_champion")
        return None if value is None else str(value)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["plan"] = None if self.plan is None else self.plan.model_dump(mode="json")
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Registration:
        champion = d.get("champion")
        plan = d.get("plan")
        return cls(
            model=str(d["model"]),
            version=str(d["version"]),
            verdict=d["verdict"],
            champion=None if champion is None else str(champion),
            run_id=str(d["run_id"]),
            event=dict(d.get("event") or {}),
            plan=None if plan is None else PLAN.validate_python(plan),
        )

    @classmethod
    def read(cls, path: Path) -> Registration:
        return cls.from_dict(json.loads(path.read_text()))


Outcome = Literal["no_batch", "batch_rejected", "no_retrain", "promoted", "not_promoted", "dry_run"]
STOPPED_EARLY: tuple[Outcome, ...] = ("no_batch", "batch_rejected", "no_retrain")


@dataclass
class NightRecord:
    """One night, from landing to serving (``reports/nights/<date>/summary.json``).

    Each step of the night fills its part and saves the record, so a rerun continues from it.
    The nested sections (``validation``, ``drift``, ``challenger``, ``champion``, ``fairness``,
    ``gate``) are the JSON summaries of the stage results they come from.
    """

    date: str
    started_at: str
    reports: str
    outcome: Outcome | None = None
    batch: str | None = None
    rows: int | None = None
    validation: dict[str, Any] | None = None
    quarantined_to: str | None = None
    data_version: str | None = None
    drift: dict[str, Any] | None = None
    retrained: bool = False
    retrain_reasons: list[str] = field(default_factory=list)
    challenger: dict[str, Any] | None = None
    champion: dict[str, Any] | None = None
    fairness: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    champion_before: str | None = None
    promoted: str | None = None
    serving: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    scenario: str | None = None  # set by the series (`make run`), not by a night

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def stopped_early(self) -> bool:
        return self.outcome in STOPPED_EARLY

    @property
    def failed_expectations(self) -> list[str]:
        return list((self.validation or {}).get("failed") or [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NightRecord:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"night record: unknown field(s) {unknown}")
        return cls(**dict(d))
