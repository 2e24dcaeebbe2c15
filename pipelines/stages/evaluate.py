"""Stage `evaluate`: score held-out data and measure the model, each metric with a bootstrap CI.

The core, :func:`evaluate_scores`, is a function of labels, scores and :class:`EvaluateConfig`
that returns an :class:`Evaluation`; :func:`paired_bootstrap_difference` compares two models on
the same resamples (for the champion-vs-challenger gate). :func:`main` loads the model, scores
the data and writes metrics, plots and per-row predictions for the fairness stage.

The bootstrap is vectorised. A resample is a vector of row multiplicities (how often each row was
drawn), so every metric is a weighted sum over rows: the confusion counts, log loss, Brier score
and the calibration bins are one matrix product per block of resamples, and ROC AUC is the
weighted Mann-Whitney statistic (a cumulative sum over rows sorted by score, ties counting half).
The point estimate goes through the same code with all weights 1.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd

from pipelines.config import ConfigError, EvaluateConfig, MetricName, Params, load_params
from pipelines.data import DataError
from pipelines.files import write_atomic, write_json

METRICS: tuple[str, ...] = get_args(MetricName)
_LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece"})
ROC_MAX_POINTS = 200
CONFUSION_PLOT_ROWS = 2000  # dvc's confusion template counts rows: cap the file's size
_BLOCK = 64  # resamples per block at most
# Bytes the resample weights of one block may take: a block holds about 4 arrays of b x n
# 8-byte values (draws, offsets, counts, weights), so b shrinks as n grows and a million
# rows cost ~256 MB, not 64 x 1M x 32 B = 2 GB.
_BLOCK_BYTES = 256 * 2**20


def _block_size(n: int) -> int:
    return max(1, min(_BLOCK, _BLOCK_BYTES // (32 * max(n, 1))))


class EvaluationError(ValueError):
    """Labels or scores that cannot be evaluated; the message says what is wrong."""


# --------------------------------------------------------------------------- value objects
def _num(x: float) -> float | None:
    """JSON-safe float: NaN and infinities become null."""
    return float(x) if math.isfinite(x) else None


def _from_num(x: float | None, missing: float = math.nan) -> float:
    return missing if x is None else float(x)


@dataclass(frozen=True)
class MetricEstimate:
    """A point estimate and its percentile-bootstrap interval (NaN where undefined)."""

    point: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float | None]:
        return {"point": _num(self.point), "lower": _num(self.lower), "upper": _num(self.upper)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricEstimate:
        return cls(_from_num(d["point"]), _from_num(d["lower"]), _from_num(d["upper"]))


@dataclass(frozen=True)
class DifferenceEstimate:
    """new - old for one metric, with a paired-bootstrap interval (raw sign: see
    :func:`higher_is_better`)."""

    point: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, float | None]:
        return {"point": _num(self.point), "lower": _num(self.lower), "upper": _num(self.upper)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DifferenceEstimate:
        return cls(_from_num(d["point"]), _from_num(d["lower"]), _from_num(d["upper"]))


@dataclass(frozen=True)
class RocCurve:
    """ROC points (at most ROC_MAX_POINTS); the first threshold is +inf (nothing positive)."""

    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    thresholds: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float | None]]:
        return {
            "fpr": [float(v) for v in self.fpr],
            "tpr": [float(v) for v in self.tpr],
            "thresholds": [_num(v) for v in self.thresholds],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RocCurve:
        return cls(
            tuple(float(v) for v in d["fpr"]),
            tuple(float(v) for v in d["tpr"]),
            tuple(_from_num(v, math.inf) for v in d["thresholds"]),
        )


@dataclass(frozen=True)
class Confusion:
    """Counts at the decision threshold (actual x predicted)."""

    tn: int
    fp: int
    fn: int
    tp: int

    def to_dict(self) -> dict[str, int]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Confusion:
        return cls(int(d["tn"]), int(d["fp"]), int(d["fn"]), int(d["tp"]))


@dataclass(frozen=True)
class CalibrationBin:
    """One non-empty equal-width bin of predicted probability."""

    lower: float
    upper: float
    mean_predicted: float
    observed_rate: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "mean_predicted": self.mean_predicted,
            "observed_rate": self.observed_rate,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationBin:
        return cls(
            float(d["lower"]),
            float(d["upper"]),
            float(d["mean_predicted"]),
            float(d["observed_rate"]),
            int(d["count"]),
        )


@dataclass(frozen=True)
class Evaluation:
    """Everything measured about one model on one labelled data set."""

    n: int
    positives: int
    positive_rate: float
    predicted_positive_rate: float
    decision_threshold: float
    confidence: float
    bootstrap_samples: int
    seed: int
    metrics: Mapping[str, MetricEstimate]
    roc: RocCurve
    confusion: Confusion
    calibration: tuple[CalibrationBin, ...]

    def metric(self, name: str) -> MetricEstimate:
        _check_metric(name)
        return self.metrics[name]

    def flat_metrics(self) -> dict[str, float]:
        """``{metric: point, metric_lower: ..., metric_upper: ...}`` for ``dvc metrics``."""
        out: dict[str, float] = {}
        for name, m in self.metrics.items():
            for key, v in ((name, m.point), (f"{name}_lower", m.lower), (f"{name}_upper", m.upper)):
                if math.isfinite(v):
                    out[key] = float(v)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "positives": self.positives,
            "positive_rate": self.positive_rate,
            "predicted_positive_rate": self.predicted_positive_rate,
            "decision_threshold": self.decision_threshold,
            "confidence": self.confidence,
            "bootstrap_samples": self.bootstrap_samples,
            "seed": self.seed,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "roc": self.roc.to_dict(),
            "confusion": self.confusion.to_dict(),
            "calibration": [b.to_dict() for b in self.calibration],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evaluation:
        return cls(
            n=int(d["n"]),
            positives=int(d["positives"]),
            positive_rate=float(d["positive_rate"]),
            predicted_positive_rate=float(d["predicted_positive_rate"]),
            decision_threshold=float(d["decision_threshold"]),
            confidence=float(d["confidence"]),
            bootstrap_samples=int(d["bootstrap_samples"]),
            seed=int(d["seed"]),
            metrics={k: MetricEstimate.from_dict(v) for k, v in d["metrics"].items()},
            roc=RocCurve.from_dict(d["roc"]),
            confusion=Confusion.from_dict(d["confusion"]),
            calibration=tuple(CalibrationBin.from_dict(b) for b in d["calibration"]),
        )


# --------------------------------------------------------------------------- core
def higher_is_better(metric: str) -> bool:
    """False for losses (log_loss, brier, ece): there a negative difference is an improvement."""
    _check_metric(metric)
    return metric not in _LOWER_IS_BETTER


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")


def _check_inputs(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1:
        raise EvaluationError(f"y_true and proba must be 1-D (got shapes {y.shape}, {p.shape})")
    if len(y) != len(p):
        raise EvaluationError(f"y_true has {len(y)} rows but proba has {len(p)}")
    if len(y) < 2:
        raise EvaluationError(f"need at least 2 rows to evaluate, got {len(y)}")
    if not np.isin(y, (0, 1)).all():
        raise EvaluationError("y_true must hold only 0 and 1")
    if not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0:
        raise EvaluationError("proba must be finite probabilities in [0, 1]")
    y = y.astype(np.float64)
    positives = int(y.sum())
    if positives in (0, len(y)):
        raise EvaluationError(
            f"y_true holds a single class ({positives} positives in {len(y)} rows); "
            "ROC AUC and the class-wise metrics need both"
        )
    return y, p


@dataclass(frozen=True)
class _Scores:
    """Per-row columns of one model's scores, sorted by score; every metric sums over them."""

    n: int
    bins: int
    order: np.ndarray  # sorting permutation of the original rows
    columns: np.ndarray  # n x (5 + 3*bins), rows in score order
    neg: np.ndarray  # 1.0 where the sorted row is a negative
    pos_rows: np.ndarray  # sorted positions of the positives
    pos_tie_start: np.ndarray  # start / end of each positive's group of tied scores
    pos_tie_end: np.ndarray


