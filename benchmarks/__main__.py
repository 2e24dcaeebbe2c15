"""``make bench``: every benchmark table in order, each printed as it finishes.

    .venv/bin/python -m benchmarks [--only stages,scale,serving,scorer] [--full | --rows N,N]
                                     [--keep]
    make bench BENCH_ARGS=--full

1. ``stages``: each stage's wall time and peak memory on the full Adult data, a no-op
   ``dvc repro`` and a night with nothing new;
2. ``scale``: the same on Census-Income (KDD) resampled to 10k and 100k rows (``--full``: and
   1M rows, about 20 minutes more), and drift side by side with Evidently's default
   DataDriftPreset (``--rows`` picks other sizes);
3. ``serving``: when ``benchmarks/serving.py`` exists; ``replicas``: 1 and 2 serving containers
   behind nginx, 1 and 100 records per request (skipped, said so, without podman, nginx, wrk);
4. ``scorer``: the compiled scorer against the model's own ``predict_proba`` on one row, and
   bit-identity of their probabilities on every Adult evaluation row;
5. ``monitor``: one monitor pass's read of the prediction log at 1M logged answers (``--full``:
   and 10M), before and after bounding it by the window;
6. ``gate``: the gate's intervals with a champion at 100k held-out rows (``--full``: and 1M),
   the bootstrap and linearisation side by side;
7. ``gate_decisions``: the gate's decisions on simulated nights with known truth (a challenger
   equal to, better or worse than the champion, with and without a fairness change) on Adult
   and Census-KDD: false promotions and wrongly blocked better models per scenario
   (``--full``: 200 nights per scenario and 1,000 resamples instead of 50 and 200);
8. ``explain``: exact explanations: one record's explain call and a whole
   ``/predict?explain=k`` request against the server on one core (p50/p99), and the sum of the
   contributions against the raw margin.
9. ``canary``: the canary's decisions on simulated canaries with known truth looked at every 50
   labelled rows: the wrong promotions and roll backs of a fixed interval re-checked at every
   look against the confidence sequence, and the rows to a decision for a better challenger
   (``--full``: 1,000 canaries per scenario instead of 200).
10. ``estimation``: the monitor's metric estimated without outcomes against the realised one,
    under covariate shift and concept change, on Adult and Census-KDD, and how many answers
    earlier the live loop sees an estimated drop than the labelled one (``--full``: 100
    samples per scenario and 20 streams instead of 30 and 5).

A table that fails is reported and the next one still runs; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import traceback

TABLES = (
    "stages",
    "scale",
    "serving",
    "replicas",
    "scorer",
    "monitor",
    "gate",
    "gate_decisions",
    "explain",
    "canary",
    "estimation",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(TABLES), help="tables to run, comma-separated")
    ap.add_argument("--rows", default=None, help="scale sizes, e.g. 10000,100000")
    ap.add_argument("--full", action="store_true", help="scale at 10k, 100k and 1M rows")
    ap.add_argument("--keep", action="store_true", help="keep throwaway workspaces")
    args = ap.parse_args(argv)
    wanted = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(wanted) - set(TABLES))
    if unknown:
        ap.error(f"--only: unknown table(s) {unknown}; tables are {list(TABLES)}")
    failed = []
    for name in (t for t in TABLES if t in wanted):
        if importlib.util.find_spec(f"benchmarks.{name}") is None:
            print(f"\n# benchmarks.{name}: not present, skipped", flush=True)
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        sub_argv: list[str] = []
        if args.keep and name in ("stages", "scale"):
            sub_argv.append("--keep")
        if name == "scale" and args.rows:
            sub_argv += ["--rows", args.rows]
        elif (
            name in ("scale", "monitor", "gate", "gate_decisions", "canary", "estimation")
            and args.full
        ):
            sub_argv.append("--full")
        print(f"\n# benchmarks.{name}", flush=True)
        t0 = time.perf_counter()
        try:
            rc = module.main(sub_argv)
        except Exception:  # noqa: BLE001 - one broken table must not hide the others
            traceback.print_exc()
            rc = 1
        print(f"# benchmarks.{name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
