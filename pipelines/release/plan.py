"""The release policy, decided once: what happens to a version the gate has judged.

:func:`plan` is the one place that reads ``deploy.rollout`` and ``deploy.approval``. It returns
a typed plan (:class:`~pipelines.records.Promote`, :class:`~pipelines.records.HoldForApproval`,
:class:`~pipelines.records.HoldForRollout` or :class:`~pipelines.records.Reject`) that the
``register`` stage records with the registration; the night, the DAG, the CLI, the canary
control and deploy read that plan, never the params behind it. A human's answer to a held
version goes through the same policy (:func:`answered`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipelines.config import DeployConfig
from pipelines.records import (
    HoldForApproval,
    HoldForRollout,
    Mode,
    Plan,
    Promote,
    Reject,
)


class Judgement(Protocol):
    """What the policy needs of the gate's decision."""

    @property
    def passed(self) -> bool: ...

    @property
    def reasons(self) -> Sequence[str]: ...


class Answer(Protocol):
    """What the policy needs of a human's answer (:class:`pipelines.release.approval.Answer`)."""

    @property
    def decision(self) -> str: ...  # approved | rejected | timed_out

    @property
    def by(self) -> str | None: ...

    @property
    def reason(self) -> str: ...


def plan(decision: Judgement, deploy: DeployConfig, approval: Answer | None = None) -> Plan:
    """The plan for a judged version. A failed gate rejects, and so does a gate without enough
    evidence (verdict ``insufficient``: the champion keeps serving; the reasons say how many
    fresh rows a decision would need); a passed one is promoted, or goes out beside the champion
    first (``deploy.rollout`` canary|shadow), after a human's approval
    when ``deploy.approval`` is ``required`` (``approval``: the answer, once there is one)."""
    if not decision.passed:
        return Reject(reasons=tuple(decision.reasons), by="gate")
    why = "; ".join(decision.reasons) or "gate passed"
    release: Promote | HoldForRollout = (
        Promote(reason=why)
        if deploy.rollout == "direct"
        else HoldForRollout(mode=deploy.rollout, reason=why)
    )
    if deploy.approval != "required":
        return release
    held = HoldForApproval(then=release, timeout_minutes=deploy.approval_timeout_minutes)
    return held if approval is None else answered(held, approval)


def answered(held: HoldForApproval, answer: Answer) -> Promote | HoldForRollout | Reject:
    """What a human's answer to a held version leads to: its ``then`` when approved, else a
    rejection by the human (a timeout rejects too)."""
    if answer.decision != "approved":
        return Reject(
            reasons=(f"{answer.decision} by {answer.by or 'nobody'}: {answer.reason}",), by="human"
        )
    why = f"approved by {answer.by}: {answer.reason}"
    return held.then.model_copy(update={"reason": why})


def final(step: Plan) -> Promote | HoldForRollout | Reject:
    """Where a plan leads if every hold is answered yes (what deploy prepares for)."""
    return step.then if isinstance(step, HoldForApproval) else step


def rollout_mode(step: Plan) -> Mode | None:
    """The rollout mode a plan leads to, or None when it does not go out beside the champion."""
    last = final(step)
    return last.mode if isinstance(last, HoldForRollout) else None


class _Passed:
    """A version put out by hand (``retrain canary start``): the gate's verdict is not asked."""

    passed = True
    reasons = ("started by hand",)


BY_HAND: Judgement = _Passed()