def _prepare(y: np.ndarray, p: np.ndarray, cfg: EvaluateConfig) -> _Scores:
    n = len(y)
    order = np.argsort(p, kind="stable")
    ys, ps = y[order], p[order]
    pred = (ps >= cfg.decision_threshold).astype(np.float64)
    eps = np.finfo(np.float64).eps  # as sklearn's log_loss clips
    loss = -(
        ys * np.log(np.clip(ps, eps, 1 - eps)) + (1 - ys) * np.log(np.clip(1 - ps, eps, 1 - eps))
    )
    k = cfg.calibration_bins
    edges = np.linspace(0.0, 1.0, k + 1)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), np.searchsorted(edges[1:-1], ps)] = 1.0  # as calibration_curve
    columns = np.column_stack(
        [
            ys,
            pred,
            ys * pred,
            loss,
            (ps - ys) ** 2,
            onehot,
            onehot * ps[:, None],
            onehot * ys[:, None],
        ]
    )
    new_tie = np.r_[True, ps[1:] != ps[:-1]]
    tie_id = np.cumsum(new_tie) - 1
    starts = np.flatnonzero(new_tie)
    ends = np.r_[starts[1:], n]
    pos_rows = np.flatnonzero(ys == 1)
    return _Scores(
        n=n,
        bins=k,
        order=order,
        columns=columns,
        neg=1.0 - ys,
        pos_rows=pos_rows,
        pos_tie_start=starts[tie_id[pos_rows]],
        pos_tie_end=ends[tie_id[pos_rows]],
    )


