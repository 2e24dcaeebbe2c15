"""The gate's decisions on simulated nights with known truth: how often it promotes a challenger
it should not, and how often it blocks one that is better.

Per dataset (Adult from ``params.yaml``, Census-Income (KDD) from ``params/census_kdd.yaml``,
both read by the project's own ``prepare``), one real model is fitted on a sample of the
reference rows (``train.fit``, small hyperparameters) and scores a pool of held-out rows: the
population. From its scores the champion and each scenario's challenger are made with a known
quality on that population:

- ``z = logit(score) + sigma * sd * noise``, with ``sigma`` set by bisection so that the ROC AUC
  on the population is what the scenario says (the champion sits ``HEADROOM`` below the real
  model, so a challenger can be better by 0.03); each model has noise of its own, so "equal"
  is two different models of the same quality. Noise alone moves small groups' rates, so a
  challenger meant to keep the champion's fairness is the first of ``FAIR_TRIES`` noise draws
  whose every fairness measure is within half the fairness margin of the champion's (or the
  closest one; the table shows the true change either way);
- a fairness change: the logits of the group of the first sensitive attribute selected most
  often are raised until its demographic parity difference is worse than the champion's by
  twice the gate's ``fairness_regression_margin``;
- probabilities from ``z`` by a logistic fit on the population (each model calibrated the way
  a well-fitted model is), so the gate's absolute bounds judge them as they would a real model.

Each night draws fresh held-out rows (without replacement) and runs the gate's own code on
them: :func:`~pipelines.stages.gate.evidence_from_scores`, the function the gate stage makes its
evidence with, and :func:`~pipelines.stages.gate.decide` with the dataset's ``gate`` section;
only the serving check (a file round-trip) and validation are left out. The truth is measured
on the population: a pass is a *false promotion* when the challenger is worse by the
non-inferiority margin or more, or regresses on a fairness measure beyond the fairness margin;
a non-pass of a challenger better on ROC AUC without a fairness regression is *wrongly blocked*.

By default 50 nights per scenario and size with 200 resamples per interval (a few minutes on
2 cores); ``--full``: 200 nights with the params' own 1,000 resamples.

    python -m benchmarks.gate_decisions [--full] [--nights N] [--datasets adult,census_kdd]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.common import DATASETS, chosen_datasets, fit_real_model, machine_note, table

POOL_ROWS = 40_000  # held-out rows at most: the population the truth is measured on
HEADROOM = 0.035  # the champion's ROC AUC below the real model's: room for "better by 0.03"
SIZES = (2_000, 400)  # fresh held-out rows per night
DEFAULT_NIGHTS, FULL_NIGHTS = 50, 200
FAIR_TRIES = 5  # noise draws to find a challenger without a fairness change
DEFAULT_BOOTSTRAP = 200  # resamples per interval by default; --full: the params' own (1,000)
BLOCKERS = {
    "metric": "bounds",
    "comparison": "comparison",
    "fairness": "fairness bounds",
    "fairness_regression": "fairness regression",
    "validation": "validation",
    "serving": "serving",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    auc_delta: float  # challenger - champion ROC AUC on the population
    fairness_change: bool = False


SCENARIOS = (
    Scenario("equal", 0.0),
    Scenario("better by 0.01", 0.01),
    Scenario("better by 0.03", 0.03),
    Scenario("worse by 0.01", -0.01),
    Scenario("worse by 0.03", -0.03),
    Scenario("equal, fairness worse", 0.0, True),
    Scenario("better by 0.03, fairness worse", 0.03, True),
)


@dataclass(frozen=True)
class Truth:
    """A challenger against the champion on the whole population."""

    auc_delta: float
    fairness_regression: float  # the worst measure's change, worse-is-positive
    fairness_measure: str  # which measure, for which attribute
    should_pass: bool | None  # True: better, False: must not pass, None: either is right


@dataclass
class Population:
    """One dataset's held-out pool with the champion's and each challenger's probabilities."""

    name: str
    params: Any
    y: Any
    sensitive: Any
    real_auc: float
    champion: Any
    challengers: dict[str, Any]
    truths: dict[str, Truth]


