"""The container engine: find it, build a version's serving image, run and remove containers.

The image (docker/Dockerfile) is built from a context made here: the serving runtime's code
(``pipelines/__init__.py``, ``pipelines/seams.py`` and ``pipelines/serve/`` without the
deploy-side modules), pinned wheels of its runtime packages (downloaded once into a host cache:
the build itself needs no network) and the registered model folder, verified, with its
signature, the public key, its serving spec and smoke sample. Used by
:mod:`pipelines.release.deploy`; never imported by the serving image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.config import Params

PIPELINES = Path(__file__).resolve().parents[1]  # pipelines/
SERVE = PIPELINES / "serve"  # the serving runtime: the whole package goes into the image
ROOT = PIPELINES.parent
DOCKER_DIR = ROOT / "docker"
DEFAULT_BASE = "python:3.11-slim"
OFFLINE_BASE = "localhost/debian-python:bookworm"
CONTAINER_PORT = 8080
# the image's runtime: these and their dependencies, pinned to the versions of this virtualenv
RUNTIME_ROOTS = ("scikit-learn", "pandas", "skops", "cryptography", "pyyaml", "orjson",
                 "uvicorn", "httptools", "uvloop", "prometheus-client", "numba")  # fmt: skip
# pipelines/ files the serving runtime imports besides pipelines/serve/: the prediction log's
# writer, its writer process, its storage and the lookup of other replicas' answers (its
# readers are the monitor's, not serving's); tests/unit/test_image_files.py checks the closure
RUNTIME_FILES = (
    "__init__.py",
    "files.py",
    "seams.py",
    "settings.py",
    "predlog/__init__.py",
    "predlog/sinks.py",
    "predlog/writer.py",
    "predlog/process.py",
    "predlog/answers.py",
)


class DeployError(RuntimeError):
    """A deploy that cannot go ahead; the message says which step and why."""


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


def run(
    cmd: list[str], timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run an engine (or nginx) command; with ``check``, a failure is a DeployError."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise DeployError(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n" + "\n".join(tail))
    return proc


def image_exists(engine: str, ref: str) -> bool:
    return run([engine, "image", "inspect", ref], check=False).returncode == 0


def image_tag(params: Params, version: str) -> str:
    return f"localhost/{params.mlflow.registered_model.lower()}-serving:v{version}"


def image_labels(engine: str, ref: str) -> dict[str, str]:
    out = run([engine, "image", "inspect", "--format", "{{json .Labels}}", ref]).stdout
    return json.loads(out) or {}


def base_image(engine: str, wanted: str | None = None) -> str:
    """The base to build on: the one asked for, else python:3.11-slim if present or pullable,
    else a Debian base made offline with docker/build-base.sh."""
    from pipelines.settings import settings

    wanted = wanted or settings().base_image
    if wanted:
        return wanted
    if image_exists(engine, DEFAULT_BASE):
        return DEFAULT_BASE
    if run([engine, "pull", "-q", DEFAULT_BASE], timeout=300, check=False).returncode == 0:
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


# --------------------------------------------------------------------------- build context
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
        run(
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


def copy_runtime(dst: Path) -> list[Path]:
    """The serving runtime's code as the package ``dst/pipelines``; the files copied.

    All of pipelines/serve/ (the runtime and nothing else: deploy lives in pipelines/release/),
    so a module split out of the app later is carried without being listed; plus the few
    pipelines/ files it imports.
    """
    pkg = dst / "pipelines"
    (pkg / "serve").mkdir(parents=True, exist_ok=True)
    copied = []
    for f in RUNTIME_FILES:
        (pkg / f).parent.mkdir(parents=True, exist_ok=True)
        copied.append(Path(shutil.copy2(PIPELINES / f, pkg / f)))
    for module in sorted(SERVE.glob("*.py")):
        copied.append(Path(shutil.copy2(module, pkg / "serve" / module.name)))
    return copied


def prepare_context(params: Params, version: str, ctx: Path) -> dict[str, str]:
    """Fill the build context for ``version``; return the image labels' values."""
    from pipelines.edges import registry
    from pipelines.serve import trust
    from pipelines.serve.app import smoke_records
    from pipelines.serve.model import SMOKE_FILE, SPEC_FILE, ServingSpec, data_versions

    if ctx.exists():
        shutil.rmtree(ctx)
    ctx.mkdir(parents=True)
    c = registry.client(params)
    name = params.mlflow.registered_model
    key = params.paths.signing_public_key
    # verified before it is baked (an unsigned version gets no image); the image verifies again
    dl, mv, _ = trust.verify_registered(
        c, params.tracking_uri, name, version, key, ctx / "download"
    )
    shutil.move(str(dl), ctx / "model")
    manifest_text, signature = trust.signature_of(dict(mv.tags))
    assert manifest_text and signature  # verify_registered refuses a version without them
    trust.bake_signature(ctx / "model", manifest_text, signature, key.read_bytes())
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
    copy_runtime(ctx / "app")
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
    ctx = params.paths.image_context(version)
    args = prepare_context(params, version, ctx)
    args["IMAGE_TAG"] = tag
    args["BASE_IMAGE"] = base_image(engine, base)
    cmd = [engine, "build", "-q", "-t", tag, "-f", str(ctx / "Dockerfile")]
    if engine == "podman":
        cmd += ["--layers"]
    for k, v in args.items():
        cmd += ["--build-arg", f"{k}={v}"]
    run([*cmd, str(ctx)], timeout=1200)
    shutil.rmtree(ctx, ignore_errors=True)
    return tag, time.perf_counter() - t0


# --------------------------------------------------------------------------- containers
def start_container(
    engine: str,
    tag: str,
    name: str,
    port: int,
    env: Mapping[str, str] | None = None,
    mounts: Sequence[Path | str] = (),
) -> None:
    """Run ``tag`` detached as ``name``, its port published on 127.0.0.1:``port``.

    ``env`` and ``mounts`` are what a test passes to install a seams plugin in the container
    (:mod:`pipelines.seams`): extra environment variables, and host files bind-mounted read-only
    at the same path inside. Deploys outside tests pass neither.
    """
    cmd = [engine, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}"]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    for m in mounts:
        host = Path(m).resolve()
        if not host.is_file():
            raise DeployError(f"cannot mount {host} into the container: not a file")
        cmd += ["-v", f"{host}:{host}:ro"]
    run([*cmd, tag], timeout=120)


def remove_container(engine: str, name: str, stop_timeout: int | None = None) -> None:
    """Stop (gracefully, within ``stop_timeout`` seconds, if given) and remove ``name``."""
    if stop_timeout is not None:
        run([engine, "stop", "-t", str(stop_timeout), name], check=False, timeout=60)
    run([engine, "rm", "-f", name], check=False)
