"""Serving replicas behind nginx: 1 and 2 serving containers of one version, same machine.

    .venv/bin/python -m benchmarks.replicas [--params params.yaml] [--duration 10]
                                            [--connections 8]

The champion's serving image (built once by `retrain deploy`'s own code, reused when present)
runs as two containers; a throwaway nginx (docker/nginx.conf.template, rendered by
`pipelines.release.nginx`, the deploy's balancer: least_conn, passive health checks) is put in
front of one of them, then reloaded onto both. wrk loads each with the same records: one record
per request, then 100 per request. A row straight to one container (no nginx) prices the hop.
Printed: throughput (requests and rows per second), p50/p99 latency, errors, and the scaling
from 1 to 2 replicas beside the number of cores: the containers, nginx and wrk share them.

Skipped, with a message, where podman, nginx or wrk is missing (scripts/install-podman.sh
installs them). Not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, request_records, run_wrk
from benchmarks.serving import Row, ensure_champion, median

NGINX = ("nginx", "/usr/sbin/nginx")


def missing_tools() -> list[str]:
    """What the replica rows need and this machine lacks."""
    out = [t for t in ("podman", "wrk") if shutil.which(t) is None]
    if not any(shutil.which(n) or Path(n).is_file() for n in NGINX):
        out.append("nginx")
    return out


def bench_replicas(  # type: ignore[no-untyped-def]
    params, version: str, records: list[dict], duration: int, connections: int
) -> list[Row]:
    """The rows: one container direct, then nginx over 1 and over 2 replicas."""
    from pipelines.release.checks import wait_ready
    from pipelines.release.containers import build_image, remove_container, start_container
    from pipelines.release.nginx import stop_nginx, switch_nginx
    from pipelines.release.replicas import Replica, free_ports

    engine = "podman"
    tag, built = build_image(params, version, engine)
    print(f"  image {tag}: " + (f"built in {built:.0f} s" if built else "reused"), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    work.chmod(0o755)  # nginx's workers (another user) write their temporary files under it
    bodies = {
        "1 record": (work / "one.json", 1),
        "100 records": (work / "hundred.json", 100),
    }
    bodies["1 record"][0].write_text(json.dumps(records[0]))
    bodies["100 records"][0].write_text(json.dumps({"records": records[:100]}))
    name = f"bench-replicas-{params.mlflow.registered_model.lower()}-v{version}"
    replicas = [Replica(f"{name}-{p}", p) for p in free_ports(2)]
    nginx_port = free_ports(1)[0]
    address = f"127.0.0.1:{nginx_port}"
    prefix = work / "nginx"
    rows: list[Row] = []

    def measure(label: str, url: str) -> None:
        for payload, (body, n) in bodies.items():
            run_wrk(url, body, connections, 2)  # warm-up
            rps, p50, p99, errors = run_wrk(url, body, connections, duration)
            rows.append(Row(label, payload, n, connections, [rps], [p50], [p99], errors))
            print(f"  {label:<36} {payload:<12} {rps:>9,.0f} req/s  p99 {p99:.1f} ms", flush=True)

    try:
        for r in replicas:
            start_container(engine, tag, r.name, r.port)
        for r in replicas:
            ok, detail = wait_ready(r.url, 180, version)
            if not ok:
                raise RuntimeError(f"{r.name}: {detail}")
        measure("1 container, no nginx", replicas[0].url + "/predict")
        switch_nginx(params, address, [replicas[0].upstream], version, prefix=prefix)
        measure("nginx, 1 replica", f"http://{address}/predict")
        switch_nginx(params, address, [r.upstream for r in replicas], version, prefix=prefix)
        measure("nginx, 2 replicas (least_conn)", f"http://{address}/predict")
    finally:
        stop_nginx(params, prefix=prefix)
        for r in replicas:
            remove_container(engine, r.name, stop_timeout=5)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def print_rows(rows: list[Row]) -> None:
    print()
    print("| serving | payload | conns | req/s | rows/s | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.server} | {r.payload} | {r.connections} | {median(r.rps):,.0f} | "
              f"{r.rows_per_s:,.0f} | {median(r.p50_ms):.2f} | {median(r.p99_ms):.2f} | "
              f"{r.errors} |")  # fmt: skip
    print()
    cores = os.cpu_count() or 1
    for payload in ("1 record", "100 records"):
        one = next(r for r in rows if r.payload == payload and r.server == "nginx, 1 replica")
        two = next(r for r in rows if r.payload == payload and r.server.startswith("nginx, 2"))
        direct = next(r for r in rows if r.payload == payload and r.server.endswith("no nginx"))
        hop = median(one.rps) / median(direct.rps)
        print(f"scaling 1 -> 2 replicas, {payload}: {median(two.rps) / median(one.rps):.2f}x "
              f"req/s (p99 {median(one.p99_ms):.1f} -> {median(two.p99_ms):.1f} ms) on {cores} "
              f"cores shared by the "
              f"replicas, nginx and wrk; through nginx {hop:.2f}x of direct")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work here skews every row)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"replicas bench: skipped: {', '.join(missing)} not installed "
              "(scripts/install-podman.sh installs podman, nginx and wrk)")  # fmt: skip
        return 0
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from pipelines.config import load_params

    params, version = ensure_champion(load_params(args.params))
    records = request_records(params, 100)
    print(f"replicas bench: model {params.mlflow.registered_model} v{version}; wrk -t1 "
          f"-c{args.connections} -d{args.duration}s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores", flush=True)  # fmt: skip
    try:
        rows = bench_replicas(params, version, records, args.duration, args.connections)
    except subprocess.CalledProcessError as err:
        print(f"replicas bench: {err}", file=sys.stderr)
        return 1
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
