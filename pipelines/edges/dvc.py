"""The DVC workspace edge: run DVC commands, version accepted data, reproduce the pipeline.

Every DVC command runs in a process group of its own (:func:`pipelines.lock.run_in_group`):
the night ends it, stages included, before it lets the workspace lock go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import cast

from pipelines.config import PARAMS_ENV, Params
from pipelines.edges.registry import ACTOR_ENV
from pipelines.lock import run_in_group

APPROVAL_ENV = "RETRAIN_APPROVAL"  # a night's own deploy.approval (pipelines.settings)
# DVC's own command line, without its git hints: after each stage DVC tells the user to
# `git add dvc.lock` and how to turn on auto staging (seven lines in every stage task's log).
# The night decides what happens to dvc.lock; DVC 3.67 has no setting that drops the hint
# without staging files in git (`core.autostage`), so its logger (dvc.repo.scm_context) is
# set to warnings. Inline, not a module of ours: a workspace runs its own copy of pipelines/.
DVC_CLI = (
    "import logging, sys; logging.getLogger('dvc.repo.scm_context').setLevel(logging.WARNING); "
    "from dvc.cli import main; sys.exit(main(sys.argv[1:]))"
)


class DvcError(RuntimeError):
    """A DVC command failed; the message has the command and its output."""


def dvc_env(
    params: Params | None = None, actor: str | None = None, approval: str | None = None
) -> dict[str, str]:
    """The stages' environment: `python` is this interpreter, the params file is the one in
    use, the registry records ``actor`` (who triggered the night) as who acted, and
    ``approval`` (``RETRAIN_APPROVAL``) is the night's own ``deploy.approval`` when it has one."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("GIT_PYTHON_REFRESH", "quiet")
    if params is not None and params.file is not None:
        env[PARAMS_ENV] = str(params.file)
    if actor:
        env[ACTOR_ENV] = actor
    if approval:
        env[APPROVAL_ENV] = approval
    return env


def dvc(
    params: Params,
    *args: str,
    capture: bool = False,
    actor: str | None = None,
    approval: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a DVC command at the workspace root; raise DvcError when it fails."""
    cmd = [sys.executable, "-c", DVC_CLI, *args]
    env = dvc_env(params, actor, approval)
    proc = run_in_group(cmd, cwd=params.root, env=env, capture=capture)
    if proc.returncode != 0:
        out = (proc.stderr or "") + (proc.stdout or "") if capture else "(see output above)"
        raise DvcError(f"`dvc {' '.join(args)}` failed with exit code {proc.returncode}: {out}")
    return proc


def check_params_file(params: Params) -> None:
    """The params file is the workspace's own ``params.yaml``, the one DVC tracks: a run with
    any other file would have the stages read one file while DVC tracks another."""
    tracked = params.paths.tracked_params
    if params.file is not None and params.file != tracked:
        raise DvcError(
            f"{params.file} is not the workspace's params file: DVC tracks {tracked}, and the "
            f"stages would read the other. Make a workspace for it: retrain init DIR --params "
            f"{params.file}, then run retrain there (or run without --params)"
        )


def ensure(params: Params) -> None:
    """A usable workspace: DVC initialised (with git), and the accepted-data folder tracked.
    A folder without ``dvc.yaml`` is not made one (``retrain init`` makes workspaces)."""
    root = params.root
    if not params.paths.dvc_yaml.is_file():
        where = params.file or root
        raise DvcError(
            f"{root} is not a workspace (no dvc.yaml): make one with retrain init DIR "
            f"--params {where}, then run retrain there"
        )
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    if not (root / ".dvc").is_dir():
        dvc(params, "init", "-q")

    acc = params.paths.accepted
    acc.mkdir(parents=True, exist_ok=True)
    if not acc.with_suffix(".dvc").is_file():
        dvc(params, "add", "-q", str(acc.relative_to(root)))


def version_accepted(params: Params) -> str:
    """`dvc add` the accepted batches and push them; return the new data version (dir hash)."""

    ensure(params)
    acc = params.paths.accepted
    dvc(params, "add", "-q", str(acc.relative_to(params.root)))
    push(params)
    version = accepted_version(params)
    if version is None:
        raise DvcError(f"`dvc add {acc}` left no data version in {acc.with_suffix('.dvc')}")
    return version


def accepted_version(params: Params) -> str | None:
    import yaml

    meta = params.paths.accepted.with_suffix(".dvc")
    if not meta.is_file():
        return None
    outs = yaml.safe_load(meta.read_text()).get("outs") or [{}]
    return cast(str | None, outs[0].get("md5"))


def push(params: Params) -> None:
    """Push cached data to the default DVC remote (no-op without one)."""
    from pipelines.edges.lineage import dvc_remote

    if dvc_remote(params.root):
        dvc(params, "push", "-q")


def repro(
    params: Params, upto: str | None = None, force: bool = False, actor: str | None = None
) -> None:
    """`dvc repro` (optionally only up to a stage), then push what it produced."""
    ensure(params)
    args = ["repro"] + (["--force"] if force else []) + ([upto] if upto else [])
    dvc(params, *args, actor=actor)
    push(params)
