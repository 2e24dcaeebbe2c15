"""Throwaway SQLite registries with real models trained on Adult (the serving, redeploy and
observability tests), signed as a passing gate signs them (each workspace makes its own key)."""

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
    params: Params,
    reference: pd.DataFrame,
    promote: bool = True,
    model: Any = None,
    sign: bool = True,
    **hyper: Any,
) -> str:
    """Train on ``reference`` with ``hyper`` overrides (or take the fitted ``model``), log,
    register, sign as a passing gate does (unless ``sign`` is false: a version the gate
    rejected) and promote."""
    if model is None:
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
    if sign:
        sign_as_the_gate(params, version, rec["run_id"], rec["model_uri"])
    if promote:
        registry.promote(params, version, reason="test")
    return version


def sign_as_the_gate(params: Params, version: str, run_id: str, model_uri: str) -> None:
    """What a passing night does between training and promotion, through the project's own
    code: the gate loads the challenger (recording its files' digests), ``register`` signs
    those digests on the registered version. Every load verifies that signature."""
    from pipelines.release.signing import sign_registration
    from pipelines.serve.model import ServingSpec, load_challenger

    judged = load_challenger(params.tracking_uri, model_uri, ServingSpec.from_params(params))
    sign_registration(params, version, run_id, judged.digests)


def registry_params(
    root: Path, reference: pd.DataFrame, versions: Sequence[dict], model_name: str | None = None
) -> Params:
    """A registry in ``root`` with one version per ``versions`` entry; the first is champion."""
    params = make_params(root, model_name)
    for i, hyper in enumerate(versions):
        register_model(params, reference, promote=i == 0, **hyper)
    return params


def bake_signed(params: Params, folder: Path, version: str, key: Path) -> None:
    """Sign a hand-made model folder the way `retrain deploy` bakes a verified version into an
    image (signature and public key beside the model), with the project's signing code and a
    key made at ``key`` (a temporary path: never the repository's workspace)."""
    import pytest

    from pipelines.release.signing import sign
    from pipelines.serve import trust
    from pipelines.serve.model import SMOKE_FILE, SPEC_FILE

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETRAIN_SIGNING_KEY", str(key))
        manifest = trust.Manifest(
            model=params.mlflow.registered_model, version=version, run_id="r", verdict="pass",
            files=trust.file_digests(folder, frozenset({SPEC_FILE, SMOKE_FILE})),
            signed_at="2026-01-01T00:00:00+00:00", signed_by="tests",
        )  # fmt: skip
        text, signature = sign(params, manifest)
        trust.bake_signature(folder, text, signature, params.paths.signing_public_key.read_bytes())
