"""The gate's intervals with a champion, side by side: the bootstrap against linearisation.

What the gate computes once a champion exists, on synthetic held-out rows (two sensitive
attributes, one with small groups): the champion's metrics with intervals, the paired
differences (challenger - champion) of the bounded metrics, and every fairness measure with its
interval and the paired interval of its change. Each method runs in a child process of its own
(wall, CPU and peak memory from ``wait4``). "bootstrap" is ``evaluate.linear_above_rows: null``
(1,000 resamples, what the gate did at every size before); "linearised" is the default above
200,000 distinct rows (DeLong for ROC AUC; influence values for the others and the fairness
gaps). Model scoring and file reading are not in these numbers.

    python -m benchmarks.gate [--rows 100000,1000000] [--full] [--methods linearised]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import fmt_mb, fmt_s, machine_note, run_measured, table

DEFAULT_ROWS = (100_000,)
FULL_ROWS = (100_000, 1_000_000)
METHODS = {"bootstrap": None, "linearised": 2}  # evaluate.linear_above_rows


def _child(n: int, linear_above: int | None, out: Path) -> int:
    """The gate's interval work on ``n`` synthetic rows; seconds per part into ``out``."""
    import numpy as np

    from pipelines.config import EvaluateConfig
    from pipelines.stages.evaluate import evaluate_scores, paired_bootstrap_differences
    from pipelines.stages.fairness.core import MEASURES
    from pipelines.stages.fairness.intervals import fairness_intervals

    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(np.int64)
    p_new = 1 / (1 + np.exp(-2 * x + rng.normal(scale=0.5, size=n)))
    p_old = 1 / (1 + np.exp(-1.8 * x + rng.normal(scale=0.6, size=n)))
    labels = {
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(list("ABCDE"), n, p=[0.8, 0.1, 0.05, 0.03, 0.02]),
    }
    cfg = EvaluateConfig(linear_above_rows=linear_above)
    seconds = {}
    t = time.perf_counter()
    evaluate_scores(y, p_old, cfg)
    seconds["champion metrics"] = time.perf_counter() - t
    t = time.perf_counter()
    paired_bootstrap_differences(y, p_new, p_old, ("roc_auc", "accuracy", "f1", "ece"), cfg)
    seconds["paired differences"] = time.perf_counter() - t
    t = time.perf_counter()
    fairness_intervals(
        y,
        (p_new >= 0.5).astype(np.int64),
        labels,
        {m: 30 for m in MEASURES},
        cfg.bootstrap_samples,
        cfg.confidence,
        cfg.seed,
        other_pred=(p_old >= 0.5).astype(np.int64),
        linear_above_rows=linear_above,
    )
    seconds["fairness"] = time.perf_counter() - t
    out.write_text(json.dumps(seconds))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.gate", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default=None, help="sizes, e.g. 100000,1000000")
    ap.add_argument("--full", action="store_true", help=f"sizes {FULL_ROWS}")
    ap.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"intervals to measure, of {', '.join(METHODS)} (default: both)",
    )
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        n, method, out = args.child
        return _child(int(n), METHODS[method], Path(out))
    sizes = (
        tuple(int(s) for s in args.rows.split(","))
        if args.rows
        else FULL_ROWS
        if args.full
        else DEFAULT_ROWS
    )
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        ap.error(f"--methods: {', '.join(unknown) or 'none given'}; known: {', '.join(METHODS)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
        for n in sizes:
            for method in methods:
                core = Path(tmp) / f"{n}-{method}.json"
                cmd = [
                    sys.executable,
                    "-m",
                    "benchmarks.gate",
                    "--child",
                    str(n),
                    method,
                    str(core),
                ]
                m = run_measured(f"{method} {n:,}", cmd, Path.cwd(), core_file=core)
                parts = m.core
                rows.append(
                    [
                        f"{n:,}",
                        method,
                        *(
                            fmt_s(parts.get(k))
                            for k in ("champion metrics", "paired differences", "fairness")
                        ),
                        fmt_s(m.core_total),
                        fmt_s(m.wall),
                        fmt_s(m.cpu),
                        fmt_mb(m.peak_mb),
                    ]
                )
                print(f"gate: {n:,} rows, {method}: {fmt_s(m.wall)} s", flush=True)
    print()
    print(
        table(
            [
                "rows",
                "intervals",
                "champion metrics s",
                "paired differences s",
                "fairness s",
                "interval work s",
                "process wall s",
                "process CPU s",
                "peak MB",
            ],
            rows,
            right=range(2, 9),
        )
    )
    print(f"\n{machine_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
