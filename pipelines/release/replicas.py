"""Blue/green of a replica set: N serving containers of one version behind nginx.

A switch to a version (a deploy, a redeploy on promotion, a rollback) moves every replica:

1. start N new containers of the version's image, each on its own free loopback port;
2. wait until every one is ready and serves that version, then smoke-check every one (its
   answers on the fixed sample equal the offline predictions, computed once);
3. point nginx at the N new upstreams (``least_conn``) and reload: the old workers finish the
   requests they accepted on the old replicas (the reload waits for them);
4. stop the old replicas (SIGTERM: uvicorn finishes what is in flight), however many there were.

If any new replica fails a check, all new ones are removed and the old set keeps serving.

nginx open source has no active health checks: a replica that dies is found by the requests
sent to it (passive checks, ``max_fails``/``fail_timeout`` in docker/nginx.conf.template). A
refused or timed-out connection is retried on another replica (the request never reached the
dead one); a request already sent to a replica that dies is answered 502 and not retried, since
the replica may have scored and logged it before dying (see the template's comment).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.release.checks import (
    reference_scorer,
    smoke_sample,
    smoke_test,
    wait_ready,
)
from pipelines.release.containers import DeployError, remove_container, start_container
from pipelines.release.nginx import switch_nginx

if TYPE_CHECKING:
    from pipelines.config import Params


@dataclass(frozen=True)
class Replica:
    """One serving container and the loopback port its app is published on."""

    name: str
    port: int

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.upstream}"


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held together while chosen, so none repeats)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def running_replicas(active: dict[str, Any] | None) -> list[str]:
    """The container names of a recorded deployment (``containers``; a deployment recorded
    before replicas has one ``container``)."""
    active = active or {}
    names = active.get("containers") or [active.get("container")]
    return [str(n) for n in names if n]


def switch_replicas(
    params: Params,
    engine: str,
    tag: str,
    version: str,
    address: str,
    replicas: int,
    ready_timeout: float,
    old: Sequence[str] = (),
    env: dict[str, str] | None = None,
    mounts: Sequence[Path | str] = (),
) -> tuple[list[Replica], list[str]]:
    """Start ``replicas`` containers of ``tag``, check them all, switch nginx at ``address``
    to them and stop the ``old`` containers; return the new replicas and the checks' lines.
    A failed check removes every new container and raises :class:`DeployError`."""
    if replicas < 1:
        raise DeployError(f"replicas must be at least 1, got {replicas}")
    prefix = f"{params.mlflow.registered_model.lower()}-v{version}"
    started: list[Replica] = []
    checks: list[str] = []
    try:
        for port in free_ports(replicas):
            replica = Replica(f"{prefix}-{port}", port)
            start_container(engine, tag, replica.name, port, env, mounts)
            started.append(replica)
        for r in started:  # they start together; waiting in turn costs the slowest one's time
            ok, detail = wait_ready(r.url, ready_timeout, version)
            checks.append(f"{r.name}: {detail}")
            if not ok:
                raise DeployError(f"health check failed on {r.name}: {detail}")
        sample = smoke_sample(params)
        want = reference_scorer(params, version).predict_proba(sample)
        for r in started:
            ok, detail = smoke_test(params, r.url, version, sample, want=want)
            checks.append(f"{r.name}: {detail}")
            if not ok:
                raise DeployError(f"smoke check failed on {r.name}: {detail}")
        switch_nginx(params, address, [r.upstream for r in started], version)
        checks.append(f"nginx {address} -> {len(started)} replica(s), least_conn")
    except BaseException:
        for r in started:
            remove_container(engine, r.name)
        raise
    new = {r.name for r in started}
    for name in old:
        if name not in new:
            remove_container(engine, name, stop_timeout=10)
            checks.append(f"stopped {name}")
    return started, checks