def _metric_values(
    s: _Scores, weights: np.ndarray, names: tuple[str, ...] = METRICS
) -> dict[str, np.ndarray]:
    """Every metric in ``names`` for each row of ``weights`` (resamples x original rows)."""
    w = weights[:, s.order]
    sums = w @ s.columns
    n, k = float(s.n), s.bins
    pos, pred_pos, tp = sums[:, 0], sums[:, 1], sums[:, 2]
    fp, fn = pred_pos - tp, pos - tp
    tn = n - pos - fp
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if "roc_auc" in names:
            cum = np.zeros((len(w), s.n + 1))
            np.cumsum(w * s.neg, axis=1, out=cum[:, 1:])
            below = cum[:, s.pos_tie_start]
            tied = cum[:, s.pos_tie_end] - below
            wins = (w[:, s.pos_rows] * (below + 0.5 * tied)).sum(axis=1)
            neg_total = n - pos
            out["roc_auc"] = np.where((pos > 0) & (neg_total > 0), wins / (pos * neg_total), np.nan)
        out["accuracy"] = (tp + tn) / n
        out["f1"] = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        out["precision"] = np.where(pred_pos > 0, tp / pred_pos, 0.0)
        out["recall"] = np.where(pos > 0, tp / pos, 0.0)
    out["log_loss"] = sums[:, 3] / n
    out["brier"] = sums[:, 4] / n
    sum_p, sum_y = sums[:, 5 + k : 5 + 2 * k], sums[:, 5 + 2 * k :]
    out["ece"] = np.abs(sum_y - sum_p).sum(axis=1) / n
    return {name: out[name] for name in names}


def _resample_weights(n: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of bootstrap resamples as row multiplicities (same draws for the same seed)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < samples:
        b = min(_block_size(n), samples - done)
        idx = rng.integers(0, n, size=(b, n))
        idx += np.arange(b)[:, None] * n
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def _roc(y: np.ndarray, p: np.ndarray) -> RocCurve:
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, p)
    if len(fpr) > ROC_MAX_POINTS:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, ROC_MAX_POINTS)).astype(int))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    return RocCurve(tuple(map(float, fpr)), tuple(map(float, tpr)), tuple(map(float, thr)))