# --------------------------------------------------------------------------- the models
def _logit(p: Any) -> Any:
    import numpy as np

    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _auc(y: Any, s: Any) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _sigma_for(target: float, base: Any, noise: Any, y: Any) -> float:
    """The noise scale at which ``base + sigma * noise`` has ROC AUC ``target`` on ``y``."""
    lo, hi = 0.0, 1.0
    while _auc(y, base + hi * noise) > target:
        hi *= 2
        if hi > 1e3:
            raise ValueError(f"cannot bring the ROC AUC down to {target}")
    if _auc(y, base) < target:
        raise ValueError(f"ROC AUC {target} is above the real model's {_auc(y, base):.4f}")
    for _ in range(25):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _auc(y, base + mid * noise) > target else (lo, mid)
    return (lo + hi) / 2


def _calibrated(z: Any, y: Any) -> Any:
    """Probabilities from scores by a logistic fit on the population (monotone: same AUC)."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6).fit(z.reshape(-1, 1), y)
    return fit.predict_proba(z.reshape(-1, 1))[:, 1]


def _regressions(params: Any, y: Any, labels: Any, p_new: Any, p_old: Any) -> dict[str, float]:
    """Each attribute's measure's change (worse-is-positive) on the population, as the gate
    measures it (over the groups large enough for each measure)."""
    from pipelines.stages.fairness.core import MEASURES
    from pipelines.stages.fairness.intervals import fairness_intervals
    from pipelines.stages.gate.rules import FAIRNESS_LOWER_IS_BETTER

    thr = params.evaluate.decision_threshold
    given = {str(m): k for m, k in params.gate.fairness_min_group_size.items()}
    sizes = {m: given.get(m, params.fairness.min_group_size) for m in MEASURES}
    got = fairness_intervals(
        y,
        (p_new >= thr).astype(int),
        labels,
        sizes,
        params.evaluate.bootstrap_samples,
        params.evaluate.confidence,
        params.evaluate.seed,
        other_pred=(p_old >= thr).astype(int),
        linear_above_rows=1,  # the points are all the truth needs: no resamples
    )
    out = {}
    for attr, measures in got.measures.items():
        for m, est in measures.items():
            old = got.other[attr][m]
            if math.isfinite(est.point) and math.isfinite(old):
                change = est.point - old
                out[f"{m} ({attr})"] = change if m in FAIRNESS_LOWER_IS_BETTER else -change
    return out


def build_population(name: str, seed: int = 0, progress: Any = print) -> Population:
    """Prepare the dataset as the project does, fit the real model, make the scenarios' models."""
    import numpy as np

    from pipelines.data import feature_frame, labels
    from pipelines.stages.fairness.intervals import attribute_labels
    from pipelines.stages.train import positive_proba

    t0 = time.perf_counter()
    real = fit_real_model(name, seed)
    params, data, ref, model = real.params, real.data, real.reference, real.model
    pool = data.current.sample(min(POOL_ROWS, len(data.current)), random_state=seed)
    pool = pool.reset_index(drop=True)
    y = labels(pool, params.dataset)
    base = _logit(positive_proba(model, feature_frame(pool, params.dataset)))
    real_auc = _auc(y, base)
    progress(
        f"gate decisions: {name}: {len(data.reference):,} + {len(data.current):,} rows prepared, "
        f"model on {len(ref):,}, ROC AUC {real_auc:.4f} on {len(pool):,} held-out rows "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    rng = np.random.default_rng(seed)
    scale = float(base.std())
    sensitive = pool[list(params.dataset.sensitive)].reset_index(drop=True)
    labels_by_attr = attribute_labels(
        sensitive, params.fairness, params.gate.fairness_include_intersection
    )
    champion_auc = real_auc - HEADROOM

    def model_of(auc: float) -> Any:
        noise = rng.normal(size=len(y)) * scale
        return base + _sigma_for(auc, base, noise, y) * noise

    champion = _calibrated(model_of(champion_auc), y)
    margin = params.gate.fairness_regression_margin

    def fair_model_of(auc: float) -> Any:
        """A model of this quality whose fairness is the champion's (within half the margin, on
        the population): noise alone moves small groups' rates, so up to ``FAIR_TRIES`` draws."""
        best = None
        for _ in range(FAIR_TRIES):
            z = model_of(auc)
            worst = max(
                _regressions(params, y, labels_by_attr, _calibrated(z, y), champion).values()
            )
            if best is None or worst < best[0]:
                best = (worst, z)
            if worst <= margin / 2:
                break
        assert best is not None
        return best[1]

    thr = params.evaluate.decision_threshold
    attr = params.dataset.sensitive[0]
    groups = sensitive[attr].astype(str).to_numpy()
    favoured = max(np.unique(groups), key=lambda g: float(np.mean(champion[groups == g] >= thr)))
    target = 2 * margin
    dpd = f"demographic_parity_difference ({attr})"
    challengers, truths = {}, {}
    for sc in SCENARIOS:
        z = fair_model_of(champion_auc + sc.auc_delta)
        if sc.fairness_change:  # raise the favoured group until the gap widens by `target`
            lo, hi = 0.0, 4.0
            for _ in range(30):
                mid = (lo + hi) / 2
                shifted = _calibrated(z + mid * (groups == favoured), y)
                got = _regressions(params, y, labels_by_attr, shifted, champion)[dpd]
                lo, hi = (mid, hi) if got < target else (lo, mid)
            z = z + hi * (groups == favoured)
        p = _calibrated(z, y)
        regs = _regressions(params, y, labels_by_attr, p, champion)
        delta, measure = _auc(y, p) - _auc(y, champion), max(regs, key=regs.__getitem__)
        worst = regs[measure]
        if delta <= -params.gate.non_inferiority_margin + 1e-3:
            should: bool | None = False
        elif worst > margin:
            should = False
        elif delta >= 0.005:
            should = True
        else:
            should = None
        challengers[sc.name], truths[sc.name] = p, Truth(delta, worst, measure, should)
    return Population(name, params, y, sensitive, real_auc, champion, challengers, truths)


# --------------------------------------------------------------------------- one night
def night_decision(params: Any, y: Any, p_new: Any, p_old: Any, sensitive: Any) -> Any:
    """The gate's decision on these rows: the evidence the gate stage makes from the two
    models' scores (:func:`~pipelines.stages.gate.evidence_from_scores`, the same function; only
    the serving check, a file round-trip, and validation are left out), judged by
    :func:`~pipelines.stages.gate.decide`."""
    from datetime import UTC, datetime

    from pipelines.stages.gate import decide, evidence_from_scores

    scored = evidence_from_scores(
        y, p_new, sensitive, params, proba_old=p_old, champion_version="1"
    )  # drawn without replacement: every row distinct
    return decide(scored.evidence, params.gate, now=datetime(2026, 1, 1, tzinfo=UTC))


def _blockers(decision: Any) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                BLOCKERS.get(c.group, c.group)
                for c in decision.checks
                if c.group in BLOCKERS and not c.waived and c.verdict in ("fail", "insufficient")
            }
        )
    )


