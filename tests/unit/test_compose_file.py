"""docker-compose.yml, the server path: it is a valid compose file, every image it runs is built by
`make stack` from a Dockerfile here, its commands and flags exist in the pinned tools, every
setting it passes is one something reads, every variable it takes is documented in .env.example,
no secret has a default, and scripts/stack.sh starts every service."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
STACK = ROOT / "scripts" / "stack.sh"
EXAMPLE = ROOT / ".env.example"
BIN = Path(sys.executable).parent
SITE = Path(yaml.__file__).resolve().parents[1]  # this venv's site-packages
WORKERS = ("airflow-worker-1", "airflow-worker-2")
AIRFLOW_RUNTIME = ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", *WORKERS)
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "FERNET", "_KEY")
# Services with no Debian package to build their image from (Grafana): a pinned upstream
# image, started by scripts/stack.sh only when present or pullable.
UPSTREAM_ONLY = {"grafana"}


def _is_secret(key: str) -> bool:
    """A setting that holds a secret (not one that names a file or a user)."""
    return any(w in key for w in SECRET_WORDS) and not key.endswith(("_FILE", "_PATH", "_USERNAME"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _command(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return dict(env) if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


def _mounts(service: dict) -> dict[str, str]:
    """target -> source of a service's volumes."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))


def _example_keys() -> dict[str, str]:
    keys = {}
    for line in EXAMPLE.read_text().splitlines():
        m = re.match(r"([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if m:
            keys[m.group(1)] = m.group(2)
    return keys


def test_compose_validates() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose (Debian package) not installed")
    proc = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr


def test_images_are_built_here_and_mounts_exist(compose: dict) -> None:
    stack = STACK.read_text()
    upstream = re.search(r"^declare -A UPSTREAM_ONLY=\((.*?)\)$", stack, re.M | re.S)
    assert upstream, "scripts/stack.sh: no UPSTREAM_ONLY"
    for name, svc in compose["services"].items():
        image = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", svc["image"])  # the default
        if name in UPSTREAM_ONLY:  # pinned, fully qualified (podman needs no short-name lookup)
            assert re.fullmatch(r"docker\.io/[a-z0-9-]+/[a-z0-9-]+:v?\d+\.\d+\.\d+", image), name
            assert f"[{name}]=" in upstream.group(1) and image in upstream.group(1), name
        else:
            m = re.fullmatch(r"localhost/retrain-([a-z]+):latest", image)
            assert m, f"{name}: {image} is not an image `make stack` builds"
            dockerfile = f"docker/Dockerfile.{m.group(1)}"
            assert (ROOT / dockerfile).is_file(), f"{name}: no {dockerfile}"
            assert dockerfile in stack, f"{name}: scripts/stack.sh does not build {dockerfile}"
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name}: {src}"
            elif not src.startswith("$"):
                assert src in compose["volumes"], f"{name}: volume {src} is not declared"


def test_the_workspace_is_one_volume_at_one_path(compose: dict) -> None:
    """Two nights on two workers exclude each other through a file lock in the workspace
    (pipelines/lock.py): every component that runs or parses the DAG mounts the same
    volume at the same path, and the DAG folder is in it."""
    services = compose["services"]
    for name in (*AIRFLOW_RUNTIME, "serving", "workspace-init"):
        assert _mounts(services[name]).get("/workspace") == "workspace", name
    for name in AIRFLOW_RUNTIME:
        folder = _env(services[name])["AIRFLOW__CORE__DAGS_FOLDER"]
        assert Path(folder).is_relative_to("/workspace"), name
        assert (ROOT / Path(folder).relative_to("/workspace") / "retrain_nightly.py").is_file()
    assert "pipelines/lock.py" in {
        str(p.relative_to(ROOT)) for p in (ROOT / "pipelines").rglob("lock.py")
    }


