"""What the benchmark tables share: measured subprocesses, throwaway workspaces, tables.

Every stage runs in a fresh Python process, started the way ``dvc repro`` starts it (the
``cmd`` of its ``dvc.yaml`` stage, run at the workspace root). A lean launcher waits for it
with ``os.wait4``, which returns that one child's resource usage: CPU time (user + system) and
peak resident memory (``ru_maxrss``) of the stage process; wall time is measured around it.
Inside the child, the stage's core functions (``validate_frame``, ``detect_drift``, ``fit``...)
are wrapped with a timer before its ``main()`` runs, so the table can show the core time beside
the whole process (interpreter start-up, imports, reading and writing files, MLflow).

The workspaces are throwaway copies of the project (their own git repository, DVC cache and
MLflow SQLite store) in a temporary folder: nothing in the project's own workspace is touched.

This module is also the child's entry point: ``python -m benchmarks.common stage OUT MODULE ...``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ("pipelines", "benchmarks", "expectations", "dvc.yaml", ".dvcignore", "pyproject.toml")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
NO_BATCH_DAY = "2030-01-01"  # a date no batch ever lands on

# The functions timed inside each stage process ("module:function"; bare names are the stage
# module's own). Name the module that calls the function: a stage package's main() looks its
# functions up in its own module (``.stage``), not in the package. They must exist: a renamed
# function fails the benchmark loudly.
CORE: dict[str, tuple[str, ...]] = {
    "pipelines.stages.prepare": ("prepare",),
    "pipelines.stages.window": ("build_window",),
    "pipelines.stages.validate": (
        "pipelines.stages.validate.gx:validate_frame",
        "pipelines.stages.validate.report:write_report",
    ),
    "pipelines.stages.drift": (
        "pipelines.stages.drift.stage:detect_drift",
        "pipelines.stages.drift.stage:write_html_report",
    ),
    "pipelines.stages.train": ("fit_features",),
    "pipelines.stages.evaluate": (
        "pipelines.stages.evaluate.stage:positive_scores",
        "pipelines.stages.evaluate.stage:evaluate_scores",
    ),
    "pipelines.stages.fairness": ("assess_fairness",),
    "pipelines.stages.gate": (
        "pipelines.stages.gate.stage:gather_evidence",
        "pipelines.stages.gate.stage:decide",
    ),
    "pipelines.release.register": (),
}


# --------------------------------------------------------------------------- measuring
@dataclass
class Measured:
    """One process: wall and CPU seconds, peak RSS, and the core functions' seconds inside it."""

    label: str
    wall: float
    cpu: float
    peak_mb: float
    returncode: int
    core: dict[str, float] = field(default_factory=dict)
    output: str = ""

    @property
    def core_total(self) -> float | None:
        return sum(self.core.values()) if self.core else None


# A lean launcher between the benchmark and the measured command. Linux carries a process's
# peak RSS over fork and exec, so a command started straight from this (large) Python process
# would report at least this process's size. The launcher (``python -S``, ~10 MB) forks and
# execs the command, waits for it with wait4 and writes that child's usage as JSON.
_LAUNCHER = """
import json, os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as f:
    json.dump({"maxrss_kb": ru.ru_maxrss, "cpu": ru.ru_utime + ru.ru_stime}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(
    label: str,
    cmd: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    core_file: Path | None = None,
    check: bool = True,
) -> Measured:
    """Run ``cmd`` as a child process: its wall time, CPU time (user + system) and peak RSS
    (``wait4`` in a lean launcher, so the numbers are the command's own)."""
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    log_path, usage_path = Path(cwd) / f".bench-{tag}.log", Path(cwd) / f".bench-{tag}.json"
    launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(usage_path)]
    with open(log_path, "w+b") as out:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*launcher, *cmd], cwd=cwd, env=env or bench_env(), stdout=out, stderr=subprocess.STDOUT
        )
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    log_path.unlink(missing_ok=True)
    usage = json.loads(usage_path.read_text())
    usage_path.unlink()
    core: dict[str, float] = {}
    if core_file is not None and core_file.is_file():
        core = json.loads(core_file.read_text())
        core_file.unlink()
    m = Measured(
        label=label,
        wall=wall,
        cpu=float(usage["cpu"]),
        peak_mb=usage["maxrss_kb"] / 1024,  # kilobytes on Linux
        returncode=proc.returncode,
        core=core,
        output=text,
    )
    if check and m.returncode != 0:
        tail = "\n".join(text.splitlines()[-25:])
        raise RuntimeError(f"{label}: `{shlex.join(cmd)}` exited {m.returncode}:\n{tail}")
    return m


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for stage processes: this interpreter first on PATH, no tracking server
    from the caller's shell (each workspace has its own SQLite store), quiet tools."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RETRAIN_PARAMS")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        {
            "DVC_NO_ANALYTICS": "1",
            "GIT_PYTHON_REFRESH": "quiet",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "PYTHONWARNINGS": "ignore",
            **GIT_ENV,
        }
    )
    return env | (extra or {})