def evaluate_scores(y_true: np.ndarray, proba: np.ndarray, cfg: EvaluateConfig) -> Evaluation:
    """All metrics with percentile-bootstrap CIs, ROC points, confusion counts, calibration."""
    y, p = _check_inputs(y_true, proba)
    s = _prepare(y, p, cfg)
    point = _metric_values(s, np.ones((1, len(y))))
    draws: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for w in _resample_weights(len(y), cfg.bootstrap_samples, cfg.seed):
        for m, v in _metric_values(s, w).items():
            draws[m].append(v)
    metrics = {}
    for m in METRICS:
        lo, hi = _interval(np.concatenate(draws[m]), cfg.confidence)
        metrics[m] = MetricEstimate(float(point[m][0]), lo, hi)

    pred = p >= cfg.decision_threshold
    yb = y.astype(bool)
    confusion = Confusion(
        tn=int((~yb & ~pred).sum()),
        fp=int((~yb & pred).sum()),
        fn=int((yb & ~pred).sum()),
        tp=int((yb & pred).sum()),
    )
    k = cfg.calibration_bins
    edges = np.linspace(0.0, 1.0, k + 1)
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=k)
    sum_p = np.bincount(ids, weights=p, minlength=k)
    sum_y = np.bincount(ids, weights=y, minlength=k)
    calibration = tuple(
        CalibrationBin(
            lower=float(edges[i]),
            upper=float(edges[i + 1]),
            mean_predicted=float(sum_p[i] / count[i]),
            observed_rate=float(sum_y[i] / count[i]),
            count=int(count[i]),
        )
        for i in range(k)
        if count[i] > 0
    )
    return Evaluation(
        n=len(y),
        positives=int(y.sum()),
        positive_rate=float(y.mean()),
        predicted_positive_rate=float(pred.mean()),
        decision_threshold=cfg.decision_threshold,
        confidence=cfg.confidence,
        bootstrap_samples=cfg.bootstrap_samples,
        seed=cfg.seed,
        metrics=metrics,
        roc=_roc(y, p),
        confusion=confusion,
        calibration=calibration,
    )


def paired_bootstrap_difference(
    y_true: np.ndarray,
    proba_new: np.ndarray,
    proba_old: np.ndarray,
    metric: str,
    cfg: EvaluateConfig,
) -> DifferenceEstimate:
    """``metric(new) - metric(old)`` with a CI from resampling rows once for both models.

    Pairing removes the between-resample variance the two models share, so the interval is much
    narrower than comparing two separate CIs. The sign is raw: for losses a negative difference
    means the new model is better (see :func:`higher_is_better`).
    """
    return paired_bootstrap_differences(y_true, proba_new, proba_old, (metric,), cfg)[metric]


def paired_bootstrap_differences(
    y_true: np.ndarray,
    proba_new: np.ndarray,
    proba_old: np.ndarray,
    metrics: tuple[str, ...],
    cfg: EvaluateConfig,
) -> dict[str, DifferenceEstimate]:
    """:func:`paired_bootstrap_difference` for several metrics from one set of resamples (the
    same draws as one metric at a time, drawn once)."""
    for metric in metrics:
        _check_metric(metric)
    y, p_new = _check_inputs(y_true, proba_new)
    _, p_old = _check_inputs(y_true, proba_old)
    new, old = _prepare(y, p_new, cfg), _prepare(y, p_old, cfg)
    names = tuple(dict.fromkeys(metrics))
    ones = np.ones((1, len(y)))
    point_new, point_old = _metric_values(new, ones, names), _metric_values(old, ones, names)
    diffs: dict[str, list[np.ndarray]] = {m: [] for m in names}
    for w in _resample_weights(len(y), cfg.bootstrap_samples, cfg.seed):
        v_new, v_old = _metric_values(new, w, names), _metric_values(old, w, names)
        for m in names:
            diffs[m].append(v_new[m] - v_old[m])
    out = {}
    for m in names:
        lo, hi = _interval(np.concatenate(diffs[m]), cfg.confidence)
        out[m] = DifferenceEstimate(float(point_new[m][0] - point_old[m][0]), lo, hi)
    return out


