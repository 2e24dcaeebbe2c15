"""The monitor's read of the prediction log: one pass, before and after bounding it.

    .venv/bin/python -m benchmarks.monitor [--rows 1000000,10000000] [--days 30]

A folder prediction log (the local default) is written with N logged answers spread evenly over
``--days`` days up to now, in the storage format serving writes (one Parquet file per hour),
and outcomes for half of them an hour after their answer. Each side reads what one monitor
pass read, in a fresh process (wall time and peak memory from ``os.wait4``):

- **before**: the answers of the window, again with every outcome ever fed back (the live
  performance), then every answer and every outcome ever logged (landing the outcomes): three
  reads, the last two growing with the whole history;
- **after** (:func:`pipelines.monitor.run.run_monitor` now): one read of the answers and the
  outcomes over ``max(monitor.window_hours, monitor.outcome_horizon_hours)`` (24 h here), both
  sides judged and landed from the same frames.

Not a test: the numbers depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, bench_env, machine_note, run_measured, table

SIZES = (1_000_000,)
FULL = (1_000_000, 10_000_000)

BEFORE = """
import sys
from datetime import UTC, datetime, timedelta
from pipelines.config import load_params
from pipelines.predlog import readers as r
p = load_params(sys.argv[1])
since = datetime.now(UTC) - timedelta(hours=p.monitor.window_hours)
preds = r.read_predictions(p, since)                                  # drift, the window
labelled = r.join(r.read_predictions(p, since), r.read_feedback(p))   # performance: every outcome
landing = r.join(r.read_predictions(p), r.read_feedback(p))           # landing: the whole log
print(len(preds), len(labelled), len(landing))
"""

AFTER = """
import sys
from datetime import UTC, datetime, timedelta
from pipelines.config import load_params
from pipelines.predlog import readers as r
p = load_params(sys.argv[1])
m = p.monitor
now = datetime.now(UTC)
span = timedelta(hours=max(m.window_hours, m.outcome_horizon_hours))
preds, feedback = r.read_span(p, now - span)
labelled = r.join(preds, feedback)
print(len(preds), len(labelled), len(labelled))
"""


def write_log(folder: Path, rows: int, days: float, features: dict[str, list[str]]) -> int:
    """``rows`` answers over ``days`` days up to now, one Parquet file per hour, and outcomes
    for every other answer an hour later; the rows inside the last 24 hours."""
    import numpy as np
    import orjson
    import pandas as pd

    rng = np.random.default_rng(0)
    now = time.time()
    ts = np.sort(now - rng.uniform(0, days * 86400, rows))
    templates = []  # a thousand distinct records, as clients send them
    for k in range(1000):
        rec: dict[str, object] = {c: float(rng.integers(0, 100)) for c in features["numeric"]}
        rec |= {c: f"{c}-{k % 7}" for c in features["categorical"]}
        templates.append(orjson.dumps([rec]))
    pick = rng.integers(0, len(templates), rows)
    ids = np.char.add("bench-", np.arange(rows).astype(str))
    predictions = pd.DataFrame(
        {
            "request_id": ids,
            "ts": pd.to_datetime(ts, unit="s", utc=True),
            "model_version": "1",
            "arm": "champion",
            "probabilities": [b"[0.25]"] * rows,
            "inputs": np.asarray(templates, dtype=object)[pick],
        }
    )
    fed = np.arange(0, rows, 2)
    feedback = pd.DataFrame(
        {
            "request_id": ids[fed],
            "row": np.zeros(len(fed), dtype="int32"),
            "label": np.where(rng.random(len(fed)) < 0.25, ">50K", "<=50K"),
            "ts": pd.to_datetime(ts[fed] + 3600, unit="s", utc=True),
        }
    )
    for kind, frame in (("predictions", predictions), ("feedback", feedback)):
        hours = frame["ts"].dt.strftime("%Y-%m-%dT%H")
        for hour, part in frame.groupby(hours, sort=True):
            d = folder / kind / str(hour)
            d.mkdir(parents=True, exist_ok=True)
            part.to_parquet(d / "hour-bench.parquet", index=False)
    return int((ts >= now - 86400).sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.monitor", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default=None, help="logged answers, e.g. 1000000,10000000")
    ap.add_argument("--full", action="store_true", help="1M and 10M logged answers")
    ap.add_argument("--days", type=float, default=30.0, help="the history they span")
    ap.add_argument("--after-only", action="store_true", help="skip the old pass (memory)")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.rows.split(",")] if args.rows else (FULL if args.full else SIZES)

    from pipelines.config import load_params

    params = load_params(ROOT / "params.yaml")
    feats = params.dataset.features
    features = {"numeric": list(feats.numeric), "categorical": list(feats.categorical)}
    rows_out = []
    t_all = time.perf_counter()
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
        try:
            log = work / "live"
            t0 = time.perf_counter()
            window = write_log(log, n, args.days, features)
            made = time.perf_counter() - t0
            size_mb = sum(f.stat().st_size for f in log.rglob("*.parquet")) / 2**20
            env = bench_env({"RETRAIN_PREDICTION_LOG": str(log)})
            pfile = str(ROOT / "params.yaml")
            measured = {}
            sides = [("after", AFTER)] + ([] if args.after_only else [("before", BEFORE)])
            for side, script in sides:
                cmd = [sys.executable, "-c", script, pfile]
                # a pass that runs out of memory is a result too: reported, not raised
                measured[side] = run_measured(f"{side} {n:,}", cmd, cwd=work, env=env, check=False)
            a = measured["after"]
            b = measured.get("before")
            if b is None:  # --after-only
                rows_out.append([f"{n:,}", f"{window:,}", f"{size_mb:,.0f} MB", "-", "-",
                                 f"{a.wall:.1f}", f"{a.peak_mb:,.0f}", "-"])  # fmt: skip
                print(f"  {n:,} answers written in {made:.0f} s; read: after {a.wall:.1f} s "
                      f"({a.peak_mb:,.0f} MB)", flush=True)  # fmt: skip
                continue
            b_s = (
                f"{b.wall:.1f}"
                if b.returncode == 0
                else f"killed after {b.wall:.0f} (exit {b.returncode})"
            )
            rows_out.append(
                [
                    f"{n:,}",
                    f"{window:,}",
                    f"{size_mb:,.0f} MB",
                    b_s,
                    f"{b.peak_mb:,.0f}",
                    f"{a.wall:.1f}",
                    f"{a.peak_mb:,.0f}",
                    f"{b.wall / a.wall:.1f}x" if b.returncode == 0 else "-",
                ]
            )
            print(f"  {n:,} answers written in {made:.0f} s; read: before {b_s} s "
                  f"({b.peak_mb:,.0f} MB), after {a.wall:.1f} s ({a.peak_mb:,.0f} MB)",
                  flush=True)  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
    headers = ["logged answers", "in the window", "log on disk", "before s", "before MB",
               "after s", "after MB", "faster"]  # fmt: skip
    print(
        "\n".join(
            [
                f"## The monitor's read of the prediction log, one pass ({args.days:g} days of "
                "history, a 24 h window, outcomes for half the answers)",
                "",
                "before: the window's answers, then with every outcome ever fed back, then "
                "every answer and outcome ever logged (landing); after: one read of answers and "
                "outcomes over the window. Fresh process each; peak RSS from os.wait4.",
                "",
                table(headers, rows_out, right=tuple(range(8))),
                "",
                f"Machine: {machine_note()}. Whole table: {time.perf_counter() - t_all:.0f} s.",
            ]
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
