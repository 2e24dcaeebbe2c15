"""DVC's own screens (issue 16): `dvc metrics show` prints every metrics file of dvc.yaml in one
table, drawn here by DVC's own code from what the stages write (in the default workspace
layout and a deeper one): it fits 100 columns. The PNG plots are declared as plots; the
metrics files are visible to git (so `dvc metrics diff` has a revision to compare with) and
the page `dvc plots show` writes is not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.config import EvaluateConfig, FairnessConfig
from pipelines.stages.drift.result import ColumnDrift, DriftResult
from pipelines.stages.evaluate import evaluate_scores
from pipelines.stages.fairness.core import assess_fairness

ROOT = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _written() -> dict[str, dict[str, float]]:
    """What the drift, evaluate and fairness stages write as their metrics files."""
    rng = np.random.default_rng(0)
    p = rng.beta(0.6, 1.6, size=3000)
    y = (rng.random(3000) < p).astype(int)
    ev = evaluate_scores(y, p, EvaluateConfig(bootstrap_samples=50, seed=0))
    groups = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], 3000), "race": rng.choice(["a", "b", "c"], 3000)}
    )
    fair = assess_fairness(y, (p > 0.5).astype(int), groups, FairnessConfig())
    target = ColumnDrift("y", "categorical", "jensenshannon", 0.1, 0.0123456, False)
    drift = DriftResult(
        False, 5 / 14, 5, 14, 0.5, (), target, (), 32561, 16258, "evidently"
    )  # fmt: skip
    return {
        "drift": drift.metrics(),
        "evaluate": ev.headline_metrics(),
        "fairness": fair.headline_metrics(),
    }


@pytest.mark.parametrize("reports", ["reports", "reports/census"])
def test_dvc_metrics_show_fits_100_columns(reports, capsys):
    from dvc.compare import show_metrics

    written = _written()
    assert set(written["evaluate"]) == {"roc_auc", "f1", "ece"}
    assert set(written["fairness"]) == {"dp_diff", "eo_diff"}
    declared = [
        next(iter(entry)) for stage in STAGES.values() for entry in stage.get("metrics", [])
    ]
    assert len(declared) == 3, declared  # every metrics file prints in the one table
    files = {
        text.replace("${paths.reports}", reports): {"data": written[text.split("/")[1]]}
        for text in declared
    }
    show_metrics({"workspace": {"data": files}}, precision=5, round_digits=True)
    table = capsys.readouterr().out
    lines = table.rstrip("\n").splitlines()
    assert len(lines) == 4 and "roc_auc" in lines[0] and "dp_diff" in lines[0], table
    assert max(len(line.rstrip()) for line in lines) <= 100, table


def test_the_png_plots_are_declared_as_plots_and_their_outputs_once():
    plots = {
        next(iter(e)) for stage in STAGES.values() for e in stage.get("plots", [])
    }  # fmt: skip
    outs = [next(iter(e)) for stage in STAGES.values() for e in stage.get("outs", [])]
    pngs = {
        "${paths.reports}/evaluate/plots/roc.png",
        "${paths.reports}/evaluate/plots/confusion.png",
        "${paths.reports}/evaluate/plots/calibration.png",
        "${paths.reports}/fairness/plots/fairness.png",
    }
    assert pngs <= plots
    assert not pngs & set(outs)  # DVC refuses a path that is an out twice


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_keeps_the_metrics_and_ignores_the_plots_page(tmp_path):
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    paths = [
        "reports/evaluate/metrics.json",
        "reports/fairness/metrics.json",
        "reports/drift/metrics.json",
        "reports/census/evaluate/metrics.json",  # a dataset's own reports folder
        "reports/evaluate/evaluation.json",
        "reports/nights/2026-01-01/drift/metrics.json",  # a night's batch drift: not a run's
        "reports/census/nights/2026-01-01/drift/metrics.json",
        "reports/gate/report.md",
        "reports/nights/2026-01-01/summary.json",
        "dvc_plots/index.html",
        "reports/dvc_plots/index.html",
    ]
    for rel in paths:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    out = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", *paths], capture_output=True, text=True
    )
    ignored = set(out.stdout.split())
    assert ignored == set(paths[4:]), out
