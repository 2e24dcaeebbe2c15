"""The stable address: nginx in front of the serving containers, switched by a graceful reload.

nginx runs from a prefix in the serving folder, with its configuration made from
docker/nginx.conf.template. A switch writes the new configuration, tests it, then starts nginx
or reloads it; the old workers finish the requests they accepted, and the switch waits for them
so the old upstream can be stopped safely.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.release.containers import DOCKER_DIR, DeployError, run

if TYPE_CHECKING:
    from pipelines.config import Params


def nginx_prefix(params: Params) -> Path:
    return params.paths.nginx


def _nginx() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def _nginx_pid(prefix: Path) -> int | None:
    try:
        pid = int((prefix / "nginx.pid").read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def switch_nginx(params: Params, address: str, upstream: str, version: str) -> None:
    """Point the stable address at ``upstream``: start nginx, or reload it gracefully."""
    nginx = _nginx()
    if not Path(nginx).exists():
        raise DeployError("nginx is not installed (run scripts/install-podman.sh)")
    prefix = nginx_prefix(params)
    for d in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
        os.chmod(prefix / d, 0o777)
    host, port = address.rsplit(":", 1)
    conf = (DOCKER_DIR / "nginx.conf.template").read_text()
    for k, v in {
        "${PREFIX}": str(prefix),
        "${LISTEN}": f"{host}:{port}",
        "${UPSTREAM}": upstream,
        "${VERSION}": version,
        "${MAX_BODY}": "2m",
    }.items():
        conf = conf.replace(k, v)
    path = prefix / "nginx.conf"
    tmp = prefix / "nginx.conf.new"
    tmp.write_text(conf)
    run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(tmp)])
    tmp.replace(path)
    pid = _nginx_pid(prefix)
    if pid is None:
        run([nginx, "-p", str(prefix), "-c", str(path)])
    else:
        old_workers = _children(pid)
        run([nginx, "-p", str(prefix), "-c", str(path), "-s", "reload"])
        # the old workers finish their requests and exit; wait, so the old upstream can go
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and set(_children(pid)) & set(old_workers):
            time.sleep(0.1)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def stop_nginx(params: Params) -> None:
    prefix = nginx_prefix(params)
    pid = _nginx_pid(prefix)
    if pid is not None:
        conf = str(prefix / "nginx.conf")
        subprocess.run([_nginx(), "-p", str(prefix), "-c", conf, "-s", "quit"], capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _nginx_pid(prefix) is not None:
            time.sleep(0.1)
