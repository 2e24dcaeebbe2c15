"""A night's last step: serving follows a new champion, unless the night was told to leave it.

:func:`deploy_decision` is the one policy, for the CLI night and the DAG's ``deploy`` task: what
to deploy after a night, from the night's new champion, the release plan it was registered
with and the form's ``skip_deploy`` (``retrain nightly --skip-deploy``). :func:`deploy_night` is
the CLI night's edge: it carries the decision out with :func:`pipelines.release.deploy.deploy`
and returns what it did for the night record (``deploy`` in ``summary.json``);
:func:`record_deploy` writes such a result into a night's record (the DAG's ``deploy`` task,
which runs before the ``summary`` task finishes the record).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipelines.config import Params
from pipelines.records import HoldForRollout, NightDeploy, NightRecord, Plan

SKIPPED = "skip_deploy: serving left as it is"
ROLLOUT = "a canary/shadow is out: serving follows the alias itself"
FOLLOWS = (
    "no deployment recorded: a running `retrain serve` follows the champion alias by itself "
    "(`retrain deploy` makes a deployment that nights keep in step)"
)


@dataclass(frozen=True)
class DeployDecision:
    """``version``: the one to deploy now, or None with ``reason`` (None: nothing to say, no
    new champion and no flag)."""

    version: str | None
    reason: str | None = None


def deploy_decision(
    promoted: str | None, plan: Plan | None, skip_deploy: bool, follows_alias: bool = False
) -> DeployDecision:
    """What serving does after a night. ``promoted``: the new champion (None: none tonight);
    ``plan``: the release plan the challenger was registered with; ``follows_alias``: serving
    is a `retrain serve` that swaps the champion in by itself (no deployment recorded; the
    stack's DAG always has one). ``skip_deploy`` wins over everything: the night deploys
    nothing, and says so even when there was nothing to deploy."""
    if skip_deploy:
        return DeployDecision(None, SKIPPED)
    if promoted is None:
        return DeployDecision(None)
    from pipelines.release.plan import final

    if plan is not None and isinstance(final(plan), HoldForRollout):
        return DeployDecision(None, ROLLOUT)
    if follows_alias:
        return DeployDecision(None, FOLLOWS)
    return DeployDecision(promoted)


def deploy_night(
    params: Params, rec: NightRecord, skip_deploy: bool, progress: Callable[[str], None]
) -> NightDeploy | None:
    """Carry out :func:`deploy_decision` for a finished CLI night; what it did (None: nothing
    to deploy and nothing to say). A failed deploy has put the champion alias back on the
    version that serves (:func:`pipelines.release.deploy.deploy`)."""
    from pipelines.release import deploy

    plan = rec.gate.plan if rec.gate else None
    state = deploy.read_state(params)
    decision = deploy_decision(rec.promoted, plan, skip_deploy, follows_alias=not state)
    if decision.version is None:
        if decision.reason is None:
            return None
        progress(f"[{rec.date}] deploy skipped: {decision.reason}")
        return NightDeploy(status="skipped", version=rec.promoted, reason=decision.reason)
    mode = state.get("mode")
    engine = mode if mode in ("local", "podman", "docker") else "auto"  # as it was deployed
    progress(f"[{rec.date}] deploying v{decision.version} ({engine})")
    try:
        res = deploy.deploy(params, decision.version, engine=engine)
    except deploy.DeployError as err:  # the engine it was deployed with is gone
        return NightDeploy(status="failed", version=decision.version, reason=str(err), mode=mode)
    for line in res.checks:
        progress(f"[{rec.date}]   {line}")
    return NightDeploy(
        status="deployed" if res.ok else "failed",
        version=res.version,
        reason=res.reason,
        mode=res.mode,
        address=res.address,
    )


def record_deploy(params: Params, day: str, done: NightDeploy) -> NightRecord:
    """``done`` as the night's ``deploy`` (finishing the record later keeps it)."""
    from pipelines.night.record import load_record, save_record

    rec = load_record(params, day)
    rec.deploy = done
    return save_record(params, rec)
