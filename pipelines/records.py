"""Typed value objects that travel between the stages, the night, the edges and the DAG, and
the one way every record is written to and read from JSON.

:class:`JsonRecord` gives a record (a frozen dataclass or a pydantic model) its ``to_dict`` and
``from_dict``, both done by pydantic (:func:`dump_record`, :func:`load_record`): no record
class writes its own. The JSON form keeps tuples as lists, enums as their values, dates in ISO
form, and NaN and infinities as null (JSON has none); a field whose null means NaN or infinity
says so in its type (:data:`NanFloat`, :data:`InfFloat`).

The records that cross a file boundary (the registration, the release plan, the night record
and its sections) are pydantic models: the library writes and reads their JSON, and a file
with an unknown or ill-typed field is refused with its name. :class:`Interval` serves every
point-and-interval value in computation (a metric with its bootstrap CI, a paired difference
between two models, a live estimate); :class:`Estimate` is its JSON form in the night record.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    field_validator,
)

R = TypeVar("R")


def _null_as(value: float) -> BeforeValidator:
    return BeforeValidator(lambda v: value if v is None else v)


NanFloat = Annotated[float, _null_as(math.nan)]  # null in JSON: NaN (undefined)
InfFloat = Annotated[float, _null_as(math.inf)]  # null in JSON: +infinity
# a time written to the second in ISO form with its offset ("2026-12-06T10:00:00+00:00")
IsoSeconds = Annotated[
    datetime, PlainSerializer(lambda t: t.isoformat(timespec="seconds"), when_used="json")
]
# a number or None, never NaN or infinity (read as None)
OptFloat = Annotated[
    float | None, AfterValidator(lambda v: None if v is None or not math.isfinite(v) else v)
]


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    """One adapter per record class, built on first use (building one costs milliseconds)."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def dump_record(record: object) -> dict[str, Any]:
    """The record's JSON form as a dict (NaN and infinities as null: the dict is valid JSON)."""
    out: dict[str, Any] = json.loads(_adapter(type(record)).dump_json(record))
    return out


def load_record(cls: type[R], data: Any) -> R:
    """``cls`` read from its JSON form. Bad data raises the class's ``json_error`` (a
    ValueError unless it names its own) naming each field that is wrong."""
    try:
        record: R = _adapter(cls).validate_python(data)
        return record
    except ValidationError as err:
        error: type[ValueError] = getattr(cls, "json_error", ValueError)
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__).lower()  # "night record"
        raise error(f"unreadable {name}: {_problems(err)}") from None


class JsonRecord:
    """A record whose JSON form pydantic writes and reads (see :func:`dump_record`). A class
    may name the error a bad file raises in a ``json_error: ClassVar`` (default ValueError)."""

    def to_dict(self) -> dict[str, Any]:
        return dump_record(self)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        return load_record(cls, data)


@dataclass(frozen=True)
class Interval(JsonRecord):
    """A point estimate and its interval (NaN where undefined)."""

    point: NanFloat
    lower: NanFloat
    upper: NanFloat


Verdict = Literal["pass", "fail"]
# the gate's decision: ``insufficient`` is "not enough evidence" (the release plan rejects it)
GateVerdict = Literal["pass", "fail", "insufficient"]
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


class Registration(JsonRecord, BaseModel):
    """What the ``register`` stage did with the gate's decision (``registration.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    version: str
    verdict: Verdict
    champion: str | None
    run_id: str
    event: dict[str, Any] = Field(default_factory=dict)
    plan: Plan | None = None  # what the release policy decided (:mod:`pipelines.release.plan`)

    @field_validator("version", "champion", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return None if v is None else str(v)

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

    @classmethod
    def read(cls, path: Path) -> Registration:
        return cls.model_validate_json(path.read_text())


Outcome = Literal["no_batch", "batch_rejected", "no_retrain", "promoted", "not_promoted", "dry_run"]
STOPPED_EARLY: tuple[Outcome, ...] = ("no_batch", "batch_rejected", "no_retrain")


# --------------------------------------------------------------------------- the night record
class _Section(JsonRecord, BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Estimate(_Section):
    """A point with its interval, as JSON keeps it (null where undefined)."""

    point: float | None = None
    lower: float | None = None
    upper: float | None = None


class BatchValidation(_Section):
    """The night's batch against the suite."""

    success: bool
    evaluated: int
    failed: list[str] = Field(default_factory=list)
    warned: list[str] = Field(default_factory=list)  # failed `warn` expectations: accepted
    report: str | None = None


class ColumnDrift(_Section):
    score: float | None = None
    drifted: bool = False