def test_celery_executor_with_two_workers(compose: dict) -> None:
    services = compose["services"]
    for name in AIRFLOW_RUNTIME:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:${REDIS_PASSWORD}@redis:")
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    for name in WORKERS:
        assert _command(services[name])[:3] == ["airflow", "celery", "worker"], name
        assert services[name]["hostname"] == name  # the api-server fetches task logs from it


def test_every_setting_is_read_by_something(compose: dict) -> None:
    """RETRAIN_* by the project (code, DAG, image scripts), MLFLOW_* by the project or MLflow,
    AIRFLOW__SECTION__KEY an option of the pinned Airflow or its Celery provider."""
    code = "\n".join(
        p.read_text()
        for d in ("pipelines", "dags", "docker", "scripts")
        for p in (ROOT / d).rglob("*")
        if p.is_file() and p.suffix in (".py", ".sh", "")
    )
    mlflow_vars = (SITE / "mlflow" / "environment_variables.py").read_text()
    options = _airflow_options()
    for name, svc in compose["services"].items():
        for key in _env(svc):
            read = re.search(rf"[\"'${{]{key}\b", code) is not None
            if key.startswith("RETRAIN_"):
                assert read, f"{name}: {key} is set but read nowhere"
            elif key.startswith("MLFLOW_"):
                assert read or f'"{key}"' in mlflow_vars, f"{name}: {key} unknown to MLflow"
            elif key.startswith("AIRFLOW__"):
                section, option = key[len("AIRFLOW__") :].lower().split("__", 1)
                assert option in options.get(section, set()), f"{name}: {key} unknown to Airflow"


def _airflow_options() -> dict[str, set[str]]:
    airflow = SITE / "airflow"
    config = yaml.safe_load((airflow / "config_templates" / "config.yml").read_text())
    spec = importlib.util.spec_from_file_location(
        "celery_provider_info", airflow / "providers" / "celery" / "get_provider_info.py"
    )
    assert spec is not None and spec.loader is not None
    info = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(info)  # a plain dict: no Airflow import
    config.update(info.get_provider_info()["config"])
    return {section: set(body["options"]) for section, body in config.items()}


# Airflow's own parser in one interpreter prints the help of every subcommand asked for: one
# Airflow start (about 4 s) instead of one per service.
_AIRFLOW_HELPS = """
import argparse, json, sys
from airflow.cli.cli_parser import get_parser

def find(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and path[0] in action.choices:
            child = action.choices[path[0]]
            return child if len(path) == 1 else find(child, path[1:])
    return None

out = {}
for path in json.loads(sys.argv[1]):
    found = find(get_parser(), path)
    out[" ".join(path)] = found.format_help() if found is not None else None
print(json.dumps(out))
"""


def _helps(commands: set[tuple[str, ...]]) -> dict[tuple[str, ...], str | None]:
    """``--help`` of each (tool, subcommand...) in the pinned tools; None when it does not exist."""
    out: dict[tuple[str, ...], str | None] = {}
    airflow = sorted(c[1:] for c in commands if c[0] == "airflow")
    if airflow:
        proc = subprocess.run(
            [sys.executable, "-c", _AIRFLOW_HELPS, json.dumps(airflow)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-500:]
        for path, text in json.loads(proc.stdout.splitlines()[-1]).items():
            out[("airflow", *path.split())] = text
    for c in commands - set(out):
        proc = subprocess.run(
            [str(BIN / c[0]), *c[1:], "--help"], capture_output=True, text=True, timeout=120
        )
        out[c] = proc.stdout if proc.returncode == 0 else None
    return out


def test_commands_and_flags_exist_in_the_pinned_tools(compose: dict) -> None:
    wanted: dict[str, tuple[tuple[str, ...], list[str]]] = {}
    for name, svc in compose["services"].items():
        cmd = _command(svc)
        if not cmd or cmd[0] not in ("airflow", "mlflow", "retrain"):
            continue
        words = [w for w in cmd[1:] if not w.startswith("-")][:2]
        sub = [w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)]
        group = cmd[0] == "airflow" and sub[0] in ("db", "celery")
        wanted[name] = ((cmd[0], *(sub[:2] if group else sub[:1])), cmd)
    assert {c[0] for c, _ in wanted.values()} == {"airflow", "mlflow", "retrain"}
    helps = _helps({c for c, _ in wanted.values()})
    for name, (command, cmd) in wanted.items():
        text = helps[command]
        assert text is not None, f"{name}: {' '.join(command)} is not a command of {command[0]}"
        for flag in (w for w in cmd if w.startswith("--")):
            assert flag in text, f"{name}: {flag} unknown to {' '.join(command)}"


