"""The stage's edge: load the model, score the data, and write ``metrics.json`` (flat, for
``dvc metrics``), ``evaluation.json``, the plots (data for dvc and PNGs) and the per-row
predictions for the fairness stage. Exit code 2 on unusable input."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import ConfigError, Params, load_params
from pipelines.data import DataError, labels, read_table, write_parquet
from pipelines.files import write_json
from pipelines.paths import EvaluateOut
from pipelines.stages.evaluate.bootstrap import evaluate_scores, unmeasured
from pipelines.stages.evaluate.calibration import (
    CALIBRATOR_FILE,
    CalibrationError,
    Calibrator,
    fit_calibrator,
)
from pipelines.stages.evaluate.model import (
    distinct_row_ids,
    load_model,
    positive_scores,
    predictions_frame,
)
from pipelines.stages.evaluate.plots import (
    confusion_rows,
    plot_calibration,
    plot_confusion,
    plot_roc,
)
from pipelines.stages.evaluate.result import Evaluation, EvaluationError, TooLittleData


def format_table(evaluation: Evaluation) -> str:
    pct = f"{evaluation.confidence:.0%}"
    lines = [f"{'metric':<10} {'point':>8}   {pct} CI"]
    for name, m in evaluation.metrics.items():
        lines.append(f"{name:<10} {m.point:>8.4f}   [{m.lower:.4f}, {m.upper:.4f}]")
    return "\n".join(lines)


def write_outputs(
    evaluation: Evaluation, predictions: pd.DataFrame, out: EvaluateOut
) -> dict[str, Path]:
    roc = [
        {"fpr": f, "tpr": t} for f, t in zip(evaluation.roc.fpr, evaluation.roc.tpr, strict=True)
    ]
    calibration = [b.to_dict() for b in evaluation.calibration]
    return {
        "metrics": write_json(out.metrics, evaluation.headline_metrics()),
        "evaluation": write_json(out.evaluation, evaluation.to_dict()),
        "roc": write_json(out.plot("roc", ".json"), roc),
        "confusion": write_json(out.plot("confusion", ".json"), confusion_rows(evaluation)),
        "calibration": write_json(out.plot("calibration", ".json"), calibration),
        "roc_png": plot_roc(evaluation, out.plot("roc", ".png")),
        "confusion_png": plot_confusion(evaluation, out.plot("confusion", ".png")),
        "calibration_png": plot_calibration(evaluation, out.plot("calibration", ".png")),
        "predictions": write_parquet(predictions, out.predictions),
    }


def keep_calibrator(
    params: Params, y: np.ndarray, proba: np.ndarray, out: EvaluateOut, with_model: bool
) -> tuple[Calibrator | None, str]:
    """Fit the score calibrator on the held-out rows and write it (``calibrator.json``); with
    ``with_model``, also add it to the logged model the train stage recorded, as
    :data:`CALIBRATOR_FILE`, so the version keeps it among its signed files. What was done,
    in one line."""
    from pipelines.edges import tracking

    try:
        cal = fit_calibrator(y, proba, seed=params.evaluate.seed)
    except CalibrationError as err:  # the file says why (dvc expects the output)
        write_json(out.calibrator, {"method": None, "note": str(err)})
        return None, f"no calibrator: {err}"
    path = write_json(out.calibrator, cal.to_dict())
    record = params.paths.train_record
    if not with_model or not record.is_file():
        return cal, f"calibrator on {cal.rows:,} rows: {path}"
    uri = json.loads(record.read_text())["model_uri"]
    with tempfile.TemporaryDirectory(prefix="calibrator-") as tmp:
        named = Path(tmp) / CALIBRATOR_FILE
        shutil.copyfile(path, named)
        added = tracking.keep_with_model(params, uri, named)
    where = "added to" if added else "already kept with"
    return cal, f"calibrator on {cal.rows:,} rows: {path}, {where} {uri}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="evaluate",
        description="Stage `evaluate`: score held-out data and measure the model, each metric "
        "with a bootstrap CI.",
    )
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    ap.add_argument("--model", default=None, help="MLflow model folder or URI")
    ap.add_argument("--data", default=None, help="labelled data (.parquet or .csv)")
    ap.add_argument("--out", default=None, help="output folder (default <reports>/evaluate)")
    args = ap.parse_args(argv)
    try:
        params = load_params(args.params)
        model_ref = args.model or params.paths.model
        data_path = Path(args.data) if args.data else params.paths.prepared_current
        out = params.paths.evaluate_out(Path(args.out) if args.out else None)
        df = read_table(data_path, params.dataset)
        y = labels(df, params.dataset)
        model = load_model(model_ref, params)
        proba = positive_scores(model, df, params) if len(df) else np.zeros(0)
        try:
            evaluation = evaluate_scores(
                y, proba, params.evaluate, rows=distinct_row_ids(df, params)
            )
        except TooLittleData as err:  # too little evidence is an outcome: the gate says so
            evaluation = unmeasured(y, proba, params.evaluate, str(err))
        write_outputs(evaluation, predictions_frame(df, y, proba, params), out)
        _, kept = keep_calibrator(params, y, proba, out, with_model=args.model is None)
    except (ConfigError, DataError, EvaluationError) as err:
        print(f"evaluate: error: {err}", file=sys.stderr)
        return 2
    if evaluation.note:
        print(f"evaluate: {evaluation.n:,} rows from {data_path}: not measured: {evaluation.note}")
        print(f"evaluate: wrote {out.folder}")
        return 0
    print(
        f"evaluate: {evaluation.n:,} rows from {data_path}, positive rate "
        f"{evaluation.positive_rate:.3f}; {evaluation.bootstrap_samples} bootstrap resamples"
    )
    print(format_table(evaluation))
    print(f"evaluate: {kept}")
    print(f"evaluate: wrote {out.folder}")
    return 0