# --------------------------------------------------------------------------- workspaces
def make_workspace(dest: Path, raw_params: dict[str, Any]) -> Path:
    """A throwaway copy of the project at ``dest`` with ``raw_params`` as its params.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    (dest / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", dest / ".dvc" / "config")
    (dest / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    (dest / "params.yaml").write_text(yaml.safe_dump(raw_params, sort_keys=False))
    env = bench_env()
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    (dest / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    (dest / ".dvcstore").mkdir(exist_ok=True)
    return dest


def workspace_params(
    raw: dict[str, Any], mirror: Path, **sections: dict[str, Any]
) -> dict[str, Any]:
    """A params mapping for a workspace root: the project's default paths, its own SQLite
    store, the given mirror (absolute), and ``sections`` merged in (one level deep)."""
    out = json.loads(json.dumps(raw))  # deep copy
    out["dataset"]["mirror"] = str(Path(mirror).resolve())
    out["paths"] = {
        "data": "data",
        "reports": "reports",
        "models": "models",
        "expectations": "expectations",
    }
    out.setdefault("nightly", {}).update(
        {"landing": "data/landing", "quarantine": "data/quarantine"}
    )
    out.setdefault("mlflow", {})["tracking_uri"] = "sqlite:///mlflow.db"
    for section, values in sections.items():
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(out.get(section, {}).get(key), dict):
                out[section][key].update(value)
            else:
                out.setdefault(section, {})[key] = value
    return out


def stage_commands(ws: Path) -> list[tuple[str, list[str]]]:
    """``(stage, argv)`` for each stage of the workspace's dvc.yaml, templated from params.yaml."""
    pipeline = yaml.safe_load((ws / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ws / "params.yaml").read_text())

    def lookup(match: re.Match[str]) -> str:
        value: Any = params
        for part in match.group(1).split("."):
            value = value[part]
        return str(value)

    return [
        (name, shlex.split(re.sub(r"\$\{([^}]+)\}", lookup, " ".join(stage["cmd"].split()))))
        for name, stage in pipeline.items()
    ]


@dataclass
class PipelineRun:
    """Every stage of one pipeline run, the gate again against a champion, a no-op ``dvc
    repro`` and a night with nothing new."""

    stages: list[Measured]
    noop_repro: Measured
    no_batch_night: Measured
    notes: list[str] = field(default_factory=list)


