"""Pictures of an :class:`~pipelines.stages.evaluate.result.Evaluation`: ROC, confusion and
calibration as PNGs, and the rows dvc's confusion template plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.files import write_atomic
from pipelines.stages.evaluate.result import Evaluation

CONFUSION_PLOT_ROWS = 2000  # dvc's confusion template counts rows: cap the file's size


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


def confusion_rows(
    evaluation: Evaluation, max_rows: int = CONFUSION_PLOT_ROWS
) -> list[dict[str, Any]]:
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


def _figure(width: float = 5.0, height: float = 4.5) -> Any:
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    return Figure(figsize=(width, height), layout="constrained")


def _save_figure(fig: Any, path: Path) -> Path:
    return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))
