"""The fairness result for people: a bar plot per attribute and a table for the log."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.files import write_atomic
from pipelines.stages.fairness.core import FairnessResult


def plot_fairness(result: FairnessResult, path: Path) -> Path:
    """Bars of selection rate, TPR and FPR per judged group, one panel per attribute.

    Rates left out of the gaps (too few actual positives / negatives) are drawn hatched.
    """
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    attrs = [a for a in result.attributes if a.groups] or list(result.attributes)
    widest = max((len(a.groups) for a in attrs), default=1)
    fig = Figure(
        figsize=(max(6.0, 0.9 * widest + 2), 3.2 * max(1, len(attrs))), layout="constrained"
    )
    axes = fig.subplots(max(1, len(attrs)), 1, squeeze=False)[:, 0]
    series = (("selection_rate", "selection rate"), ("tpr", "TPR"), ("fpr", "FPR"))
    for ax, a in zip(axes, attrs, strict=False):
        x = np.arange(len(a.groups))
        for i, (field, label) in enumerate(series):
            vals = [getattr(g, field) for g in a.groups]
            bars = ax.bar(
                x + (i - 1) * 0.27, [np.nan if v is None else v for v in vals], 0.27, label=label
            )
            for g, bar in zip(a.groups, bars, strict=True):
                support = {"tpr": g.positives, "fpr": g.n - g.positives}.get(field, g.n)
                if support < result.min_group_size:  # reported, not judged
                    bar.set_alpha(0.35)
                    bar.set_hatch("//")
        ax.set_xticks(x, [f"{g.group}\n(n={g.n:,})" for g in a.groups], fontsize=7, rotation=20)
        ax.set_ylim(0, 1)
        dpd, eod = a.demographic_parity_difference, a.equalized_odds_difference
        title = (
            f"{a.attribute}: DPD {_fmt(dpd)}, EOD {_fmt(eod)}, DI {_fmt(a.disparate_impact_ratio)}"
        )
        if a.too_small:
            title += f"; {len(a.too_small)} group(s) too small"
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    if not attrs:
        axes[0].set_title("no sensitive attributes")
    return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def format_table(result: FairnessResult) -> str:
    lines = [f"{'attribute':<20} {'DPD':>7} {'EOD':>7} {'DI':>7}  groups (too small)"]
    for a in result.attributes:
        lines.append(
            f"{a.attribute:<20} {_fmt(a.demographic_parity_difference):>7} "
            f"{_fmt(a.equalized_odds_difference):>7} {_fmt(a.disparate_impact_ratio):>7}  "
            f"{len(a.groups)} ({len(a.too_small)})"
        )
    worst = result.worst
    lines.append(
        f"{'worst':<20} {_fmt(worst['demographic_parity_difference'].value):>7} "
        f"{_fmt(worst['equalized_odds_difference'].value):>7} "
        f"{_fmt(worst['disparate_impact_ratio'].value):>7}"
    )
    return "\n".join(lines)