def test_mlflow_server_has_auth_and_no_job_runner(compose: dict) -> None:
    svc = compose["services"]["mlflow"]
    cmd = _command(svc)
    assert cmd[cmd.index("--app-name") + 1] == "basic-auth"
    assert "--allowed-hosts" in cmd
    env = _env(svc)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    ini = ROOT / "docker" / "mlflow-basic-auth.ini"
    assert env["MLFLOW_AUTH_CONFIG_PATH"].endswith(ini.name) and ini.is_file()


def test_env_example_documents_every_variable() -> None:
    """Each ${VAR} of docker-compose.yml is a key of .env.example, and each key there is used."""
    example = _example_keys()
    used = _variables(COMPOSE.read_text())
    assert used - set(example) == set(), "undocumented in .env.example"
    stack = STACK.read_text()
    unused = {k for k in example if k not in used and k not in stack}
    assert unused == set(), "keys of .env.example nothing reads"


def test_no_secret_has_a_default(compose: dict) -> None:
    """Secrets come from .env only (generated by `make stack`): no fallback value in compose,
    and .env.example leaves each of them empty."""
    text = COMPOSE.read_text()
    for var in _variables(text):
        if _is_secret(var):
            assert re.search(rf"\$\{{{var}:?-[^}}]", text) is None, f"{var} has a default"
    for key, value in _example_keys().items():
        if _is_secret(key):
            assert value == "", f".env.example: {key} must stay empty (make stack generates it)"
    for name, svc in compose["services"].items():
        for key, value in _env(svc).items():
            if _is_secret(key):
                assert str(value).startswith("${") or value in ("", None), f"{name}: {key}"
        for url in re.findall(r"[a-z+]+://[^\s]+", " ".join(map(str, _env(svc).values()))):
            m = re.match(r"[a-z+]+://[^:/@]*:([^@]*)@", url)
            assert m is None or m.group(1).startswith("${"), f"{name}: password in {url}"


def test_only_the_front_doors_are_published(compose: dict) -> None:
    """Airflow, MLflow, nginx, Prometheus and Grafana on 127.0.0.1; PostgreSQL, Redis, the
    Pushgateway and the StatsD exporter stay on the compose network (the host's own servers on
    5432/6379 are never in the way)."""
    published = {n: s["ports"] for n, s in compose["services"].items() if s.get("ports")}
    assert set(published) == {"airflow-apiserver", "mlflow", "nginx", "prometheus", "grafana"}
    for ports in published.values():
        assert all(str(p).startswith("127.0.0.1:") for p in ports)


def test_the_start_script_starts_every_service_without_health_conditions(compose: dict) -> None:
    """podman-compose ignores `condition: service_healthy`: scripts/stack.sh starts the services
    in order and waits for each; every service is in its list, and none has a condition."""
    m = re.search(r"^SERVICES=\(([^)]*)\)", STACK.read_text(), re.M)
    assert m, "scripts/stack.sh: no SERVICES list"
    assert set(m.group(1).split()) == set(compose["services"])
    for name, svc in compose["services"].items():
        deps = svc.get("depends_on", [])
        assert isinstance(deps, list), f"{name}: depends_on with conditions"


