"""Scorer table: one-row latency of the compiled scorer vs the model's own ``predict_proba``,
and whether their probabilities are bit-identical on every Adult evaluation row.

    .venv/bin/python -m benchmarks.scorer [--rows 500] [--repeat 5]

The model is the project's (params.yaml's train section) fitted on adult.data; the rows are
adult.test. One row at a time, ``predict_proba`` is given a one-row DataFrame built beforehand
(its construction is not timed), while the compiled scorer is given the JSON-like record and
does everything the server does with it: check the fields, encode, score. Equality is checked
with ``numpy.array_equal`` (no tolerance) through the compiled path as the server uses it:
one record per call, micro-batches of 8 and 50, and one batch of every row. Both run on one
thread (OpenMP limited to 1, as in the server): scikit-learn's default of one OpenMP thread per
core makes a one-row call far slower, and erratic, on a busy machine. Not a test: the latencies
depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine_note, table


def _per_call_us(fn, args: list) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """Wall and CPU microseconds of each call of ``fn`` on each of ``args``."""
    wall, cpu = [], []
    for a in args:
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        fn(a)
        wall.append((time.perf_counter_ns() - t0) / 1e3)
        cpu.append((time.process_time_ns() - c0) / 1e3)
    return wall, cpu


def _p99(xs: list[float]) -> float:
    return float(np.percentile(xs, 99))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--rows", type=int, default=500, help="distinct rows timed one at a time")
    ap.add_argument("--repeat", type=int, default=5, help="rounds over those rows")
    ap.add_argument(
        "--threads", type=int, default=1, help="OpenMP/BLAS threads (default 1; 0: as installed)"
    )
    args = ap.parse_args(argv)
    # threadpoolctl limits the libraries loaded when it is entered: load OpenMP and BLAS first
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads or None):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import sklearn

    from pipelines.config import load_params
    from pipelines.serve.fastpath import CompiledScorer, frame_records
    from pipelines.serve.model import ServingSpec
    from pipelines.stages.prepare import prepare
    from pipelines.stages.train import feature_frame, fit

    params = load_params(args.params)
    data = prepare(params, Path(tempfile.mkdtemp(prefix="bench-scorer-")))
    t0 = time.perf_counter()
    model = fit(data.reference, params.dataset, params.train)
    fit_s = time.perf_counter() - t0
    spec = ServingSpec.from_params(params)
    t0 = time.perf_counter()
    scorer = CompiledScorer(model, spec.fields)
    compile_s = time.perf_counter() - t0
    if scorer.mode != "compiled":
        print(f"scorer bench: the model is not compiled: {scorer.reason}")
        return 1

    X = feature_frame(data.current, params.dataset)
    records = frame_records(data.current, spec.fields)
    n = min(args.rows, len(records))
    frames = [X.iloc[[i]] for i in range(n)]
    single = [[r] for r in records[:n]]
    # warm both paths; the model's objects are long-lived, as in the server (gc.freeze); then
    # alternate rounds so both see the same machine
    _per_call_us(model.predict_proba, frames[:50])
    _per_call_us(scorer.predict_records, single[:50])
    gc.collect()
    gc.freeze()
    sk: tuple[list[float], list[float]] = ([], [])
    ours: tuple[list[float], list[float]] = ([], [])
    for _ in range(args.repeat):
        for acc, (fn, xs) in ((sk, (model.predict_proba, frames)),
                              (ours, (scorer.predict_records, single))):  # fmt: skip
            wall, cpu = _per_call_us(fn, xs)
            acc[0].extend(wall)
            acc[1].extend(cpu)

    want = model.predict_proba(X)[:, 1]
    paths = {
        "one record per call": np.concatenate([scorer.predict_records([r]) for r in records]),
        "micro-batches of 8": np.concatenate(
            [scorer.predict_records(records[i : i + 8]) for i in range(0, len(records), 8)]
        ),
        "batches of 50": np.concatenate(
            [scorer.predict_records(records[i : i + 50]) for i in range(0, len(records), 50)]
        ),
        "one batch of every row": scorer.predict_records(records),
    }

    clf = model.steps[-1][1]
    print(f"## Compiled scorer vs scikit-learn {sklearn.__version__} predict_proba, one row")
    print()
    print(f"Model: {type(clf).__name__} ({getattr(clf, 'n_iter_', '?')} trees) behind the "
          f"project's preprocessing, fitted on {len(data.reference):,} adult.data rows in "
          f"{fit_s:.1f} s; compiled in {compile_s:.2f} s. {n} adult.test rows, each timed "
          f"{args.repeat} times, threads: {args.threads or 'library default'}.")  # fmt: skip
    print()
    med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in
           (("sk", sk), ("ours", ours))}  # fmt: skip
    rows = [
        ["model.predict_proba(one-row DataFrame)", f"{med['sk'][0]:,.0f}", f"{_p99(sk[0]):,.0f}",
         f"{med['sk'][1]:,.0f}", "1x", "1x"],
        ["compiled scorer (record: check, encode, score)", f"{med['ours'][0]:,.1f}",
         f"{_p99(ours[0]):,.1f}", f"{med['ours'][1]:,.1f}",
         f"{med['sk'][0] / med['ours'][0]:,.0f}x", f"{med['sk'][1] / med['ours'][1]:,.0f}x"],
    ]  # fmt: skip
    headers = ["path", "wall us (median)", "wall us (p99)", "CPU us (median)",
               "speed-up (wall)", "speed-up (CPU)"]  # fmt: skip
    print(table(headers, rows, right=(1, 2, 3, 4, 5)))
    print()
    eq_rows = []
    for label, got in paths.items():
        diff = np.abs(got - want)
        eq_rows.append(
            [label, f"{len(got):,}", "yes" if np.array_equal(got, want) else "NO",
             f"{int((diff > 0).sum())}", f"{diff.max():.1e}"]
        )  # fmt: skip
    print(f"Bit-identical to predict_proba on all {len(want):,} adult.test rows:")
    print()
    print(table(["compiled path", "rows", "bit-identical", "rows differing", "max |diff|"],
                eq_rows, right=(1, 3, 4)))  # fmt: skip
    print()
    print(machine_note())
    identical = all(r[2] == "yes" for r in eq_rows)
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
