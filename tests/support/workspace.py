"""A throwaway copy of the project workspace: its own git repo, DVC cache and remote, MLflow
SQLite registry and data folders, on the real Adult data. Used by the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from pipelines.config import Params, load_params

ROOT = Path(__file__).resolve().parents[2]
COPY = ("pipelines", "expectations", "dvc.yaml", ".dvcignore", "pyproject.toml")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "tests",
    "GIT_AUTHOR_EMAIL": "tests@localhost",
    "GIT_COMMITTER_NAME": "tests",
    "GIT_COMMITTER_EMAIL": "tests@localhost",
}


def make_workspace(dest: Path, fast: bool = True, **overrides: dict) -> Params:
    """Copy the project into ``dest`` and return its params (smaller models when ``fast``)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", dest / ".dvc" / "config")
    (dest / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    mirror = Path(os.environ.get("RETRAIN_DATASET_MIRROR") or (ROOT / raw["dataset"]["mirror"]))
    raw["dataset"]["mirror"] = str(mirror.resolve())
    if fast:
        raw["train"]["hyperparameters"]["max_iter"] = 60
        raw["evaluate"]["bootstrap_samples"] = 200
        raw["drift"]["report_sample_rows"] = 2000
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, **GIT_ENV}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "workspace"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    (dest / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    return load_params(dest / "params.yaml")
