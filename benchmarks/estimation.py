"""Performance estimated without outcomes: how close the monitor's estimate comes to the
realised metric under covariate shift and under concept change, and how many answers earlier
an estimated drop is seen than the labelled one in the live loop.

Per dataset (Adult from ``params.yaml``, Census-Income (KDD) from ``params/census_kdd.yaml``,
both read by the project's own ``prepare``), one real model is fitted on a sample of the
reference rows (``train.fit``, small hyperparameters, as ``benchmarks.gate_decisions`` does).
The held-out file is split in two: ``CAL_ROWS`` rows are the evaluation's held-out rows (the
calibrator is fitted there, :func:`~pipelines.stages.evaluate.calibration.fit_calibrator`, and
the evaluated baseline measured there), the rest is the live population the scenarios draw from:

- covariate shift (the outcome given the inputs is the data's own): rows drawn uniformly, the
  older weighted up, only the young, only the lower half of education (its categories ordered
  by their positive rate on the reference rows), only ages 35-55 of the upper half (a
  population the model separates less well: its ROC AUC drops);
- concept change (the inputs' mix is the data's own): a share of the outcomes of people aged
  40 or more turned the other way, after the calibrator was fitted.

Table 1: per scenario, ``REPEATS`` samples of ``SAMPLE_ROWS`` live rows, each estimated by
:func:`~pipelines.monitor.estimate.estimate_metric` (the monitor's code, the calibrator's
bootstrap refits, ``monitor.estimated.draws``) and compared with the realised metric of its
outcomes: the error (mean and worst of |estimate - realised|), the widths of the estimate's
interval and of the one its realised value should fall in, how often it does, and how often the
monitor would call it a likely concept change.

Table 2, the live loop: rows of one scenario stream in; an answer's outcome arrives
``DELAY_ROWS`` answers later. Every ``STEP`` answers the monitor judges its window of the last
``WINDOW_ROWS`` answers: the *estimated* signal fires when the evaluated ROC AUC minus the top of
the estimate's interval exceeds ``monitor.estimated.max_drop``; the *labelled* signal when it
minus the top of the measured interval (DeLong, on the last ``WINDOW_ROWS`` answers whose
outcomes arrived) exceeds ``monitor.max_performance_drop``; the concept-change signal when the
realised ROC AUC on those labelled answers falls outside the interval estimated for it. The
table gives the answers streamed until each fires (median over ``STREAMS`` streams).

    python -m benchmarks.estimation [--datasets adult,census_kdd] [--repeats N] [--streams N]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.common import DATASETS, chosen_datasets, fit_real_model, machine_note, table

CAL_ROWS = 8_000  # the evaluation's held-out rows: the calibrator and the baseline
SAMPLE_ROWS = 2_000  # live rows per estimate in table 1
REPEATS = 30
METRICS = ("roc_auc", "accuracy", "f1")
WINDOW_ROWS, DELAY_ROWS, STEP, STREAM_MAX = 2_000, 5_000, 250, 30_000
STREAMS = 5


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "none", "covariate" or "concept"
    weights: str = "uniform"  # uniform, older, young, low_education, middle_upper
    flip: float = 0.0  # share of outcomes of people aged 40+ turned the other way


SCENARIOS = (
    Scenario("none", "none"),
    Scenario("older weighted x5 (age >= 50)", "covariate", "older"),
    Scenario("only the young (age < 30)", "covariate", "young"),
    Scenario("only the lower half of education", "covariate", "low_education"),
    Scenario("only age 35-55, upper half of education", "covariate", "middle_upper"),
    Scenario("10% of outcomes flipped, age >= 40", "concept", flip=0.10),
    Scenario("30% of outcomes flipped, age >= 40", "concept", flip=0.30),
)
LOOP = ("none", "only age 35-55, upper half of education", "30% of outcomes flipped, age >= 40")


@dataclass
class Population:
    name: str
    params: Any
    calibrator: Any
    baseline: dict[str, float]  # metric on the evaluation's held-out rows
    scores: Any
    y: Any
    age: Any
    low_education: Any
    real_auc: float


def build_population(name: str, seed: int = 0, progress: Any = print) -> Population:
    import pandas as pd

    from pipelines.data import feature_frame, labels
    from pipelines.monitor.estimate import realised_metric
    from pipelines.stages.evaluate.calibration import fit_calibrator
    from pipelines.stages.train import positive_proba

    t0 = time.perf_counter()
    real = fit_real_model(name, seed)
    params, data, ref, model = real.params, real.data, real.reference, real.model
    held = data.current.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cal, live = held.iloc[:CAL_ROWS], held.iloc[CAL_ROWS:].reset_index(drop=True)
    s_cal = positive_proba(model, feature_frame(cal, params.dataset))
    y_cal = labels(cal, params.dataset)
    calibrator = fit_calibrator(y_cal, s_cal, seed=params.evaluate.seed)
    thr = params.evaluate.decision_threshold
    baseline = {m: realised_metric(m, y_cal, s_cal, thr) for m in METRICS}
    # the lower half of education: its categories by positive rate on the reference rows
    edu = data.reference["education"].astype(str)
    rate = pd.Series(labels(data.reference, params.dataset), index=edu.index, dtype=float)
    order = rate.groupby(edu).mean().sort_values()
    share = edu.value_counts(normalize=True).reindex(order.index).cumsum()
    low = set(share[share <= 0.5].index)
    scores = positive_proba(model, feature_frame(live, params.dataset))
    y = labels(live, params.dataset)
    pop = Population(
        name, params, calibrator, baseline, scores, y,
        live["age"].to_numpy(dtype=float), live["education"].astype(str).isin(low).to_numpy(),
        realised_metric("roc_auc", y, scores, thr),
    )  # fmt: skip
    progress(
        f"estimation: {name}: {len(data.reference):,} + {len(data.current):,} rows prepared, "
        f"model on {len(ref):,}; calibrator and baseline on {CAL_ROWS:,} held-out rows "
        f"(ROC AUC {baseline['roc_auc']:.4f}); live pool {len(live):,} rows "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    return pop


def draw(pop: Population, sc: Scenario, n: int, rng: Any) -> tuple[Any, Any]:
    """``n`` live rows of the scenario: their scores and (possibly changed) outcomes."""
    import numpy as np

    if sc.weights == "older":
        w = np.where(pop.age >= 50, 5.0, 1.0)
    elif sc.weights == "young":
        w = (pop.age < 30).astype(float)
    elif sc.weights == "low_education":
        w = pop.low_education.astype(float)
    elif sc.weights == "middle_upper":
        w = ((pop.age >= 35) & (pop.age <= 55) & ~pop.low_education).astype(float)
    else:
        w = np.ones(len(pop.y))
    idx = rng.choice(len(pop.y), size=n, replace=True, p=w / w.sum())
    y = pop.y[idx].copy()
    if sc.flip:
        turn = (pop.age[idx] >= 40) & (rng.random(n) < sc.flip)
        y[turn] = 1 - y[turn]
    return pop.scores[idx], y


def _estimate(pop: Population, metric: str, s: Any, seed: int) -> Any:
    from pipelines.monitor.estimate import estimate_metric

    p = pop.params
    return estimate_metric(
        metric, s, pop.calibrator.apply(s), p.evaluate.decision_threshold,
        replicates=pop.calibrator.apply_replicates(s), confidence=p.evaluate.confidence,
        draws=p.monitor.estimated.draws, seed=seed,
    )  # fmt: skip


def accuracy_rows(pop: Population, repeats: int, seed: int) -> list[list[str]]:
    import numpy as np

    from pipelines.monitor.estimate import compare, realised_metric

    thr = pop.params.evaluate.decision_threshold
    rows = []
    for sc in SCENARIOS:
        for metric in METRICS:
            rng = np.random.default_rng([seed, SCENARIOS.index(sc), METRICS.index(metric)])
            errors, inside, realised_all, est_all, width, r_width = [], 0, [], [], [], []
            for i in range(repeats):
                s, y = draw(pop, sc, SAMPLE_ROWS, rng)
                est = _estimate(pop, metric, s, seed=i)
                realised = realised_metric(metric, y, s, thr)
                errors.append(abs(est.point - realised))
                inside += not compare(est, realised).outside
                realised_all.append(realised)
                est_all.append(est.point)
                width.append(est.upper - est.lower)
                r_width.append(est.realised_upper - est.realised_lower)
            rows.append(
                [
                    pop.name, sc.kind, sc.name, metric,
                    f"{pop.baseline[metric]:.3f}", f"{np.mean(realised_all):.3f}",
                    f"{np.mean(est_all):.3f}", f"{np.mean(width):.3f}", f"{np.mean(r_width):.3f}",
                    f"{np.mean(errors):.3f}", f"{np.max(errors):.3f}",
                    f"{100 * inside / repeats:.0f}%", f"{100 * (repeats - inside) / repeats:.0f}%",
                ]
            )  # fmt: skip
    return rows


def stream(pop: Population, sc: Scenario, seed: int) -> dict[str, int | None]:
    """One live stream: the answers streamed until each signal first fires (None: never)."""
    import numpy as np

    from pipelines.monitor.estimate import compare, realised_metric
    from pipelines.stages.evaluate import evaluate_scores

    p = pop.params
    thr = p.evaluate.decision_threshold
    delong = p.evaluate.model_copy(update={"linear_above_rows": 2})
    base = pop.baseline["roc_auc"]
    rng = np.random.default_rng([seed, SCENARIOS.index(sc), 99])
    s, y = draw(pop, sc, STREAM_MAX, rng)
    fired: dict[str, int | None] = {"estimated": None, "labelled": None, "concept": None}
    for t in range(STEP, STREAM_MAX + 1, STEP):
        if fired["estimated"] is None and t >= WINDOW_ROWS:
            est = _estimate(pop, "roc_auc", s[t - WINDOW_ROWS : t], seed=t)
            if base - est.upper > p.monitor.estimated.max_drop:
                fired["estimated"] = t
        arrived = t - DELAY_ROWS  # answers whose outcome is in by now
        if arrived >= p.monitor.min_labelled_rows:
            lo = max(0, arrived - WINDOW_ROWS)
            ls, ly = s[lo:arrived], y[lo:arrived]
            if fired["labelled"] is None:
                live = evaluate_scores(ly, ls, delong).metric("roc_auc")
                if base - live.upper > p.monitor.max_performance_drop:
                    fired["labelled"] = t
            if fired["concept"] is None:
                est = _estimate(pop, "roc_auc", ls, seed=t)
                realised = realised_metric("roc_auc", ly, ls, thr)
                if math.isfinite(realised) and compare(est, realised).outside:
                    fired["concept"] = t
        if all(v is not None for v in fired.values()):
            break
    return fired


def loop_rows(pop: Population, streams: int, seed: int) -> list[list[str]]:
    import numpy as np

    from pipelines.monitor.estimate import realised_metric

    thr = pop.params.evaluate.decision_threshold
    rows = []
    for name in LOOP:
        sc = next(s for s in SCENARIOS if s.name == name)
        got = [stream(pop, sc, seed + i) for i in range(streams)]
        s, y = draw(pop, sc, 50_000, np.random.default_rng([seed, 7]))
        truth = realised_metric("roc_auc", y, s, thr)

        def med(key: str, got: list[dict[str, int | None]] = got) -> str:
            vals = [g[key] for g in got if g[key] is not None]
            never = len(got) - len(vals)
            text = f"{int(np.median(vals)):,}" if vals else "never"
            return text + (f" ({never} of {len(got)} never)" if vals and never else "")

        leads = [
            g["labelled"] - g["estimated"]
            for g in got
            if g["labelled"] is not None and g["estimated"] is not None
        ]
        lead = f"{int(np.median(leads)):,}" if leads else "-"
        rows.append(
            [
                pop.name, sc.name, f"{pop.baseline['roc_auc']:.3f}", f"{truth:.3f}",
                med("estimated"), med("labelled"), lead, med("concept"),
            ]
        )  # fmt: skip
    return rows


HEADERS_1 = (
    "dataset", "kind", "scenario", "metric", "evaluated", "realised (mean)", "estimated (mean)",
    "estimate's interval", "realised's interval", "mean |error|", "worst |error|",
    "realised inside", "flagged concept change",
)  # fmt: skip
HEADERS_2 = (
    "dataset", "stream", "evaluated ROC AUC", "true ROC AUC", "estimated drop seen at",
    "labelled drop seen at", "rows earlier (median)", "concept change seen at",
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.estimation", description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    ap.add_argument("--repeats", type=int, default=REPEATS, help="samples per scenario, table 1")
    ap.add_argument("--streams", type=int, default=STREAMS, help="live streams per scenario")
    ap.add_argument("--full", action="store_true", help="100 samples, 20 streams")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    names = chosen_datasets(ap, args.datasets)
    repeats = 100 if args.full else args.repeats
    streams = 20 if args.full else args.streams
    t0 = time.perf_counter()
    pops = [build_population(n, args.seed) for n in names]
    acc = [r for pop in pops for r in accuracy_rows(pop, repeats, args.seed)]
    print()
    print(table(HEADERS_1, acc, right=tuple(range(4, 13))))
    loop = [r for pop in pops for r in loop_rows(pop, streams, args.seed)]
    print()
    print(table(HEADERS_2, loop, right=tuple(range(2, 8))))
    print()
    p = pops[0].params
    print(
        f"{repeats} samples of {SAMPLE_ROWS:,} live rows per scenario and metric; interval "
        f"{p.evaluate.confidence:.0%}, {p.monitor.estimated.draws} draws; live loop: window "
        f"{WINDOW_ROWS:,} answers, outcomes {DELAY_ROWS:,} answers late, judged every {STEP} "
        f"answers, {streams} streams of at most {STREAM_MAX:,}; max drop "
        f"{p.monitor.estimated.max_drop} (estimated) and {p.monitor.max_performance_drop} "
        f"(measured, DeLong interval); {time.perf_counter() - t0:.0f} s in all; {machine_note()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