def run_pipeline(ws: Path, progress: Callable[[str], None] = print) -> PipelineRun:
    """Run the workspace's pipeline stage by stage (as ``dvc repro`` would), measuring each.

    After ``register`` (which makes the first champion when the gate passes) the gate runs once
    more: it then scores the champion on the same rows and computes the paired bootstrap, the
    work it does on every night that has a champion. Then ``dvc commit`` records the outputs, and
    a second ``dvc repro`` (nothing changed) and ``retrain nightly`` with no batch are timed.
    """
    env = bench_env()
    python = sys.executable
    dvc_cmd = [python, "-m", "dvc"]
    _ensure_dvc(ws, env)
    stages: list[Measured] = []
    notes: list[str] = []
    commands = dict(stage_commands(ws))
    order = list(commands)
    for name in order:
        stages.append(_run_stage(ws, name, commands[name], env, progress))
    registration = json.loads((ws / "reports" / "register" / "registration.json").read_text())
    if registration.get("champion") is None:
        # The gate said no (e.g. a model fitted on 10k rows is not calibrated enough): make it
        # the champion through the audited override, so the gate can be timed against one.
        version = str(registration["version"])
        notes.append(
            f"the first challenger (v{version}) failed the gate "
            f"({'; '.join(_gate_reasons(ws))}); it was made champion with `retrain promote` "
            "so that the gate could be timed against a champion"
        )
        reason = "benchmark: a champion to time the gate against"
        cli = [python, "-m", "pipelines.cli", "promote", version, "--reason", reason]
        subprocess.run(
            [*cli, "--params", "params.yaml"], cwd=ws, env=env, check=True, capture_output=True
        )
    gate = _run_stage(ws, "gate", commands["gate"], env, progress)
    gate.label = "gate (vs champion)"
    stages.append(gate)
    subprocess.run([*dvc_cmd, "commit", "-f", "-q"], cwd=ws, env=env, check=True)
    progress("  dvc repro (nothing changed)")
    noop = run_measured("dvc repro, nothing changed", [*dvc_cmd, "repro"], ws, env)
    if "Running stage" in noop.output or "up to date" not in noop.output:
        notes.append(f"dvc repro was not a no-op:\n{noop.output[-2000:]}")
    progress(f"  retrain nightly --date {NO_BATCH_DAY} (no batch)")
    night = run_measured(
        "night, nothing new",
        [
            python,
            "-m",
            "pipelines.cli",
            "nightly",
            "--date",
            NO_BATCH_DAY,
            "--params",
            "params.yaml",
        ],
        ws,
        env,
    )
    summary = json.loads((ws / "reports" / "nights" / NO_BATCH_DAY / "summary.json").read_text())
    if summary.get("outcome") != "no_batch":
        notes.append(f"the empty night ended {summary.get('outcome')!r}, not 'no_batch'")
    return PipelineRun(stages, noop, night, notes)


def _gate_reasons(ws: Path) -> list[str]:
    decision = json.loads((ws / "reports" / "gate" / "decision.json").read_text())
    return [str(r) for r in decision.get("reasons", [])]


