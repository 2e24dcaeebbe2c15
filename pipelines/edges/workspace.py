"""`retrain init DIR --params FILE`: a workspace for one dataset.

A workspace is a folder with its own git and DVC repository, the pipeline (``dvc.yaml`` and
the stage code it hashes), the dataset's suite, and the params file as ``params.yaml``: the
file DVC tracks is the file the stages read. Locations in FILE that are relative to FILE's
folder and outside the workspace's own state (the dataset mirror) are made absolute; the
suite, when there is one, is copied in (else ``retrain profile`` makes one in the workspace,
from its prepared data). Every `retrain` command run in the folder then works on that dataset.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from pipelines.config import Params, load_params, parse_params

# The project checkout the workspace is made from: the pipeline and the stage code it runs.
PROJECT = Path(__file__).resolve().parents[2]
COPIED = ("pipelines", "dvc.yaml", ".dvcignore", ".gitignore", "pyproject.toml")


class WorkspaceError(RuntimeError):
    """A workspace that cannot be made as asked; the message says what to do."""


def _params_text(source: Path, origin: Params) -> tuple[str, dict[str, Any]]:
    """FILE's text for the workspace: as written, or, when the mirror is relative to FILE's
    folder, the same keys with the mirror made absolute."""
    text = source.read_text()
    raw = yaml.safe_load(text)
    mirror = raw["dataset"].get("mirror")
    if mirror is None or Path(mirror).is_absolute():
        return text, raw
    raw["dataset"]["mirror"] = str(origin.path(mirror).resolve())
    head = f"# made by `retrain init` from {source} (dataset.mirror made absolute)\n"
    return head + yaml.safe_dump(raw, sort_keys=False), raw


def init_workspace(dest: Path, source: Path, force: bool = False) -> Params:
    """Make (or refresh) the workspace ``dest`` for the params file ``source``."""
    from pipelines.edges import dvc

    origin = load_params(source)  # a broken file is refused before anything is written
    dest = Path(dest).resolve()
    text, raw = _params_text(Path(source), origin)
    params = parse_params(raw, source=str(source), root=dest)  # where things go in ``dest``
    target = params.paths.tracked_params
    if target.is_file() and target.read_text() != text and not force:
        raise WorkspaceError(
            f"{target} exists and differs from {source}: pass --force to replace it"
        )
    if dest == PROJECT:
        raise WorkspaceError(f"{dest} is the project checkout itself: choose another folder")
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src, dst = PROJECT / name, dest / name
        if src.is_dir():
            shutil.copytree(
                src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        elif src.is_file():
            shutil.copy2(src, dst)
    if origin.paths.suite.is_file() and origin.paths.suite != params.paths.suite:
        params.paths.suite.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin.paths.suite, params.paths.suite)
    dvc_dir = dest / ".dvc"
    if not dvc_dir.is_dir():  # the project's DVC settings: its local remote, beside the data
        dvc_dir.mkdir()
        shutil.copy2(PROJECT / ".dvc" / "config", dvc_dir / "config")
        (dvc_dir / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
        (dest / ".dvcstore").mkdir(exist_ok=True)
    target.write_text(text)
    params = load_params(target)
    dvc.ensure(params)  # git + DVC repository, the accepted-data folder tracked
    return params
