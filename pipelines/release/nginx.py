"""The stable address: nginx in front of the serving containers, switched by a graceful reload.

nginx runs from a prefix in the serving folder, with its configuration made from
docker/nginx.conf.template: one upstream of the version's replicas, balanced ``least_conn``,
each taken out for ``fail_timeout`` after a failed connection (passive health checks; nginx
open source has no active ones). A switch writes the new configuration, tests it, then starts
nginx or reloads it; the old workers finish the requests they accepted, and the switch waits
for them so the old upstreams can be stopped safely.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
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


# A replica whose connection fails (refused, reset, timed out) is skipped for this long, after
# one failure: a killed replica stops getting requests at once, one request probes it again
# after this (and, refused, is passed to another replica).
FAIL_TIMEOUT_S = 5


def upstream_servers(upstreams: Sequence[str]) -> str:
    """The ``server`` lines of the upstream block, one per replica."""
    if not upstreams:
        raise DeployError("nginx: no upstream to send requests to")
    return "\n".join(
        f"        server {u} max_fails=1 fail_timeout={FAIL_TIMEOUT_S}s;" for u in upstreams
    )


def render_conf(prefix: Path, address: str, upstreams: Sequence[str], version: str) -> str:
    """docker/nginx.conf.template for nginx in ``prefix``, listening on ``address``, in front
    of ``upstreams``."""
    host, port = address.rsplit(":", 1)
    conf = (DOCKER_DIR / "nginx.conf.template").read_text()
    for k, v in {
        "${PREFIX}": str(prefix),
        "${LISTEN}": f"{host}:{port}",
        "${SERVERS}": upstream_servers(upstreams),
        "${REPLICAS}": str(len(upstreams)),
        "${VERSION}": version,
        "${MAX_BODY}": "2m",
    }.items():
        conf = conf.replace(k, v)
    return conf


def switch_nginx(
    params: Params,
    address: str,
    upstreams: Sequence[str],
    version: str,
    prefix: Path | None = None,
) -> None:
    """Point the stable address at ``upstreams`` (host:port of each replica): start nginx, or
    reload it gracefully. ``prefix``: nginx's folder (default the workspace's; the benchmark
    runs its own)."""
    nginx = _nginx()
    if not Path(nginx).exists():
        raise DeployError("nginx is not installed (run scripts/install-podman.sh)")
    prefix = prefix or nginx_prefix(params)
    for d in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
        os.chmod(prefix / d, 0o777)
    conf = render_conf(prefix, address, upstreams, version)
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


def stop_nginx(params: Params, prefix: Path | None = None) -> None:
    prefix = prefix or nginx_prefix(params)
    pid = _nginx_pid(prefix)
    if pid is not None:
        conf = str(prefix / "nginx.conf")
        subprocess.run([_nginx(), "-p", str(prefix), "-c", conf, "-s", "quit"], capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _nginx_pid(prefix) is not None:
            time.sleep(0.1)