def _ensure_dvc(ws: Path, env: dict[str, str]) -> None:
    """What ``workspace.ensure`` does before a repro: DVC initialised, accepted data tracked."""
    dvc_cmd = [sys.executable, "-m", "dvc"]
    if not (ws / ".dvc" / "tmp").exists():
        (ws / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    acc = ws / "data" / "accepted"
    acc.mkdir(parents=True, exist_ok=True)
    subprocess.run([*dvc_cmd, "add", "-q", "data/accepted"], cwd=ws, env=env, check=True)


def _run_stage(
    ws: Path, name: str, argv: list[str], env: dict[str, str], progress: Callable[[str], None]
) -> Measured:
    if argv[:2] != ["python", "-m"]:
        raise ValueError(f"stage {name}: expected `python -m MODULE ...`, got {argv}")
    module, args = argv[2], argv[3:]
    core_file = ws / f".core-{name}.json"
    progress(f"  {name}: {shlex.join(argv)}")
    cmd = [sys.executable, "-m", "benchmarks.common", "stage", str(core_file), module, *args]
    return run_measured(name, cmd, ws, env, core_file=core_file)


# --------------------------------------------------------------------------- a real model
# The datasets the model benchmarks run on, how many reference rows the real model is fitted
# on, and its boosting iterations (params.yaml says 200: fewer keeps a table in minutes).
DATASETS = {"adult": "params.yaml", "census_kdd": "params/census_kdd.yaml"}
TRAIN_ROWS = {"adult": 20_000, "census_kdd": 40_000}
MAX_ITER = 100


def chosen_datasets(ap: Any, text: str) -> list[str]:
    """The ``--datasets`` option's names, each one of :data:`DATASETS` (else a usage error)."""
    names = [d.strip() for d in text.split(",") if d.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        ap.error(f"--datasets: unknown {unknown}; known: {list(DATASETS)}")
    return names


@dataclass
class RealModel:
    """A dataset prepared as the project prepares it and the real model fitted on it."""

    params: Any
    data: Any  # the prepared reference and current rows
    reference: Any  # the reference rows the model was fitted on (a seeded sample)
    model: Any


def fit_real_model(name: str, seed: int = 0) -> RealModel:
    """Prepare ``name`` (a key of :data:`DATASETS`) in a throwaway folder and fit the project's
    model on a seeded sample of its reference rows, with :data:`MAX_ITER` iterations."""
    from pipelines.config import load_params
    from pipelines.stages.prepare import prepare
    from pipelines.stages.train import fit

    params = load_params(ROOT / DATASETS[name])
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as raw:
        data = prepare(params, Path(raw))
    ref = data.reference.sample(min(TRAIN_ROWS[name], len(data.reference)), random_state=seed)
    hyper = {**params.train.hyperparameters, "max_iter": MAX_ITER}
    model = fit(ref, params.dataset, params.train.model_copy(update={"hyperparameters": hyper}))
    return RealModel(params, data, ref, model)


# --------------------------------------------------------------------------- loading a server
# wrk's script: POST the body in the file $BENCH_BODY as JSON, marked as a probe.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Retrain-Probe"] = "bench"
local f = io.open(os.getenv("BENCH_BODY"), "r")
wrk.body = f:read("*a")
f:close()
"""


def request_records(params: Any, n: int) -> list[dict[str, Any]]:
    """``n`` records to send: the serving smoke rows, else the first prepared current rows."""
    from pipelines.serve.app import smoke_records

    records = smoke_records(params, n)
    if not records:
        from pipelines.serve.fastpath import frame_records
        from pipelines.serve.model import ServingSpec
        from pipelines.stages.prepare import prepare

        data = prepare(params, Path(tempfile.mkdtemp(prefix="bench-raw-")))
        records = frame_records(data.current.head(n), ServingSpec.from_params(params).fields)
    return records


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def run_wrk(
    url: str, body_file: Path, connections: int, duration: int
) -> tuple[float, float, float, int]:
    """req/s, p50 ms, p99 ms, errors (non-2xx + socket errors) of one wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
        script = f.name
    env = {**os.environ, "BENCH_BODY": str(body_file)}
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60).stdout
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, p50, p99, errors


# --------------------------------------------------------------------------- tables
def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Iterable[int] = ()) -> str:
    """A plain-text table (Markdown-compatible pipes), numbers right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    right = set(right)

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def machine_note() -> str:
    """The machine, and how busy it was, for the reader of the numbers."""
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(1/5/15 min) at the end; the machine is shared, so wall times are noisy: CPU seconds "
        "are the steadier number"
    )


def stage_rows(run: PipelineRun) -> list[list[str]]:
    """One row per measured process: label, core s, wall s, CPU s, peak MB, core functions."""
    out = []
    for m in [*run.stages, run.noop_repro, run.no_batch_night]:
        core = ", ".join(f"{k.split(':')[-1]} {fmt_s(v)}" for k, v in m.core.items()) or "-"
        out.append(
            [m.label, fmt_s(m.core_total), fmt_s(m.wall), fmt_s(m.cpu), fmt_mb(m.peak_mb), core]
        )
    return out


STAGE_HEADERS = (
    "stage",
    "core s",
    "process wall s",
    "process CPU s",
    "peak RSS MB",
    "core functions (s)",
)


# --------------------------------------------------------------------------- child side
def _timed(name: str, fn: Callable[..., Any], sink: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink[name] = sink.get(name, 0.0) + time.perf_counter() - t0

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def _stage_child(out: Path, module_name: str, args: list[str]) -> int:
    """Run ``module_name.main(args)`` with its core functions timed; write the times to ``out``."""
    import importlib

    module = importlib.import_module(module_name)
    sink: dict[str, float] = {}
    for spec in CORE.get(module_name, ()):
        owner_name, _, fn_name = spec.rpartition(":")
        owner = importlib.import_module(owner_name) if owner_name else module
        setattr(owner, fn_name, _timed(spec, getattr(owner, fn_name), sink))
    try:
        rc = module.main(args)
    finally:
        out.write_text(json.dumps(sink))
    return int(rc or 0)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "stage":
        sys.path.insert(0, os.getcwd())  # the workspace's own copy of the pipeline
        raise SystemExit(_stage_child(Path(sys.argv[2]), sys.argv[3], sys.argv[4:]))
    raise SystemExit("usage: python -m benchmarks.common stage OUT MODULE [ARGS...]")
