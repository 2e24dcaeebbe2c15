"""Deploy the champion: build its image, start it beside the running one, check it, switch.

With a container engine (podman, or docker with a daemon):

1. build ``localhost/<model>-serving:v<version>`` (model baked in; labels carry the model and
   data versions) unless that tag exists already;
2. start it beside the running container on a free loopback port;
3. check it: ``/ready`` within a timeout, ``/version`` names the version, and its answers on a
   fixed sample equal the offline predictions of that version (:mod:`pipelines.scoring`);
4. point nginx (the stable address) at it and reload: nginx drains the old workers;
5. stop the old container.

If any check fails the old container keeps serving, the new one is removed, the failure is
recorded (history file + registry version tags) and the ``champion`` alias goes back to the
version that is serving.

Without a container engine the embedded default is a local ``retrain serve`` process that follows
the alias itself (polls it, loads and smoke-checks the new version in the background, swaps in
place); deploy then only starts it if needed and verifies it the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.config import Params
from pipelines.files import write_json

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "docker"
DEFAULT_BASE = "python:3.11-slim"
OFFLINE_BASE = "localhost/debian-python:bookworm"
DEFAULT_ADDRESS = "127.0.0.1:8000"
CONTAINER_PORT = 8080
# the image's runtime: these and their dependencies, pinned to the versions of this virtualenv
RUNTIME_ROOTS = ("scikit-learn", "pandas", "skops", "pyyaml", "orjson", "uvicorn", "httptools",
                 "uvloop")  # fmt: skip


class DeployError(RuntimeError):
    """A deploy that cannot go ahead; the message says which step and why."""


@dataclass
class DeployResult:
    ok: bool
    version: str
    mode: str  # "podman" | "docker" | "local"
    address: str
    image: str = ""
    container: str = ""
    previous: str | None = None
    reason: str = ""
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


# --------------------------------------------------------------------------- engines
def detect_engine(prefer: str = "auto") -> str | None:
    """``podman`` or ``docker`` (with a reachable daemon), else None (local serving)."""
    if prefer == "local":
        return None
    if prefer in ("podman", "auto") and shutil.which("podman"):
        return "podman"
    if prefer in ("docker", "auto") and shutil.which("docker"):
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
        if ok:
            return "docker"
    if prefer not in ("auto",):
        raise DeployError(f"container engine {prefer!r} is not available")
    return None


def _run(
    cmd: list[str], timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise DeployError(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n" + "\n".join(tail))
    return proc


def image_exists(engine: str, ref: str) -> bool:
    return _run([engine, "image", "inspect", ref], check=False).returncode == 0


def image_tag(params: Params, version: str) -> str:
    return f"localhost/{params.mlflow.registered_model.lower()}-serving:v{version}"


def base_image(engine: str, wanted: str | None = None) -> str:
    """The base to build on: the one asked for, else python:3.11-slim if present or pullable,
    else a Debian base made offline with docker/build-base.sh."""
    wanted = wanted or os.environ.get("RETRAIN_BASE_IMAGE")
    if wanted:
        return wanted
    if image_exists(engine, DEFAULT_BASE):
        return DEFAULT_BASE
    if _run([engine, "pull", "-q", DEFAULT_BASE], timeout=300, check=False).returncode == 0:
        return DEFAULT_BASE
    if not image_exists(engine, OFFLINE_BASE):
        env = {**os.environ, "CONTAINER_ENGINE": engine}
        proc = subprocess.run(
            ["bash", str(DOCKER_DIR / "build-base.sh"), OFFLINE_BASE],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
        if proc.returncode != 0:
            raise DeployError(f"no base image: {DEFAULT_BASE} unreachable and build-base.sh "
                              f"failed: {proc.stderr.strip()[-500:]}")  # fmt: skip
    return OFFLINE_BASE


# --------------------------------------------------------------------------- image build
def runtime_requirements(roots: tuple[str, ...] = RUNTIME_ROOTS) -> list[str]:
    """``name==version`` for the roots and everything they need, as installed here."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in pins:
            continue
        pins[key] = dist.version
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return sorted(f"{k}=={v}" for k, v in pins.items())