_POP: dict[str, Population] = {}  # the populations, shared with forked workers


def _run_nights(task: tuple[str, str, int, int, int]) -> list[tuple[str, tuple[str, ...]]]:
    """``nights`` nights of one scenario at one size: each night's verdict and what blocked it.
    Night ``i`` draws the same rows in every scenario (common random numbers)."""
    import numpy as np

    name, scenario, size, nights, seed = task
    pop = _POP[name]
    out = []
    for i in range(nights):
        rng = np.random.default_rng([seed, size, i])
        rows = rng.choice(len(pop.y), size=min(size, len(pop.y)), replace=False)
        d = night_decision(
            pop.params,
            pop.y[rows],
            pop.challengers[scenario][rows],
            pop.champion[rows],
            pop.sensitive.iloc[rows].reset_index(drop=True),
        )
        out.append((d.verdict, _blockers(d)))
    return out


# --------------------------------------------------------------------------- the table
SHORT = {
    "demographic_parity_difference": "DPD",
    "equalized_odds_difference": "EOD",
    "disparate_impact_ratio": "DIR",
}


def _short(measure: str) -> str:
    """``"disparate_impact_ratio (race)"`` -> ``"DIR race"``."""
    name, _, attr = measure.partition(" (")
    return f"{SHORT.get(name, name)} {attr.rstrip(')')}".strip()


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}%" if n else "-"


