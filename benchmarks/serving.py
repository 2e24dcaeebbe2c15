"""Serving benchmark: this server vs `mlflow models serve`, same model version, same machine.

    .venv/bin/python benchmarks/serving.py [--params params.yaml] [--duration 10] [--connections 8]
                                           [--repeat 2]

Both servers serve the same registered version (the champion; without one, a model is trained
on the reference data into a throwaway registry first). They are run one after the other, each
alone on the machine, and loaded by wrk (Debian's; scripts/install-podman.sh installs it) with the
same records: 1 and 100 records per request, in two shapes: records (a JSON object per record;
`mlflow models serve`: `dataframe_records`) and columns (`{"columns": [...], "data": [...]}`;
`dataframe_split`). Each measurement is taken `--repeat` times: the table shows the median and
the range. Printed: throughput (requests and rows per second), p50/p99 latency, errors, the
throughput ratios, and the prediction log's cost (p99 with the log on against off).

This server runs as one process (`retrain serve`), with its prediction log (the default) and
without it (`--no-log`), which prices the log on the hot path; `mlflow models serve` with 2
workers (its best on 2 cores). The `replicas` column is 1 here: several replicas behind the
load balancer are the release's own benchmark. Not a test: numbers depend on the machine and on
what else runs on it (the load average is printed before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, request_records, run_wrk

VENV_BIN = Path(sys.executable).parent


@dataclass
class Row:
    server: str
    payload: str
    rows_per_request: int
    connections: int
    rps: list[float]
    p50_ms: list[float]
    p99_ms: list[float]
    errors: int
    replicas: int = 1

    @property
    def rows_per_s(self) -> float:
        return median(self.rps) * self.rows_per_request


def median(values: list[float]) -> float:
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def spread(values: list[float], fmt: str) -> str:
    """The median, and the range when the measurement was repeated."""
    text = format(median(values), fmt)
    if len(values) > 1:
        text += f" ({format(min(values), fmt)}-{format(max(values), fmt)})"
    return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, body: bytes, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, data=body, method="POST")
            req.add_header("Content-Type", "application/json")
            req.add_header("X-Retrain-Probe", "bench")  # not live traffic for the monitor
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())
        except Exception as err:  # noqa: BLE001 - not up yet
            last = err
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s: {last}")


def stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def ensure_champion(params):  # type: ignore[no-untyped-def]
    """The params' champion version, or a throwaway registry with a freshly trained one."""
    from pipelines.edges import registry

    version = registry.champion_version(params)
    if version is not None:
        return params, version
    import yaml

    from pipelines.config import parse_params
    from pipelines.edges import tracking
    from pipelines.stages.prepare import prepare
    from pipelines.stages.train import feature_frame, fit

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    raw = yaml.safe_load((params.root / "params.yaml").read_text())
    if raw["dataset"].get("mirror"):
        raw["dataset"]["mirror"] = str(params.path(raw["dataset"]["mirror"]))
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{tmp / 'mlflow.db'}"
    (tmp / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    os.environ["MLFLOW_TRACKING_URI"] = raw["mlflow"]["tracking_uri"]
    p = parse_params(raw, root=tmp)
    data = prepare(p, tmp / "raw")
    (tmp / "data").mkdir(exist_ok=True)
    train_path = tmp / "data" / "reference.parquet"
    data.reference.to_parquet(train_path)
    model = fit(data.reference, p.dataset, p.train)
    X = feature_frame(data.reference, p.dataset)
    rec = tracking.log_training_run(p, model, X.head(5), train_path, {}, tmp / "models" / "model")
    version = registry.register(p, rec["run_id"], rec["model_uri"], rec["tags"])
    from pipelines.release.signing import sign_override

    sign_override(p, version, reason="serving benchmark: trained here, judged by no gate")
    registry.promote(p, version, reason="serving benchmark")
    return p, version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--mlflow-workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="wrk runs per measurement")
    args = ap.parse_args(argv)
    if not shutil.which("wrk") and os.geteuid() == 0:
        subprocess.run(["bash", str(ROOT / "scripts" / "install-podman.sh")], check=False)
    if not shutil.which("wrk"):
        print("serving bench: wrk not found (run scripts/install-podman.sh)", file=sys.stderr)
        return 1
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from pipelines.config import load_params

    params, version = ensure_champion(load_params(args.params))
    records = request_records(params, 100)
    name = params.mlflow.registered_model
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    names = list(records[0])

    def split(recs: list[dict]) -> dict:
        return {"columns": names, "data": [[r[c] for c in names] for r in recs]}

    payloads = {
        "ours": {
            "1 record": (json.dumps(records[0]), 1),
            "100 records": (json.dumps({"records": records[:100]}), 100),
            "1 record, columns": (json.dumps(split(records[:1])), 1),
            "100 records, columns": (json.dumps(split(records[:100])), 100),
        },
        "mlflow": {
            "1 record": (json.dumps({"dataframe_records": records[:1]}), 1),
            "100 records": (json.dumps({"dataframe_records": records[:100]}), 100),
            "1 record, columns": (json.dumps({"dataframe_split": split(records[:1])}), 1),
            "100 records, columns": (json.dumps({"dataframe_split": split(records[:100])}), 100),
        },
    }
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": params.tracking_uri,
        "OMP_NUM_THREADS": "1",
    }
    serve = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "serve",
        "--params",
        str(params.root / "params.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
    servers = {
        "this server, log on": ("ours", serve, "/predict"),
        "this server, log off (--no-log)": ("ours", [*serve, "--no-log"], "/predict"),
        f"mlflow models serve ({args.mlflow_workers} workers)": (
            "mlflow",
            [str(VENV_BIN / "mlflow"), "models", "serve", "-m", f"models:/{name}/{version}",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", "{port}",
             "--workers", str(args.mlflow_workers)],
            "/invocations",
        ),
    }  # fmt: skip
    rows: list[Row] = []
    answers: dict[str, list[float]] = {}
    print(f"serving bench: model {name} v{version}; wrk -t1 -c{args.connections} "
          f"-d{args.duration}s x{args.repeat}, servers run one after the other; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)  # fmt: skip
    for label, (kind, cmd, path) in servers.items():
        port = _free_port()
        log = open(work / f"{kind}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [c.replace("{port}", str(port)) for c in cmd],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=params.root,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}{path}"
            wait_http(url, payloads[kind]["100 records"][0].encode())
            for shape in ("100 records", "100 records, columns"):
                first = wait_http(url, payloads[kind][shape][0].encode())
                got = first["probabilities"] if kind == "ours" else first["predictions"]
                answers.setdefault(f"{kind}: {shape}", [p if kind == "ours" else p[1] for p in got])
            for payload, (body, n) in payloads[kind].items():
                f = work / f"{kind}-{len(body)}.json"
                f.write_text(body)
                run_wrk(url, f, args.connections, 2)  # warm-up
                runs = [
                    run_wrk(url, f, args.connections, args.duration) for _ in range(args.repeat)
                ]
                row = Row(
                    label,
                    payload,
                    n,
                    args.connections,
                    [r[0] for r in runs],
                    [r[1] for r in runs],
                    [r[2] for r in runs],
                    sum(r[3] for r in runs),
                )
                rows.append(row)  # fmt: skip
                print(f"  {label:<36} {payload:<22} {spread(row.rps, ',.0f'):>22} req/s "
                      f"p99 {spread(row.p99_ms, '.1f')} ms", flush=True)  # fmt: skip
        finally:
            stop(proc)
            log.close()
    print_table(rows, args)
    check_answers(params, version, records, answers)
    return 0


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print()
    print("| server | replicas | payload | req/s | rows/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.server} | {r.replicas} | {r.payload} | {spread(r.rps, ',.0f')} | "
              f"{r.rows_per_s:,.0f} | {spread(r.p50_ms, '.2f')} | {spread(r.p99_ms, '.2f')} | "
              f"{r.errors} |")  # fmt: skip
    print()

    def pick(server: str, payload: str) -> Row:
        return next(r for r in rows if r.payload == payload and r.server.startswith(server))

    for payload in dict.fromkeys(r.payload for r in rows):
        ours, off = pick("this server, log on", payload), pick("this server, log off", payload)
        theirs = pick("mlflow", payload)
        print(f"{payload}: {median(ours.rps) / median(theirs.rps):.1f}x mlflow models serve's "
              f"req/s with the log ({median(off.rps) / median(theirs.rps):.1f}x without); "
              f"p99 {median(ours.p99_ms):.1f} ms with the log, {median(off.p99_ms):.1f} ms "
              f"without ({median(ours.p99_ms) / median(off.p99_ms):.2f}x), "
              f"{median(theirs.p99_ms):.1f} ms mlflow")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work here skews both)")


def check_answers(params, version, records, answers) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    from pipelines.release.deploy import reference_scorer

    offline = reference_scorer(params, version).predict_proba(
        pd.DataFrame.from_records(records[:100])
    )
    for label, got in answers.items():
        d = np.abs(np.asarray(got) - offline)
        print(f"{label}: max |served - registered model predict_proba| over 100 records = "
              f"{d.max():.2e} ({int((d > 1e-6).sum())} rows beyond 1e-6)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
