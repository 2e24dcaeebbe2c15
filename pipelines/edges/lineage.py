"""Where a model came from: git commit, DVC data versions, DVC remote.

The data version of a file is its DVC content hash (md5 of the bytes in DVC 3), so
``.dvc/cache/files/md5/<h[:2]>/<h[2:]>`` and the remote hold exactly that file.
"""

from __future__ import annotations

import configparser
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipelines.files import md5_of
from pipelines.records import JsonRecord


@dataclass(frozen=True)
class GitState(JsonRecord):
    commit: str
    dirty: bool


def git_state(root: Path) -> GitState:
    """The commit the workspace is on, and whether tracked files differ from it."""

    def run(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = run("rev-parse", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return GitState(commit="unknown", dirty=True)
    try:
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except subprocess.CalledProcessError:
        dirty = True
    return GitState(commit=commit, dirty=dirty)


def data_version(path: Path) -> str:
    """DVC 3 content hash of a file (md5) - the key of the file in the DVC cache and remote."""
    return md5_of(path)


def dvc_remote(root: Path) -> str | None:
    """URL of the default DVC remote, resolved like DVC does (local config wins)."""
    url: str | None = None
    default: str | None = None
    remotes: dict[str, str] = {}
    for name in ("config", "config.local"):
        cp = configparser.ConfigParser()
        p = root / ".dvc" / name
        if not p.is_file():
            continue
        cp.read(p)
        default = cp.get("core", "remote", fallback=default)
        for section in cp.sections():
            if section.startswith("'remote \"") or section.startswith('remote "'):
                rname = section.split('"')[1]
                u = cp.get(section, "url", fallback=None)
                if u:
                    if "://" not in u and not Path(u).is_absolute():
                        u = str((p.parent / u).resolve())
                    remotes[rname] = u
    if default:
        url = remotes.get(default)
    return url