def wheelhouse(pins: list[str]) -> Path:
    """Wheels for the pins, downloaded once into a cache on the host (the build is offline)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    d = cache / "retrain-serving" / "wheels"
    d.mkdir(parents=True, exist_ok=True)
    have = {_wheel_key(p.name) for p in d.glob("*.whl")}
    want = {(_norm(n.split("==")[0]), n.split("==")[1]) for n in pins}
    if not want <= have:
        _run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--only-binary=:all:", "--no-deps", "-d", str(d), *pins],
            timeout=900,
        )  # fmt: skip
    return d


def _norm(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _wheel_key(filename: str) -> tuple[str, str]:
    parts = filename.split("-")
    return _norm(parts[0]), parts[1]


def prepare_context(params: Params, version: str, ctx: Path) -> dict[str, str]:
    """Fill the build context for ``version``; return the image labels' values."""
    from pipelines.serve.app import smoke_records
    from pipelines.serve.model import (
        SMOKE_FILE,
        SPEC_FILE,
        ServingSpec,
        data_versions,
        download_model,
    )

    if ctx.exists():
        shutil.rmtree(ctx)
    ctx.mkdir(parents=True)
    from pipelines.edges import registry

    c = registry.client(params)
    name = params.mlflow.registered_model
    mv = c.get_model_version(name, version)
    dl = Path(download_model(params.tracking_uri, name, version, ctx / "download"))
    shutil.move(str(dl), ctx / "model")
    shutil.rmtree(ctx / "download", ignore_errors=True)
    spec = ServingSpec.from_params(params)
    dv = data_versions(dict(mv.tags))
    meta = {
        "spec": spec.to_dict(),
        "model_version": str(version),
        "run_id": mv.run_id,
        "data_version": dv,
    }
    (ctx / "model" / SPEC_FILE).write_text(json.dumps(meta, indent=2))
    smoke = smoke_records(params)
    if smoke:
        (ctx / "model" / SMOKE_FILE).write_text(json.dumps(smoke))
    app = ctx / "app" / "pipelines"
    (app / "serve").mkdir(parents=True)
    pkg = Path(__file__).resolve().parent
    shutil.copy2(pkg.parent / "__init__.py", app / "__init__.py")
    for f in ("__init__.py", "__main__.py", "app.py", "fastpath.py", "model.py"):
        shutil.copy2(pkg / f, app / "serve" / f)
    pins = runtime_requirements()
    (ctx / "requirements.txt").write_text("\n".join(pins) + "\n")
    wheels = ctx / "wheels"
    wheels.mkdir()
    for w in wheelhouse(pins).glob("*.whl"):
        try:
            os.link(w, wheels / w.name)
        except OSError:
            shutil.copy2(w, wheels / w.name)
    shutil.copy2(DOCKER_DIR / "Dockerfile", ctx / "Dockerfile")
    return {
        "MODEL_NAME": name,
        "MODEL_VERSION": str(version),
        "DATA_VERSION": dv.get("train", "unknown"),
        "RUN_ID": mv.run_id or "unknown",
    }


def build_image(
    params: Params, version: str, engine: str, base: str | None = None, force: bool = False
) -> tuple[str, float]:
    """Build (or reuse) the image of ``version``; return its tag and the build seconds."""
    from pipelines.edges import registry

    tag = image_tag(params, version)
    run_id = (
        registry.client(params).get_model_version(params.mlflow.registered_model, version).run_id
    )
    if not force and image_exists(engine, tag):
        if image_labels(engine, tag).get("retrain.run.id") == run_id:
            return tag, 0.0  # the same model version (same run) is in that image already
    t0 = time.perf_counter()
    ctx = params.paths.serving / "build" / f"v{version}"
    args = prepare_context(params, version, ctx)
    args["IMAGE_TAG"] = tag
    args["BASE_IMAGE"] = base_image(engine, base)
    cmd = [engine, "build", "-q", "-t", tag, "-f", str(ctx / "Dockerfile")]
    if engine == "podman":
        cmd += ["--layers"]
    for k, v in args.items():
        cmd += ["--build-arg", f"{k}={v}"]
    _run([*cmd, str(ctx)], timeout=1200)
    shutil.rmtree(ctx, ignore_errors=True)
    return tag, time.perf_counter() - t0


def image_labels(engine: str, ref: str) -> dict[str, str]:
    out = _run([engine, "image", "inspect", "--format", "{{json .Labels}}", ref]).stdout
    return json.loads(out) or {}