def _rows(
    pop: Population, scenario: Scenario, size: int, nights: list[tuple[str, tuple[str, ...]]]
) -> list[str]:
    truth = pop.truths[scenario.name]
    n = len(nights)
    verdicts = Counter(v for v, _ in nights)
    blocked = Counter(b for v, bs in nights if v != "pass" for b in bs)
    passed = verdicts["pass"]
    false_promotion = _pct(passed, n) if truth.should_pass is False else "-"
    wrongly_blocked = _pct(n - passed, n) if truth.should_pass is True else "-"
    if truth.should_pass is False and passed > 0.05 * n:
        false_promotion += " (over 5%)"
    by = ", ".join(f"{b} {_pct(k, n)}" for b, k in blocked.most_common(3)) or "-"
    return [
        pop.name,
        scenario.name,
        f"{truth.auc_delta:+.3f}",
        f"{truth.fairness_regression:+.3f} {_short(truth.fairness_measure)}",
        f"{size:,}",
        str(n),
        _pct(passed, n),
        _pct(verdicts["fail"], n),
        _pct(verdicts["insufficient"], n),
        false_promotion,
        wrongly_blocked,
        by,
    ]


HEADERS = (
    "dataset",
    "challenger",
    "true ΔAUC",
    "true worst fairness Δ",
    "rows",
    "nights",
    "pass",
    "fail",
    "not enough evidence",
    "false promotions",
    "wrongly blocked",
    "blocked by (share of nights)",
)


def _population_metrics(pop: Population) -> str:
    """The champion's bounded metrics on the whole population, beside the gate's bounds."""
    from pipelines.stages.evaluate import evaluate_scores
    from pipelines.stages.gate.rules import threshold_text

    cfg = pop.params.evaluate.model_copy(update={"linear_above_rows": 2})  # points only
    got = evaluate_scores(pop.y, pop.champion, cfg).metrics
    return ", ".join(
        f"{m} {got[m].point:.3f} ({threshold_text(b)})" for m, b in pop.params.gate.metrics.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="benchmarks.gate_decisions", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--full", action="store_true", help=f"{FULL_NIGHTS} nights, 1,000 resamples")
    ap.add_argument("--nights", type=int, default=None, help="nights per scenario and size")
    ap.add_argument("--bootstrap", type=int, default=None, help="resamples per interval")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="rows per night")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    names = chosen_datasets(ap, args.datasets)
    nights = args.nights or (FULL_NIGHTS if args.full else DEFAULT_NIGHTS)
    sizes = [int(s) for s in args.sizes.split(",")]
    t0 = time.perf_counter()
    for name in names:
        pop = build_population(name, args.seed)
        samples = args.bootstrap or (
            pop.params.evaluate.bootstrap_samples if args.full else DEFAULT_BOOTSTRAP
        )
        pop.params = pop.params.model_copy(
            update={
                "evaluate": pop.params.evaluate.model_copy(update={"bootstrap_samples": samples})
            }
        )
        _POP[name] = pop
    tasks = [
        (n, sc.name, size, nights, args.seed) for n in names for size in sizes for sc in SCENARIOS
    ]
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(args.jobs) as workers:
            results = workers.map(_run_nights, tasks, chunksize=1)
    else:
        results = [_run_nights(t) for t in tasks]
    by_task = dict(zip(((n, s, z) for n, s, z, _, _ in tasks), results, strict=True))
    rows = [
        _rows(_POP[n], sc, size, by_task[(n, sc.name, size)])
        for n in names
        for size in sizes
        for sc in SCENARIOS
    ]
    print()
    print(table(HEADERS, rows, right=(2, 3, 4, 5, 6, 7, 8, 9, 10)))
    print()
    for name in names:
        pop = _POP[name]
        gate = pop.params.gate
        print(
            f"{name}: real model ROC AUC {pop.real_auc:.4f} on {len(pop.y):,} held-out rows; "
            f"champion on them {_population_metrics(pop)}; non-inferiority margin "
            f"{gate.non_inferiority_margin}, fairness regression margin "
            f"{gate.fairness_regression_margin}; {pop.params.evaluate.bootstrap_samples} "
            "resamples per interval"
        )
    print(
        f"{nights} nights per row; {args.jobs} worker(s); "
        f"{time.perf_counter() - t0:.0f} s in all; {machine_note()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
