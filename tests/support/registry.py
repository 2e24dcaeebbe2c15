"""Throwaway SQLite registries with real models trained on Adult (the serving, redeploy and
observability tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipelines.config import Params, parse_params
from pipelines.edges import registry, tracking
from pipelines.stages.train import feature_frame, fit

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-6


def make_params(root: Path, model_name: str | None = None, **train: Any) -> Params:
    """The project's params, rooted in ``root`` with its own SQLite registry."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["dataset"]["mirror"] = str((ROOT / raw["dataset"]["mirror"]).resolve())
    raw["mlflow"]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    if model_name:
        raw["mlflow"]["registered_model"] = model_name
    raw["train"].update(train)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return parse_params(raw, source=str(root / "params.yaml"), root=root)


def register_model(
    params: Params, reference: pd.DataFrame, promote: bool = True, **hyper: Any
) -> str:
    """Train on ``reference`` with ``hyper`` overrides, log, register (and promote)."""
    cfg = params.train.model_copy(
        update={"hyperparameters": {**params.train.hyperparameters, **hyper}}
    )
    model = fit(reference, params.dataset, cfg)
    window = params.paths.window_eval.parent
    window.mkdir(parents=True, exist_ok=True)
    train_path = window / "train.parquet"
    if not train_path.exists():
        reference.to_parquet(train_path)
    X = feature_frame(reference, params.dataset)
    rec = tracking.log_training_run(
        params,
        model,
        X_example=X.head(5),
        train_path=train_path,
        metrics={"train_rows": len(reference)},
        out_dir=params.paths.model,
    )
    version = registry.register(params, rec["run_id"], rec["model_uri"], rec["tags"])
    if promote:
        registry.promote(params, version, reason="test")
    return version


def registry_params(
    root: Path, reference: pd.DataFrame, versions: Sequence[dict], model_name: str | None = None
) -> Params:
    """A registry in ``root`` with one version per ``versions`` entry; the first is champion."""
    params = make_params(root, model_name)
    for i, hyper in enumerate(versions):
        register_model(params, reference, promote=i == 0, **hyper)
    return params