class BatchDrift(_Section):
    """The night's batch against what was trained on before it."""

    dataset_drift: bool
    share: float
    drifted_columns: list[str] = Field(default_factory=list)
    target_drift: bool = False
    target_score: float | None = None
    columns: dict[str, ColumnDrift] = Field(default_factory=dict)
    report: str | None = None


class ChallengerSummary(_Section):
    run_id: str | None = None
    version: str | None = None
    data_version: str | None = None
    metrics: dict[str, Estimate] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return None if v is None else str(v)


class ChampionSummary(_Section):
    version: str | None = None
    metrics: dict[str, Estimate] = Field(default_factory=dict)
    difference: dict[str, Estimate] = Field(default_factory=dict)  # challenger - champion

    @field_validator("version", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return None if v is None else str(v)


class FairnessSummary(_Section):
    challenger: dict[str, float] | None = None  # the worst value of each measure
    champion: dict[str, float] | None = None
    challenger_by_attribute: dict[str, dict[str, float]] | None = None
    champion_by_attribute: dict[str, dict[str, float]] | None = None


class ApprovalSummary(_Section):
    """A human's part, when the plan held the version for one."""

    version: str
    decision: str  # pending | approved | rejected | timed_out
    by: str | None = None
    at: str | None = None
    reason: str | None = None


class GateSummary(_Section):
    verdict: GateVerdict
    reasons: list[str] = Field(default_factory=list)
    plan: Plan | None = None
    approval: ApprovalSummary | None = None


class NightFlags(_Section):
    """What a night was asked (``retrain nightly --force-retrain --dry-run --batch``), recorded at
    its start: a rerun of a night that did not finish, given none, takes these."""

    force_retrain: bool = False
    dry_run: bool = False
    batch: str | None = None
    skip_deploy: bool = False

    def line(self) -> str:
        parts = ["--force-retrain"] * self.force_retrain + ["--dry-run"] * self.dry_run
        parts += ["--skip-deploy"] * self.skip_deploy
        return " ".join(parts + ([f"--batch {self.batch}"] if self.batch else [])) or "none"


class NightDeploy(_Section):
    """What the night did to serving after its release (:mod:`pipelines.night.deploy`)."""

    status: Literal["deployed", "skipped", "failed"]
    version: str | None = None  # the version deployed, or that was not
    reason: str = ""  # why skipped or failed
    mode: str | None = None  # local | podman | docker, when a deploy ran
    address: str | None = None

    def line(self) -> str:
        if self.status == "deployed":
            return f"deployed v{self.version} ({self.mode}) at {self.address}"
        if self.status == "failed":
            return f"deploy of v{self.version} FAILED: {self.reason}"
        return f"deploy skipped: {self.reason}"


class NightRecord(_Section):
    """One night, from landing to serving (``reports/nights/<date>/summary.json``).

    Each step of the night fills its part and saves the record, so a rerun continues from it.
    The sections (``validation``, ``drift``, ``challenger``, ``champion``, ``fairness``,
    ``gate``) are typed summaries of the stage results they come from; the file is written and
    read back by the model, and an unknown field is refused with its name.
    """

    date: str
    started_at: str
    reports: str
    flags: NightFlags | None = None
    outcome: Outcome | None = None
    batch: str | None = None
    rows: int | None = None
    validation: BatchValidation | None = None
    quarantined_to: str | None = None
    data_version: str | None = None
    retracted: list[str] = Field(default_factory=list)  # "<date>: <reason>", left out of training
    drift: BatchDrift | None = None
    retrained: bool = False
    retrain_reasons: list[str] = Field(default_factory=list)
    challenger: ChallengerSummary | None = None
    champion: ChampionSummary | None = None
    fairness: FairnessSummary | None = None
    gate: GateSummary | None = None
    champion_before: str | None = None
    promoted: str | None = None
    serving: str | None = None
    deploy: NightDeploy | None = None
    finished_at: str | None = None
    seconds: float | None = None
    scenario: str | None = None  # set by the series (`make run`), not by a night
    run: str | None = None  # the orchestrator's run that has the night (Airflow: the DAG run)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def stopped_early(self) -> bool:
        return self.outcome in STOPPED_EARLY

    @property
    def failed_expectations(self) -> list[str]:
        return list(self.validation.failed) if self.validation else []


def _problems(err: ValidationError) -> str:
    """A validation error in one line that names each field."""
    unknown = [".".join(map(str, e["loc"])) for e in err.errors() if e["type"] == "extra_forbidden"]
    other = [
        (f"field '{'.'.join(map(str, e['loc']))}': " if e["loc"] else "")
        + e["msg"].removeprefix("Value error, ")
        for e in err.errors()
        if e["type"] != "extra_forbidden"
    ]
    return "; ".join(([f"unknown field(s) {unknown}"] if unknown else []) + other)