# --------------------------------------------------------------------------- plots
def _figure(width: float = 5.0, height: float = 4.5) -> Any:
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    return Figure(figsize=(width, height), layout="constrained")


def _save_figure(fig: Any, path: Path) -> Path:
    return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def plot_roc(evaluation: Evaluation, path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot()
    auc = evaluation.metrics["roc_auc"]
    ax.plot(
        evaluation.roc.fpr,
        evaluation.roc.tpr,
        label=f"ROC AUC {auc.point:.3f} [{auc.lower:.3f}, {auc.upper:.3f}]",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"ROC (n={evaluation.n:,})")
    ax.legend(loc="lower right")
    return _save_figure(fig, path)


def plot_confusion(evaluation: Evaluation, path: Path) -> Path:
    c = evaluation.confusion
    counts = np.array([[c.tn, c.fp], [c.fn, c.tp]])
    fig = _figure(4.5, 4.0)
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    for (i, j), v in np.ndenumerate(counts):
        colour = "white" if v > counts.max() / 2 else "black"
        ax.text(j, i, f"{v:,}", ha="center", va="center", color=colour)
    ax.set_xticks([0, 1], ["0", "1"])
    ax.set_yticks([0, 1], ["0", "1"])
    ax.set(xlabel="predicted", ylabel="actual")
    ax.set_title(f"Confusion at threshold {evaluation.decision_threshold:g}")
    return _save_figure(fig, path)


def plot_calibration(evaluation: Evaluation, path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot()
    bins = evaluation.calibration
    ece = evaluation.metrics["ece"]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.plot(
        [b.mean_predicted for b in bins],
        [b.observed_rate for b in bins],
        marker="o",
        label=f"ECE {ece.point:.3f} [{ece.lower:.3f}, {ece.upper:.3f}]",
    )
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Calibration")
    ax.legend(loc="upper left")
    return _save_figure(fig, path)


# --------------------------------------------------------------------------- edge
def confusion_rows(evaluation: Evaluation, max_rows: int = CONFUSION_PLOT_ROWS) -> list[dict]:
    """Rows ``{actual, predicted}`` for dvc's confusion template, which counts rows.

    Up to ``max_rows`` rows the counts are exact; above, each cell is scaled down in proportion
    (largest remainder), so the plot keeps the shape and the file stays small. The exact counts
    are in evaluation.json.
    """
    c = evaluation.confusion
    cells = {(0, 0): c.tn, (0, 1): c.fp, (1, 0): c.fn, (1, 1): c.tp}
    total = sum(cells.values())
    if total > max_rows:
        exact = {k: v * max_rows / total for k, v in cells.items()}
        scaled = {k: math.floor(v) for k, v in exact.items()}
        by_remainder = sorted(cells, key=lambda k: exact[k] - scaled[k], reverse=True)
        for k in by_remainder[: max_rows - sum(scaled.values())]:
            scaled[k] += 1
        cells = scaled
    return [{"actual": a, "predicted": p} for (a, p), count in cells.items() for _ in range(count)]


def format_table(evaluation: Evaluation) -> str:
    pct = f"{evaluation.confidence:.0%}"
    lines = [f"{'metric':<10} {'point':>8}   {pct} CI"]
    for name, m in evaluation.metrics.items():
        lines.append(f"{name:<10} {m.point:>8.4f}   [{m.lower:.4f}, {m.upper:.4f}]")
    return "\n".join(lines)


def load_model(model: str | Path, params: Params) -> Any:
    """Load an MLflow sklearn model from a folder, or from a ``models:/`` / ``runs:/`` URI."""
    import mlflow.sklearn

    ref = str(model)
    if ":/" in ref and not Path(ref).exists():
        from pipelines.edges.tracking import point_at

        point_at(params.tracking_uri)
    elif not (Path(ref) / "MLmodel").is_file():
        raise EvaluationError(f"{ref}: not an MLflow model folder (no MLmodel file)")
    try:
        return mlflow.sklearn.load_model(ref)
    except Exception as err:  # noqa: BLE001 - any loader failure is reported with the model
        raise EvaluationError(f"{ref}: cannot load model: {type(err).__name__}: {err}") from None


def positive_scores(model: Any, df: pd.DataFrame, params: Params) -> np.ndarray:
    """The model's probability of the positive class (label 1) for each row of ``df``."""
    from pipelines.stages.train import feature_frame

    try:
        proba = model.predict_proba(feature_frame(df, params.dataset))
    except Exception as err:  # noqa: BLE001 - report which model failed on which data
        raise EvaluationError(f"model cannot score the data: {type(err).__name__}: {err}") from None
    classes = list(getattr(model, "classes_", [0, 1]))
    if 1 not in classes:
        raise EvaluationError(f"model classes {classes} do not include the positive class 1")
    return np.asarray(proba[:, classes.index(1)], dtype=np.float64)


def predictions_frame(
    df: pd.DataFrame, y: np.ndarray, proba: np.ndarray, params: Params
) -> pd.DataFrame:
    """Per-row predictions plus the sensitive attributes, for the fairness stage."""
    base = {"y_true", "proba", "y_pred"}
    clash = sorted(base & set(params.dataset.sensitive))
    if clash:
        raise EvaluationError(f"sensitive column name(s) {clash} clash with prediction columns")
    out = pd.DataFrame(
        {
            "y_true": y.astype(np.int64),
            "proba": proba,
            "y_pred": (proba >= params.evaluate.decision_threshold).astype(np.int64),
        }
    )
    for col in params.dataset.sensitive:
        out[col] = df[col].to_numpy()
    return out


def write_outputs(evaluation: Evaluation, predictions: pd.DataFrame, out: Path) -> dict[str, Path]:
    from pipelines.data import write_parquet

    plots = out / "plots"
    roc = [
        {"fpr": f, "tpr": t} for f, t in zip(evaluation.roc.fpr, evaluation.roc.tpr, strict=True)
    ]
    calibration = [b.to_dict() for b in evaluation.calibration]
    return {
        "metrics": write_json(out / "metrics.json", evaluation.flat_metrics()),
        "evaluation": write_json(out / "evaluation.json", evaluation.to_dict()),
        "roc": write_json(plots / "roc.json", roc),
        "confusion": write_json(plots / "confusion.json", confusion_rows(evaluation)),
        "calibration": write_json(plots / "calibration.json", calibration),
        "roc_png": plot_roc(evaluation, plots / "roc.png"),
        "confusion_png": plot_confusion(evaluation, plots / "confusion.png"),
        "calibration_png": plot_calibration(evaluation, plots / "calibration.png"),
        "predictions": write_parquet(predictions, out / "predictions.parquet"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    ap.add_argument("--model", default=None, help="MLflow model folder or URI")
    ap.add_argument("--data", default=None, help="labelled data (.parquet or .csv)")
    ap.add_argument("--out", default=None, help="output folder (default <reports>/evaluate)")
    args = ap.parse_args(argv)
    try:
        from pipelines.data import labels, read_table

        params = load_params(args.params)
        model_ref = args.model or params.paths.model
        data_path = Path(args.data) if args.data else params.paths.prepared_current
        out = Path(args.out) if args.out else params.paths.stage("evaluate")
        df = read_table(data_path, params.dataset)
        y = labels(df, params.dataset)
        model = load_model(model_ref, params)
        proba = positive_scores(model, df, params)
        evaluation = evaluate_scores(y, proba, params.evaluate)
        write_outputs(evaluation, predictions_frame(df, y, proba, params), out)
    except (ConfigError, DataError, EvaluationError) as err:
        print(f"evaluate: error: {err}", file=sys.stderr)
        return 2
    print(
        f"evaluate: {evaluation.n:,} rows from {data_path}, positive rate "
        f"{evaluation.positive_rate:.3f}; {evaluation.bootstrap_samples} bootstrap resamples"
    )
    print(format_table(evaluation))
    print(f"evaluate: wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
