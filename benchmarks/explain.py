"""Explain table: the exact contributions' cost, one record at a time and for a whole
``/predict?explain=k`` request, and how exactly they add up to the model's raw margin.

    .venv/bin/python -m benchmarks.explain [--rows 300] [--repeat 3] [--k 5] [--check-rows 2000]

The model is the project's (params.yaml's train section) fitted on adult.data on one thread;
the records are adult.test. Timed, per record: the explain call as the server makes it
(:meth:`CompiledScorer.explain_encoded`: matrix, TreeSHAP over every leaf, top-k) on one
thread; then the real server (uvicorn, no prediction log) in a child process pinned to one core
answers ``POST /predict`` and ``POST /predict?explain=k`` for the same records, one request at a
time over one keep-alive connection (the client in this process, on the other core). Also: the
largest |expected value + sum of contributions - decision_function| over ``--check-rows`` rows,
and the rows per second a batch is explained at (what the gate and the monitor pay). Not a
test: the latencies depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, machine_note, table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--rows", type=int, default=300, help="distinct records timed")
    ap.add_argument("--repeat", type=int, default=3, help="rounds over those records")
    ap.add_argument("--k", type=int, default=5, help="contributions per record")
    ap.add_argument("--check-rows", type=int, default=2000, help="rows the sum is checked on")
    ap.add_argument("--serve", default=None, help=argparse.SUPPRESS)  # the child: a model file
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # threadpoolctl limits the libraries loaded when it is entered: load OpenMP and BLAS first
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        if args.serve:
            return _serve(args)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from pipelines.config import load_params
    from pipelines.serve.fastpath import CompiledScorer, frame_records
    from pipelines.serve.model import ServingSpec
    from pipelines.stages.prepare import prepare
    from pipelines.stages.train import feature_frame, fit

    params = load_params(args.params)
    tmp = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    data = prepare(params, tmp)
    model = fit(data.reference, params.dataset, params.train)
    spec = ServingSpec.from_params(params)
    scorer = CompiledScorer(model, spec.fields)
    t0 = time.perf_counter()
    explainer = scorer.explainer()
    build_s = time.perf_counter() - t0
    if explainer is None:
        print(f"explain bench: the model is not explained ({scorer.mode}: {scorer.reason})")
        return 1
    clf = model.steps[-1][1]
    records = frame_records(data.current, spec.fields)
    n = min(args.rows, len(records))

    # exactness and batch throughput
    X = model.steps[0][1].transform(feature_frame(data.current, params.dataset))
    X = X[: args.check_rows]
    t0, c0 = time.perf_counter(), time.process_time()
    phi = explainer.contributions(X)
    batch_wall, batch_cpu = time.perf_counter() - t0, time.process_time() - c0
    margin = clf.decision_function(X)
    err = float(np.max(np.abs(explainer.expected_value + phi.sum(axis=1) - margin)))

    # the explain call, one record at a time
    def one(r: dict[str, Any]) -> None:
        scorer.explain_encoded(scorer.encode([r]), [r], args.k)

    for r in records[:30]:
        one(r)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(args.repeat):
        for r in records[:n]:
            t0, c0 = time.perf_counter_ns(), time.process_time_ns()
            one(r)
            wall.append((time.perf_counter_ns() - t0) / 1e6)
            cpu.append((time.process_time_ns() - c0) / 1e6)

    anchor = _reference_anchor(scorer, clf, X, phi, n)

    # whole requests against the real server on one core
    model_file = tmp / "model.pkl"
    model_file.write_bytes(pickle.dumps(model))
    plain, explained, server_cpu = _requests(args, model_file, records[:n])

    print("## Exact explanations (path-dependent TreeSHAP, pure numpy)")
    print()
    print(f"Model: {type(clf).__name__} ({clf.n_iter_} trees, "
          f"{sum(len(b.value) for b in explainer.buckets):,} leaves) fitted on "
          f"{len(data.reference):,} adult.data rows; tables built in {build_s:.2f} s. "
          f"{n} adult.test records x {args.repeat} rounds, top {args.k}, one thread.")  # fmt: skip
    print()
    rows = [
        ["explain call (record -> top-k)", *_pcts(wall), " / ".join(_pcts(cpu))],
        ["POST /predict (server CPU)", *_pcts(plain), f"{server_cpu['plain']:.2f}"],
        [
            f"POST /predict?explain={args.k} (server CPU)",
            *_pcts(explained),
            f"{server_cpu['explained']:.2f}",
        ],
    ]
    headers = ["path", "p50 ms", "p99 ms", "CPU ms (p50 / p99; server: mean)"]
    print(table(headers, rows, right=(1, 2, 3)))
    print()
    print(f"Sum check on {len(X):,} rows: max |expected + sum(contributions) - raw margin| = "
          f"{err:.1e}; a batch of {len(X):,} rows explained in {batch_wall:.1f} s "
          f"({len(X) / batch_wall:,.0f} rows/s wall, {batch_cpu:.1f} s CPU).")  # fmt: skip
    print()
    if anchor:
        print(anchor)
        print()
    print(machine_note())
    return 0 if err <= 1e-6 else 1


def _reference_anchor(scorer: Any, clf: Any, X: np.ndarray, phi: np.ndarray, n: int) -> str:
    """The dev extra's reference TreeSHAP (``shap``, compiled C), when installed: its time per
    row and for the batch, and the largest difference from ours per feature."""
    import importlib.util

    if importlib.util.find_spec("shap") is None:
        return "Reference implementation (dev extra `shap`) not installed: no anchor."
    import warnings

    import shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = shap.TreeExplainer(clf, feature_perturbation="tree_path_dependent")
        t0 = time.perf_counter()
        per_column = np.asarray(ref.shap_values(X))
        batch_s = time.perf_counter() - t0
        one = []
        for i in range(min(n, len(X))):
            t0 = time.perf_counter_ns()
            ref.shap_values(X[i : i + 1])
            one.append((time.perf_counter_ns() - t0) / 1e6)
    want = np.zeros_like(phi)
    for c, f in enumerate(scorer._column_features()):
        if f is not None:
            want[:, f] += per_column[:, c]
    diff = float(np.max(np.abs(phi - want)))
    p50, p99 = _pcts(one)
    return (
        f"Anchor, the reference TreeExplainer ({shap.__version__}, same trees): one row "
        f"p50 {p50} ms, p99 {p99} ms (wall; its call on a ready matrix, no top-k); "
        f"{len(X):,} rows in {batch_s:.1f} s; max |ours - reference| per feature = {diff:.1e}."
    )


def _pcts(ms: list[float]) -> list[str]:
    return [f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 99):.2f}"]


def _requests(
    args: argparse.Namespace, model_file: Path, records: list[dict[str, Any]]
) -> tuple[list[float], list[float], dict[str, float]]:
    """Milliseconds per request, plain and explained, against a server on one core, and the
    server's mean CPU milliseconds per request of each kind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAIN_SERVE_TOKEN")}
    env |= {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchmarks.explain", "--params", args.params,
           "--serve", str(model_file), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
    try:
        conn = _connect(port, records[0])
        bodies = [json.dumps(r).encode() for r in records]
        for b in bodies[:30]:
            _post(conn, "/predict", b)
            _post(conn, f"/predict?explain={args.k}", b)
        plain: list[float] = []
        explained: list[float] = []
        cpu = {"plain": 0.0, "explained": 0.0}
        for _ in range(args.repeat):  # whole passes, so the server's CPU time splits by kind
            passes = (("plain", "/predict", plain),
                      ("explained", f"/predict?explain={args.k}", explained))  # fmt: skip
            for kind, path, acc in passes:
                c0 = _cpu_seconds(proc.pid)
                acc.extend(_post(conn, path, b) for b in bodies)
                cpu[kind] += _cpu_seconds(proc.pid) - c0
        conn.close()
        per = {k: 1e3 * v / len(plain) for k, v in cpu.items()}
        return plain, explained, per
    finally:
        from benchmarks.serving import stop

        stop(proc)


def _connect(port: int, record: dict[str, Any], timeout: float = 120) -> http.client.HTTPConnection:
    deadline = time.monotonic() + timeout
    body = json.dumps(record).encode()
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            _post(conn, "/predict", body)
            return conn
        except (OSError, http.client.HTTPException, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> float:
    t0 = time.perf_counter_ns()
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    ms = (time.perf_counter_ns() - t0) / 1e6
    if resp.status != 200:
        raise RuntimeError(f"{path}: {resp.status} {data[:200]!r}")
    return ms


def _serve(args: argparse.Namespace) -> int:
    """The child: the real app on one core, serving the pickled model (no prediction log)."""
    from pipelines.config import load_params
    from pipelines.serve.app import ServingApp, run
    from pipelines.serve.fastpath import CompiledScorer
    from pipelines.serve.model import LoadedModel, ModelHolder, ServingSpec

    os.sched_setaffinity(0, {0})
    spec = ServingSpec.from_params(load_params(args.params))
    model = pickle.loads(Path(args.serve).read_bytes())
    loaded = LoadedModel("1", CompiledScorer(model, spec.fields), run_id="bench")
    loaded.scorer.explainer()

    class Fixed:
        def resolve(self) -> str:
            return "1"

        def load(self, version: str) -> LoadedModel:
            return loaded

    run(ServingApp(ModelHolder(Fixed()), spec), "127.0.0.1", args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
