"""`retrain init DIR --params FILE`: a workspace for one dataset.

A workspace is a folder with its own git and DVC repository, the pipeline (``dvc.yaml`` and
the stage code it hashes), the dataset's suite, and the params file as ``params.yaml``: the
file DVC tracks is the file the stages read. A relative mirror in FILE is made absolute, and
the workspace's own state (data, reports, models, landing, the MLflow store) spelled outside
FILE's folder (``../data/<name>``) is rebased inside the workspace (``data/<name>``); the
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


# Where the workspace keeps its own state: relative to FILE's folder in FILE, relative to the
# workspace in its params.yaml. A location that climbs out of FILE's folder (``../data/x``, as
# a params file kept in a subfolder of a workspace spells it) is rebased into the workspace.
STATE = (
    ("paths", "data"),
    ("paths", "reports"),
    ("paths", "models"),
    ("paths", "expectations"),
    ("nightly", "landing"),
    ("nightly", "quarantine"),
    ("serve", "prediction_log"),
)
SQLITE = "sqlite:///"


def _inside(location: str) -> str:
    """``location`` without its leading ``../`` steps."""
    parts = Path(location).parts
    while parts and parts[0] == "..":
        parts = parts[1:]
    return str(Path(*parts)) if parts else "."


def params_for_workspace(source: Path, origin: Params) -> tuple[str, dict[str, Any]]:
    """FILE's text for the workspace: as written, or, when it points outside its folder by
    relative paths, the same keys with the mirror made absolute and the workspace's own state
    rebased inside the workspace."""
    text = source.read_text()
    raw = yaml.safe_load(text)
    changed = []
    mirror = raw["dataset"].get("mirror")
    if mirror is not None and not Path(mirror).is_absolute():
        raw["dataset"]["mirror"] = str(origin.path(mirror).resolve())
        changed.append("dataset.mirror")
    for section, key in STATE:
        value = (raw.get(section) or {}).get(key)
        if isinstance(value, str) and "://" not in value and value.startswith(".."):
            raw[section][key] = _inside(value)
            changed.append(f"{section}.{key}")
    uri = (raw.get("mlflow") or {}).get("tracking_uri", "")
    if uri.startswith(SQLITE + ".."):
        raw["mlflow"]["tracking_uri"] = SQLITE + _inside(uri[len(SQLITE) :])
        changed.append("mlflow.tracking_uri")
    if not changed:
        return text, raw
    head = f"# made by `retrain init` from {source}; rebased: {', '.join(changed)}\n"
    return head + yaml.safe_dump(raw, sort_keys=False), raw


def init_workspace(dest: Path, source: Path, force: bool = False) -> Params:
    """Make (or refresh) the workspace ``dest`` for the params file ``source``."""
    from pipelines.edges import dvc

    origin = load_params(source)  # a broken file is refused before anything is written
    dest = Path(dest).resolve()
    text, raw = params_for_workspace(Path(source), origin)
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