def test_serving_runs_replicas_behind_least_conn(compose: dict) -> None:
    """SERVING_REPLICAS serving containers (podman-compose and compose v2 read
    ``deploy.replicas`` of a replicated service), one name for all of them on the compose
    network, and nginx balancing them least_conn with passive health checks; a POST already
    sent to a replica is never retried on another (it may have been logged there)."""
    serving = compose["services"]["serving"]
    assert serving["deploy"]["mode"] == "replicated"
    m = re.fullmatch(r"\$\{SERVING_REPLICAS:-(\d+)\}", str(serving["deploy"]["replicas"]))
    assert m, serving["deploy"]
    assert _example_keys()["SERVING_REPLICAS"] == m.group(1)
    assert "container_name" not in serving  # it would name every replica the same
    assert "ports" not in serving  # replicas are reached through nginx only
    nginx = compose["services"]["nginx"]
    assert _env(nginx)["SERVING_UPSTREAM"] == "serving:8080"
    template = (ROOT / "docker" / "nginx-stack.conf.template").read_text()
    entrypoint = (ROOT / "docker" / "nginx-entrypoint.sh").read_text()
    directives = [line.split("#")[0].strip() for line in template.splitlines()]
    assert "least_conn;" in directives
    assert "proxy_next_upstream error timeout;" in directives
    assert "non_idempotent" not in " ".join(directives)
    assert "${SERVERS}" in template and "max_fails=1 fail_timeout=5s" in entrypoint
    assert all("proxy_pass http://serving;" == d for d in directives if "proxy_pass" in d)


def test_outcomes_have_their_own_token_at_the_stack_door(tmp_path: Path) -> None:
    """nginx renders /predict with the serving token and /feedback with the feedback token
    (the serving one when none is set): one client's token does not open the other door."""
    envsubst = shutil.which("envsubst")
    if envsubst is None:
        pytest.skip("envsubst (gettext-base) not installed")
    entry = (ROOT / "docker" / "nginx-entrypoint.sh").read_text()
    start, end = entry.index('token="${RETRAIN_SERVE_TOKEN'), entry.index("addresses() {")
    template = ROOT / "docker" / "nginx-stack.conf.template"
    script = (
        "set -eu\n" + entry[start:end] + "SERVERS='        server 127.0.0.1:9;'\n"
        "export SERVERS AUTH_CHECK FEEDBACK_CHECK\n"
        f"envsubst '${{SERVERS}} ${{AUTH_CHECK}} ${{FEEDBACK_CHECK}}' < {template}\n"
    )

    def render(**env: str) -> str:
        proc = subprocess.run(
            ["sh", "-c", script],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **env},
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    serve, outcomes = "s" * 20, "f" * 20
    conf = render(RETRAIN_SERVE_TOKEN=serve, RETRAIN_FEEDBACK_TOKEN=outcomes)
    predict = conf[conf.index("location = /predict") :].split("}", 2)[:2]
    feedback = conf[conf.index("location = /feedback") :].split("}", 2)[:2]
    assert f"Bearer {serve}" in "}".join(predict) and outcomes not in "}".join(predict)
    assert f"Bearer {outcomes}" in "}".join(feedback) and serve not in "}".join(feedback)
    assert "@feedback_unauthorized" in "}".join(feedback)
    shared = render(RETRAIN_SERVE_TOKEN=serve)
    assert shared.count(f"Bearer {serve}") == 2  # no feedback token: the serving one guards both
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if Path(nginx).is_file():
        (tmp_path / "nginx.conf").write_text(conf.replace("/tmp/nginx", str(tmp_path)))
        proc = subprocess.run(
            [
                nginx,
                "-t",
                "-q",
                "-e",
                "stderr",
                "-p",
                str(tmp_path),
                "-c",
                str(tmp_path / "nginx.conf"),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr  # the rendered file is valid nginx
