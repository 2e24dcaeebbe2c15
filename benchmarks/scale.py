"""Scale table on UCI Census-Income (KDD): stage times and peak memory at 10k, 100k and 1M rows,
a night with nothing new, and drift side by side with Evidently's default DataDriftPreset.

    .venv/bin/python -m benchmarks.scale [--full | --rows 10000,100000] [--keep]

By default 10k and 100k rows (a few minutes); ``--full`` adds 1M rows (about 20 more minutes on
2 cores, most of it in the evaluate and gate stages' bootstraps).

For each size N, a throwaway workspace runs the census params (params/census_kdd.yaml: its own
expectation suite, ordinal encoding, fast drift engine) on data made from the published files:
the reference is the census *train* file and the current data the census *test* file, each
**resampled with replacement to N rows** (seeded), written in the published format to a
temporary mirror. Every stage is its real module in its own process (see ``benchmarks.common``).

Drift, side by side, on the same two files the drift stage compared (the window's training and
evaluation data): the project's fast engine (``detect_drift``) and, as the anchor, Evidently's
default ``Report([DataDriftPreset()])`` (its own method choice and thresholds), each in a fresh
process. Both get the same column types. The table gives the time of each, the speedup, whether
the per-column verdicts agree (and why not, where not), and how many columns bare p-value tests
(K-S, chi-square at p < 0.05) would flag on the same data: at large N they flag almost
everything, which is why the verdicts here rest on effect sizes (normed Wasserstein and
Jensen-Shannon distances with thresholds).
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.common import (
    ROOT,
    STAGE_HEADERS,
    Measured,
    PipelineRun,
    bench_env,
    fmt_mb,
    fmt_s,
    machine_note,
    make_workspace,
    run_measured,
    run_pipeline,
    stage_rows,
    table,
    workspace_params,
)

CENSUS_PARAMS = ROOT / "params" / "census_kdd.yaml"
DEFAULT_ROWS = (10_000, 100_000)
FULL_ROWS = (10_000, 100_000, 1_000_000)
SEED = 20260101
PVALUE_LEVEL = 0.05


# --------------------------------------------------------------------------- data
def resample_mirror(params_file: Path, n: int, dest: Path, seed: int = SEED) -> Path:
    """Write the dataset's reference and current files, each resampled with replacement to
    ``n`` rows, in the published format (headerless CSV, gzip), to ``dest``."""
    from pipelines.config import load_params

    params = load_params(params_file)
    ds = params.dataset
    if params.mirror is None:
        raise SystemExit("scale bench: the census params name no mirror")
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for f in ds.files:
        raw = pd.read_csv(
            params.mirror / f.name,
            header=None,
            sep=ds.separator,
            skiprows=f.skip_rows,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
        )
        sample = raw.iloc[rng.integers(0, len(raw), size=n)]
        with gzip.open(dest / f.name, "wt", compresslevel=1, newline="") as out:
            sample.to_csv(out, header=False, index=False, sep=ds.separator)
    return dest


# --------------------------------------------------------------------------- drift, side by side
SCENARIOS = ("same", "shifted")


def _drift_child(engine: str, scenario: str, out: Path) -> int:
    """In a workspace: score the window's train vs eval data with one engine; write the result.

    ``scenario``: ``same`` compares the two as they are (train vs test file: no drift expected);
    ``shifted`` keeps only the current rows whose covariate column (params ``simulate``, default
    the first numeric feature) is above its ``covariate_quantile``, the covariate-drift scenario
    of ``retrain simulate``, so that some columns drift and the verdicts can disagree."""
    from pipelines.config import load_params
    from pipelines.stages.drift import column_tests, detect_drift, read_frame, write_html_report

    params = load_params("params.yaml")
    train_path, eval_path = (params.paths.window_train, params.paths.window_eval)
    reference = read_frame(train_path, params.dataset)
    current = read_frame(eval_path, params.dataset)
    if scenario == "shifted":
        column = params.simulate.covariate_column or params.dataset.features.numeric[0]
        cut = current[column].quantile(params.simulate.covariate_quantile)
        current = current[current[column] > cut].reset_index(drop=True)
    result: dict[str, Any] = {
        "engine": engine,
        "scenario": scenario,
        "n_reference": len(reference),
        "n_current": len(current),
    }
    feature_tests, target_test = column_tests(params.dataset, params.drift)
    tests = [*feature_tests, target_test]
    t0, c0 = time.perf_counter(), time.process_time()
    if engine == "fast":
        result["shift"] = (
            f"current rows with {column} above its {params.simulate.covariate_quantile:g} quantile"
            if scenario == "shifted"
            else "none"
        )
        r = detect_drift(reference, current, params.dataset, params.drift, engine="fast")
        result["seconds"], result["cpu"] = time.perf_counter() - t0, time.process_time() - c0
        result["columns"] = {
            c.column: {"method": c.method, "score": c.score, "drifted": c.drifted}
            for c in (*r.columns, r.target)
        }
        t1 = time.perf_counter()
        html = Path(".bench-drift-report") / "drift.html"  # in the throwaway workspace
        write_html_report(reference, current, params.dataset, params.drift, html)
        result["html_seconds"] = time.perf_counter() - t1
        result["html_rows"] = params.drift.report_sample_rows
        # what bare p-value tests would say on the same data
        pv = params.drift.model_copy(
            update={
                "numeric_method": "ks",
                "numeric_threshold": PVALUE_LEVEL,
                "categorical_method": "chisquare",
                "categorical_threshold": PVALUE_LEVEL,
                "target_method": "chisquare",
                "target_threshold": PVALUE_LEVEL,
            }
        )
        p = detect_drift(reference, current, params.dataset, pv, engine="fast")
        result["pvalue_flagged"] = [c.column for c in (*p.columns, p.target) if c.drifted]
    else:
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        from pipelines.stages.drift.evidently_engine import _definition, _for_evidently

        definition = _definition(tests)
        with np.errstate(divide="ignore", invalid="ignore"):
            snapshot = Report([DataDriftPreset()], include_tests=True).run(
                reference_data=Dataset.from_pandas(
                    _for_evidently(reference, tests), data_definition=definition
                ),
                current_data=Dataset.from_pandas(
                    _for_evidently(current, tests), data_definition=definition
                ),
            )
            d = snapshot.dict()
        result["seconds"], result["cpu"] = time.perf_counter() - t0, time.process_time() - c0
        by_id = {m["id"]: m for m in d["metrics"] if "column" in m["config"]}
        failed = {
            by_id[t["metric_config"]["metric_id"]]["config"]["column"]: t["status"] == "FAIL"
            for t in d["tests"]
            if t["metric_config"]["metric_id"] in by_id
        }
        result["columns"] = {
            m["config"]["column"]: {
                "method": m["config"]["method"],
                "score": float(m["value"]),
                "drifted": failed.get(m["config"]["column"]),
            }
            for m in by_id.values()
        }
    out.write_text(json.dumps(result))
    return 0


def compare_drift(ws: Path, scenario: str) -> dict[str, Any]:
    """Both engines in their own processes on the same data; times, memory and verdicts."""
    env = bench_env()
    out: dict[str, Any] = {"scenario": scenario}
    for engine in ("fast", "evidently"):
        path = ws / f".drift-{engine}-{scenario}.json"
        cmd = [sys.executable, "-m", "benchmarks.scale", "drift-child", engine, scenario, str(path)]
        m = run_measured(f"drift {engine} ({scenario})", cmd, ws, env)
        out[engine] = {**json.loads(path.read_text()), "process": m}
        path.unlink()
    fast, evid = out["fast"]["columns"], out["evidently"]["columns"]
    disagreements, diffs = [], []
    for col, f in fast.items():
        e = evid.get(col)
        if e is None:
            disagreements.append(f"{col}: not scored by Evidently")
            continue
        if f["score"] is not None and f["method"] in _EVIDENTLY_NAMES.get(e["method"], ()):
            diffs.append(abs(float(f["score"]) - float(e["score"])))
        if bool(e["drifted"]) != bool(f["drifted"]):
            why = (
                f"Evidently chose {e['method']} ({e['score']:.4g}), the project {f['method']} "
                f"({f['score']:.4g})"
            )
            disagreements.append(
                f"{col}: fast {'drift' if f['drifted'] else 'ok'}, Evidently "
                f"{'drift' if e['drifted'] else 'ok'} - {why}"
            )
    out["agree"] = sum(
        bool(evid.get(c, {}).get("drifted")) == bool(f["drifted"]) for c, f in fast.items()
    )
    out["n_columns"] = len(fast)
    out["same_method"] = len(diffs)
    out["max_score_diff"] = max(diffs) if diffs else None
    out["disagreements"] = disagreements
    out["evidently_methods"] = sorted({e["method"] for e in evid.values()})
    return out


# Evidently's display names of the project's methods
_EVIDENTLY_NAMES = {
    "Wasserstein distance (normed)": ("wasserstein",),
    "Jensen-Shannon distance": ("jensenshannon",),
    "PSI": ("psi",),
    "K-S p_value": ("ks",),
    "chi-square p_value": ("chisquare",),
}


# --------------------------------------------------------------------------- one size
def run_size(n: int, work: Path, progress=print) -> tuple[PipelineRun, list[dict[str, Any]], str]:
    raw = yaml.safe_load(CENSUS_PARAMS.read_text())
    t0 = time.perf_counter()
    mirror = resample_mirror(CENSUS_PARAMS, n, work / "mirror")
    progress(f"  resampled both files to {n:,} rows in {time.perf_counter() - t0:.0f} s")
    unpinned = {"reference": {"sha256": None}, "current": {"sha256": None}}  # resampled files
    ws = make_workspace(work / "project", workspace_params(raw, mirror, dataset=unpinned))
    run = run_pipeline(ws, progress)
    progress("  drift side by side: fast engine, then Evidently's default DataDriftPreset")
    drift = [compare_drift(ws, scenario) for scenario in SCENARIOS]
    return run, drift, _rows(ws)


def _rows(ws: Path) -> str:
    import pyarrow.parquet as pq

    n = {
        name: pq.read_metadata(ws / "data" / "window" / f"{name}.parquet").num_rows
        for name in ("train", "eval")
    }
    return f"{n['train']:,} / {n['eval']:,}"


# --------------------------------------------------------------------------- report
def drift_rows(n: int, d: dict[str, Any]) -> list[list[str]]:
    f, e = d["fast"], d["evidently"]
    fp: Measured = f["process"]
    ep: Measured = e["process"]
    drifted_f = sum(bool(c["drifted"]) for c in f["columns"].values())
    drifted_e = sum(bool(c["drifted"]) for c in e["columns"].values())
    diff = d["max_score_diff"]
    return [
        [
            f"{n:,}",
            d["scenario"],
            f"{f['n_reference']:,} / {f['n_current']:,}",
            fmt_s(f["seconds"]),
            fmt_s(f["html_seconds"]),
            fmt_mb(fp.peak_mb),
            fmt_s(e["seconds"]),
            fmt_mb(ep.peak_mb),
            f"{e['seconds'] / f['seconds']:.0f}x",
            f"{e['cpu'] / f['cpu']:.0f}x",
            f"{e['seconds'] / (f['seconds'] + f['html_seconds']):.1f}x",
            f"{d['agree']}/{d['n_columns']}",
            f"{drifted_f} / {drifted_e}",
            "-" if diff is None else f"{diff:.1e} ({d['same_method']})",
            f"{len(f['pvalue_flagged'])}/{d['n_columns']}",
        ]
    ]


DRIFT_HEADERS = (
    "N",
    "current",
    "ref / cur rows",
    "fast s",
    "+ HTML s",
    "fast peak MB",
    "Evidently s",
    "Evid. peak MB",
    "speedup",
    "speedup CPU",
    "speedup incl. HTML",
    "verdicts agree",
    "drifted fast / Evid.",
    "max |score diff| (cols)",
    "p<0.05 tests flag",
)


def format_report(
    results: list[tuple[int, PipelineRun, dict[str, Any], str]], seconds: float
) -> str:
    rows: list[list[str]] = []
    for n, run, _, counts in results:
        rows += [[f"{n:,}", counts, *r] for r in stage_rows(run)]
    headers = ("N", "train / eval rows", *STAGE_HEADERS)
    lines = [
        "## Scale: UCI Census-Income (KDD), params/census_kdd.yaml",
        "",
        "Data: reference = census train file (199,523 rows), current = census test file "
        "(99,762 rows), each RESAMPLED WITH REPLACEMENT to N rows (seed "
        f"{SEED}); the window then drops held-out rows whose content also occurs in training "
        "(duplicates), so eval has fewer than N rows. 40 features (7 numeric, 33 categorical) + "
        "target. Stages: each its real module in a fresh process, run with its dvc.yaml "
        "command; 'core s' = time inside the core functions named in the last column, "
        "'process' = the whole process (start-up, imports, I/O, MLflow); peak RSS of that "
        "process (os.wait4). 'gate (vs champion)' is the gate again once register made the "
        "first champion: it then scores the champion on the same rows and runs the paired "
        "bootstrap, as on every night with a champion.",
        "",
        table(headers, rows, right=(0, 1, 3, 4, 5, 6)),
        "",
        "### Drift at N rows: fast engine vs Evidently's default DataDriftPreset (the anchor)",
        "",
        "Same reference and current frames (the window's train / eval), same column types, each "
        "engine in its own process; times are the scoring call only (data already loaded). "
        "Current 'same': the eval data as it is (train vs test file, no drift expected); "
        "'shifted': only its rows above the covariate quantile of params simulate (the "
        "covariate_drift scenario), so that columns drift. '+ HTML' is the Evidently HTML report "
        "the drift stage also writes, on a seeded sample of drift.report_sample_rows rows per "
        "side. Speedup = Evidently s / fast s (CPU: the same with CPU seconds). 'max |score "
        "diff|' = the largest difference between the two engines' scores over the columns "
        "where both used the same method (how many). 'p<0.05 tests flag' = columns that K-S "
        "(numeric) and chi-square (categorical) at p < 0.05 would call drifted on the same data.",
        "",
        table(
            DRIFT_HEADERS,
            [r for n, _, ds, _ in results for d in ds for r in drift_rows(n, d)],
            right=[i for i in range(len(DRIFT_HEADERS)) if i != 1],
        ),
    ]
    for n, _, ds, _ in results:
        for d in ds:
            where = f"N={n:,}, {d['scenario']}"
            methods = ", ".join(d["evidently_methods"])
            if d["disagreements"]:
                lines.append(f"\n{where}: verdicts that differ (Evidently's methods: {methods}):")
                lines += [f"  - {x}" for x in d["disagreements"]]
            else:
                lines.append(f"\n{where}: every per-column verdict agrees ({methods}).")
            drifted = [c for c, v in d["fast"]["columns"].items() if v["drifted"]]
            if drifted:
                lines.append(f"{where}: drifted (fast engine): {', '.join(drifted)}")
            flagged = d["fast"]["pvalue_flagged"]
            if flagged:
                lines.append(
                    f"{where}: p-value tests at p < {PVALUE_LEVEL} would flag {len(flagged)}: "
                    + ", ".join(flagged)
                )
    lines += [
        "",
        f"Machine: {machine_note()}. Whole table: {seconds:.0f} s.",
    ]
    for n, run, _, _ in results:
        lines += [f"Note (N={n:,}): {x}" for x in run.notes]
    return "\n".join(lines)


def parse_rows(text: str) -> tuple[int, ...]:
    try:
        rows = tuple(int(float(x)) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rows: {text!r} is not a list of numbers") from None
    if not rows or min(rows) < 1000:
        raise argparse.ArgumentTypeError("--rows: sizes of at least 1000 rows")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.scale", description=__doc__.split("\n")[0])
    sizes = ap.add_mutually_exclusive_group()
    sizes.add_argument(
        "--rows", type=parse_rows, default=None, help="comma-separated sizes (default 10000,100000)"
    )
    sizes.add_argument("--full", action="store_true", help="10k, 100k and 1M rows")
    ap.add_argument("--keep", action="store_true", help="keep the throwaway workspaces")
    args = ap.parse_args(argv)
    rows = args.rows or (FULL_ROWS if args.full else DEFAULT_ROWS)
    t0 = time.perf_counter()
    results = []
    for n in rows:
        work = Path(tempfile.mkdtemp(prefix=f"retrain-benchmark-scale-{n}-"))
        print(f"scale bench: N = {n:,}", flush=True)
        try:
            run, drift, counts = run_size(n, work)
            results.append((n, run, drift, counts))
        finally:
            if args.keep:
                print(f"scale bench: workspace kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    print(format_report(results, time.perf_counter() - t0), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "drift-child":
        sys.path.insert(0, str(Path.cwd()))
        raise SystemExit(_drift_child(sys.argv[2], sys.argv[3], Path(sys.argv[4])))
    raise SystemExit(main())
