"""Deploy the champion: build its image, start its replicas beside the running ones, check
them, switch.

With a container engine (podman, or docker with a daemon):

1. build ``localhost/<model>-serving:v<version>`` (model baked in; labels carry the model and
   data versions) unless that tag exists already;
2. start N containers of it (``deploy.replicas``, or ``replicas=``/``--replicas``) beside the
   running ones, each on a free loopback port;
3. check every one: ``/ready`` within a timeout, ``/version`` names the version, and its answers
   on a fixed sample equal the offline predictions of that version (:mod:`pipelines.scoring`);
4. point nginx (the stable address, ``least_conn`` over the N) at them and reload: nginx
   drains the old workers;
5. stop the old containers (:mod:`pipelines.release.replicas`).

Every load of the version (smoke test, image, rollback target) verifies its signature first.
If any check fails the old containers keep serving, the new ones are removed, the failure is
recorded (history file + registry version tags) and the ``champion`` alias goes back to the
version that is serving.

Without a container engine the embedded default is a local ``retrain serve`` process that follows
the alias itself (polls it, loads and smoke-checks the new version in the background, swaps in
place); deploy then only starts it if needed and verifies it the same way.

The steps' parts live beside this module: :mod:`pipelines.release.containers` (engine, image
build, containers), :mod:`pipelines.release.checks` (readiness and smoke checks),
:mod:`pipelines.release.replicas` (the replica set's switch) and :mod:`pipelines.release.nginx`
(nginx); their public names are re-exported here.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.config import Params
from pipelines.files import write_json
from pipelines.records import JsonRecord
from pipelines.release.checks import (
    http_json,
    reference_scorer,
    smoke_sample,
    smoke_test,
    wait_ready,
)
from pipelines.release.containers import (
    CONTAINER_PORT,
    RUNTIME_ROOTS,
    DeployError,
    base_image,
    build_image,
    copy_runtime,
    detect_engine,
    image_exists,
    image_labels,
    image_tag,
    prepare_context,
    runtime_requirements,
)
from pipelines.release.nginx import nginx_prefix, stop_nginx, switch_nginx
from pipelines.release.replicas import running_replicas, switch_replicas

__all__ = [
    "CONTAINER_PORT",
    "RUNTIME_ROOTS",
    "DeployError",
    "DeployResult",
    "base_image",
    "build_image",
    "copy_runtime",
    "deploy",
    "detect_engine",
    "http_json",
    "image_exists",
    "image_labels",
    "image_tag",
    "nginx_prefix",
    "prepare_context",
    "read_history",
    "read_state",
    "reference_scorer",
    "rollback_deploy",
    "runtime_requirements",
    "smoke_sample",
    "smoke_test",
    "start_local_server",
    "stop_nginx",
    "switch_nginx",
    "wait_ready",
]

DEFAULT_ADDRESS = "127.0.0.1:8000"


@dataclass
class DeployResult(JsonRecord):
    ok: bool
    version: str
    mode: str  # "podman" | "docker" | "local"
    address: str
    image: str = ""
    container: str = ""  # the first replica's (kept for readers of older records)
    containers: list[str] = field(default_factory=list)
    replicas: int = 1
    previous: str | None = None
    reason: str = ""
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


# --------------------------------------------------------------------------- places and state
def read_state(params: Params) -> dict[str, Any]:
    p = params.paths.deploy_state
    return json.loads(p.read_text()) if p.is_file() else {}


def _record(params: Params, result: DeployResult) -> None:
    p = params.paths.deploy_history
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a") as f:
        f.write(json.dumps(result.to_dict()) + "\n")
    try:
        from pipelines.edges import registry

        c = registry.client(params)
        name = params.mlflow.registered_model
        c.set_model_version_tag(
            name, result.version, "deploy.status", "ok" if result.ok else "failed"
        )
        c.set_model_version_tag(name, result.version, "deploy.at", result.at)
        if not result.ok:
            c.set_model_version_tag(name, result.version, "deploy.reason", result.reason[:4900])
    except Exception:  # noqa: BLE001 - the history file is the record of last resort
        pass


def read_history(params: Params) -> list[dict[str, Any]]:
    p = params.paths.deploy_history
    if not p.is_file():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


# --------------------------------------------------------------------------- deploy
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deploy(
    params: Params,
    version: str | None = None,
    engine: str | None = "auto",
    address: str | None = None,
    base: str | None = None,
    ready_timeout: float = 90.0,
    container_env: dict[str, str] | None = None,
    rollback_alias_on_failure: bool = True,
    container_mounts: Sequence[Path | str] = (),
    replicas: int | None = None,
) -> DeployResult:
    """Deploy ``version`` (default: the champion); see the module docstring for the steps.

    ``replicas``: serving containers behind nginx (default ``deploy.replicas``); the local
    server is one process whatever it says.

    ``container_env`` and ``container_mounts`` (host files, mounted read-only at the same path)
    are for tests that install a seams plugin in the new container
    (``container_env=faults.env(...), container_mounts=[faults.PATH]``); deploys pass neither.
    """
    from pipelines.edges import registry

    t0 = time.perf_counter()
    state = read_state(params)
    address = address or state.get("address") or DEFAULT_ADDRESS
    if version is None:
        version = registry.champion_version(params)
        if version is None:
            raise DeployError(f"{params.mlflow.registered_model}: no champion to deploy")
    version = str(version)
    eng = detect_engine(engine or "auto")
    mode = eng or "local"
    previous = (state.get("active") or {}).get("version")
    if state.get("mode") not in (None, mode):
        previous = None  # switching between local and container serving: nothing to fall back to
    n = params.deploy.replicas if replicas is None else replicas
    result = DeployResult(False, version, mode, address, previous=previous, replicas=n)
    try:
        if eng is None:
            _deploy_local(params, result, ready_timeout)
        else:
            _deploy_container(
                params, result, eng, base, ready_timeout, state,
                container_env or {}, container_mounts,
            )  # fmt: skip
        result.ok = True
    except DeployError as err:
        result.reason = str(err)
    except Exception as err:  # noqa: BLE001 - any failure is a failed deploy, recorded as such
        result.reason = f"{type(err).__name__}: {err}"
    result.seconds = round(time.perf_counter() - t0, 2)
    if result.ok:
        write_json(
            params.paths.deploy_state,
            {
                "mode": mode,
                "address": address,
                "active": {
                    "version": version,
                    "image": result.image,
                    "container": result.container,
                    "containers": result.containers,
                    "replicas": result.replicas,
                },
                "previous": state.get("active"),
            },
        )
    elif rollback_alias_on_failure and result.previous and result.previous != version:
        if registry.champion_version(params) == version:
            ev = registry.rollback(
                params,
                to=result.previous,
                reason=f"deploy of v{version} failed: {result.reason[:300]}",
            )
            result.checks.append(f"champion alias back to v{ev.version}")
    _record(params, result)
    return result


def _deploy_container(
    params: Params,
    result: DeployResult,
    engine: str,
    base: str | None,
    ready_timeout: float,
    state: dict[str, Any],
    env: dict[str, str],
    mounts: Sequence[Path | str],
) -> None:
    version = result.version
    tag, seconds = build_image(params, version, engine, base)
    result.image = tag
    result.checks.append(f"image {tag} " + (f"built in {seconds:.0f}s" if seconds else "reused"))
    labels = image_labels(engine, tag)
    if labels.get("retrain.model.version") != version:
        raise DeployError(f"image {tag} is labelled v{labels.get('retrain.model.version')}")
    started, checks = switch_replicas(
        params, engine, tag, version, result.address, result.replicas, ready_timeout,
        old=running_replicas(state.get("active")), env=env, mounts=mounts,
    )  # fmt: skip
    result.containers = [r.name for r in started]
    result.container = result.containers[0]
    result.checks += checks


def _deploy_local(params: Params, result: DeployResult, ready_timeout: float) -> None:
    """The local server follows the alias itself; start it if needed, then verify it."""
    if result.replicas != 1:
        result.checks.append(f"local: one retrain serve process ({result.replicas} replicas "
                             "need a container engine)")  # fmt: skip
        result.replicas = 1
    base_url = f"http://{result.address}"
    try:
        _, info = http_json(base_url + "/version", timeout=2)
        serving = info.get("model_version")
        if result.previous is None and serving and serving != result.version:
            result.previous = str(serving)  # what to fall back to if this deploy fails
    except OSError:
        start_local_server(params, result.address)
        result.checks.append(f"started retrain serve on {result.address}")
    ok, detail = wait_ready(base_url, ready_timeout, result.version)
    result.checks.append(detail)
    if not ok:
        raise DeployError(f"health check failed: {detail}")
    ok, detail = smoke_test(params, base_url, result.version, smoke_sample(params))
    result.checks.append(detail)
    if not ok:
        raise DeployError(f"smoke check failed: {detail}")


def start_local_server(params: Params, address: str) -> int:
    """Start ``retrain serve`` detached; its pid and log live in the serving folder."""
    host, port = address.rsplit(":", 1)
    d = params.paths.serving
    d.mkdir(parents=True, exist_ok=True)
    log = open(params.paths.serve_log, "ab")  # noqa: SIM115 - handed to the child
    pfile = ["--params", str(params.file)] if params.file else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--host", host, "--port", port, *pfile],
        cwd=params.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    params.paths.serve_pid.write_text(str(proc.pid))
    return proc.pid


def rollback_deploy(
    params: Params, reason: str = "rollback", to: str | None = None, **kw: Any
) -> DeployResult:
    """Move the champion alias back (registry; ``to`` a version, default the ``previous``
    alias) and redeploy that version's image (kept from its first deploy, not rebuilt) with the
    engine, behind the address and with the replica count of the recorded deployment, unless
    given."""
    from pipelines.edges import registry
    from pipelines.release.signing import verify_version

    state = read_state(params)
    if kw.get("engine") in (None, "auto") and state.get("mode"):
        kw["engine"] = state["mode"]
    if kw.get("replicas") is None and (state.get("active") or {}).get("replicas"):
        kw["replicas"] = int(state["active"]["replicas"])
    c, name = registry.client(params), params.mlflow.registered_model
    if target := to or registry.alias_version(c, name, registry.PREVIOUS):
        verify_version(params, target)  # refused before the alias moves: the serving one stays
    ev = registry.rollback(params, to=to, reason=reason)
    return deploy(params, ev.version, rollback_alias_on_failure=False, **kw)