# --------------------------------------------------------------------------- HTTP checks
def http_json(url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_ready(base_url: str, timeout: float, version: str | None = None) -> tuple[bool, str]:
    """Until ``/ready`` is 200 (and serves ``version``, if given), or the timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = http_json(base_url + "/ready", timeout=2)
            if status == 200 and (version is None or body.get("model_version") == version):
                return True, f"ready: v{body.get('model_version')}"
            last = f"/ready {status}: {body}"
            if version is not None:
                _, info = http_json(base_url + "/version", timeout=2)
                if version in (info.get("rejected") or {}):
                    return False, f"v{version} rejected by the server: {info['rejected'][version]}"
        except (OSError, ValueError) as err:
            last = f"{type(err).__name__}: {err}"
        time.sleep(0.25)
    return False, f"not ready after {timeout:.0f}s ({last})"


def smoke_test(
    params: Params, base_url: str, version: str, sample: Any, tol: float = 1e-6
) -> tuple[bool, str]:
    """The server's answers on ``sample`` vs the offline predictions of that model version."""
    import numpy as np

    from pipelines.scoring import load_scorer
    from pipelines.serve.fastpath import frame_records
    from pipelines.serve.model import ServingSpec

    scorer = load_scorer(f"models:/{params.mlflow.registered_model}/{version}", params.dataset)
    want = scorer.predict_proba(sample)
    records = frame_records(sample, ServingSpec.from_params(params).fields)
    status, body = http_json(base_url + "/predict", {"records": records}, timeout=30)
    if status != 200:
        return False, f"/predict answered {status}: {body}"
    if str(body.get("model_version")) != str(version):
        return False, f"/predict served v{body.get('model_version')}, expected v{version}"
    got = np.asarray(body["probabilities"], dtype=np.float64)
    diff = float(np.max(np.abs(got - want))) if len(got) == len(want) else float("inf")
    ok = diff <= tol
    return ok, f"smoke: {len(got)} rows, max |served - offline| = {diff:.2e} (tolerance {tol:g})"


def smoke_sample(params: Params, n: int = 200) -> Any:
    import pandas as pd

    from pipelines.serve.app import smoke_records

    recs = smoke_records(params, n)
    if not recs:
        raise DeployError("no smoke sample: neither data/window/eval.parquet nor prepared data")
    return pd.DataFrame.from_records(recs)


# --------------------------------------------------------------------------- nginx
def nginx_prefix(params: Params) -> Path:
    return params.paths.serving / "nginx"


def _nginx_pid(prefix: Path) -> int | None:
    try:
        pid = int((prefix / "nginx.pid").read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def switch_nginx(params: Params, address: str, upstream: str, version: str) -> None:
    """Point the stable address at ``upstream``: start nginx, or reload it gracefully."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
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
    _run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(tmp)])
    tmp.replace(path)
    pid = _nginx_pid(prefix)
    if pid is None:
        _run([nginx, "-p", str(prefix), "-c", str(path)])
    else:
        old_workers = _children(pid)
        _run([nginx, "-p", str(prefix), "-c", str(path), "-s", "reload"])
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
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = str(prefix / "nginx.conf")
        subprocess.run([nginx, "-p", str(prefix), "-c", conf, "-s", "quit"], capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _nginx_pid(prefix) is not None:
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- deploy
def deploy(
    params: Params,
    version: str | None = None,
    engine: str | None = "auto",
    address: str | None = None,
    base: str | None = None,
    ready_timeout: float = 90.0,
    container_env: dict[str, str] | None = None,
    rollback_alias_on_failure: bool = True,
) -> DeployResult:
    """Deploy ``version`` (default: the champion); see the module docstring for the steps."""
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
    result = DeployResult(False, version, mode, address, previous=previous)
    try:
        if eng is None:
            _deploy_local(params, result, ready_timeout)
        else:
            _deploy_container(params, result, eng, base, ready_timeout, container_env or {}, state)
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
    env: dict[str, str],
    state: dict[str, Any],
) -> None:
    version = result.version
    tag, seconds = build_image(params, version, engine, base)
    result.image = tag
    result.checks.append(f"image {tag} " + (f"built in {seconds:.0f}s" if seconds else "reused"))
    labels = image_labels(engine, tag)
    if labels.get("retrain.model.version") != version:
        raise DeployError(f"image {tag} is labelled v{labels.get('retrain.model.version')}")
    port = _free_port()
    name = f"{params.mlflow.registered_model.lower()}-v{version}-{port}"
    cmd = [engine, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}"]
    for k, v in env.items():
        cmd += ["-e", f"{k}={v}"]
    _run([*cmd, tag], timeout=120)
    result.container = name
    base_url = f"http://127.0.0.1:{port}"
    try:
        ok, detail = wait_ready(base_url, ready_timeout, version)
        result.checks.append(detail)
        if not ok:
            raise DeployError(f"health check failed: {detail}")
        ok, detail = smoke_test(params, base_url, version, smoke_sample(params))
        result.checks.append(detail)
        if not ok:
            raise DeployError(f"smoke check failed: {detail}")
        switch_nginx(params, result.address, f"127.0.0.1:{port}", version)
        result.checks.append(f"nginx {result.address} -> {base_url}")
    except BaseException:
        _run([engine, "rm", "-f", name], check=False)
        raise
    old = (state.get("active") or {}).get("container")
    if old and old != name:
        _run([engine, "stop", "-t", "10", old], check=False, timeout=60)
        _run([engine, "rm", "-f", old], check=False)
        result.checks.append(f"stopped {old}")


def _deploy_local(params: Params, result: DeployResult, ready_timeout: float) -> None:
    """The local server follows the alias itself; start it if needed, then verify it."""
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
    log = open(d / "serve.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--host", host, "--port", port,
         "--params", str(params.root / "params.yaml")],
        cwd=params.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    (d / "serve.pid").write_text(str(proc.pid))
    return proc.pid


def rollback_deploy(
    params: Params, reason: str = "rollback", to: str | None = None, **kw: Any
) -> DeployResult:
    """Move the champion alias back (registry; ``to`` a version, default the ``previous``
    alias) and redeploy that version's image (kept from its first deploy, not rebuilt) with the
    engine and behind the address of the recorded deployment, unless given."""
    from pipelines.edges import registry

    state = read_state(params)
    if kw.get("engine") in (None, "auto") and state.get("mode"):
        kw["engine"] = state["mode"]
    ev = registry.rollback(params, to=to, reason=reason)
    return deploy(params, ev.version, rollback_alias_on_failure=False, **kw)
