"""MLflow edge: tracking set-up and the training run record.

Called from stage ``main()`` functions only; nothing here runs on import.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import Params
from pipelines.edges.lineage import data_version, dvc_remote, git_state


def point_at(uri: str) -> None:
    """Use ``uri`` for tracking and the registry in this process.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``, which would then win over
    every params file read later in the same process (see ``Params.tracking_uri``): the
    variable is put back as it was.
    """
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def side_experiment(params: Params, client: Any, suffix: str) -> str:
    """The id of ``<mlflow.experiment>-<suffix>`` (nights, monitor), created when missing."""
    name = f"{params.mlflow.experiment}-{suffix}"
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    uri = params.tracking_uri
    location = None
    if uri.startswith(("sqlite:", "file:")):
        location = params.paths.artifacts.as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def setup(params: Params) -> str:
    """Point MLflow at the configured tracking URI and experiment; return the experiment id."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    uri = params.tracking_uri
    point_at(uri)
    exp = mlflow.get_experiment_by_name(params.mlflow.experiment)
    if exp is None:
        location = None
        if uri.startswith("sqlite:") or uri.startswith("file:"):
            location = params.paths.artifacts.as_uri()
        exp_id = mlflow.create_experiment(params.mlflow.experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _flat(prefix: str, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flat(f"{prefix}.{k}" if prefix else str(k), v))
    else:
        out[prefix] = obj
    return out


def _rel(params: Params, p: Path) -> str:
    return str(p.relative_to(params.root)) if p.is_relative_to(params.root) else str(p)


def lineage_tags(params: Params, train_path: Path, eval_path: Path | None = None) -> dict[str, str]:
    git = git_state(params.root)
    tags = {
        "git_commit": git.commit,
        "git_dirty": str(git.dirty).lower(),
        "data_version.train": data_version(train_path),
        "data_path.train": _rel(params, train_path),
        "dvc_remote": dvc_remote(params.root) or "",
        "dataset": params.dataset.name,
    }
    if eval_path is not None:
        tags["data_version.eval"] = data_version(eval_path)
        tags["data_path.eval"] = _rel(params, eval_path)
    return tags


def pip_requirements() -> list[str]:
    """The model's runtime requirements, pinned to what trained it (MLflow's own inference
    imports the model in a subprocess and costs ~15 s a model)."""
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}"
        for pkg in ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")
    ]


def trusted_types(model: Any) -> list[str]:
    """Types skops must be told to trust to reload this model: all of them among the ones every
    load trusts (:data:`pipelines.serve.trust.TRUSTED_TYPES`), or the model could never be
    served; a new estimator's types are reviewed and added there, never taken from a model."""
    import skops.io

    from pipelines.serve.trust import TRUSTED_TYPES

    needed = list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    unknown = sorted(set(needed) - set(TRUSTED_TYPES))
    if unknown:
        raise ValueError(
            f"the model needs skops to trust {unknown}, which no load of the project trusts "
            "(pipelines.serve.trust.TRUSTED_TYPES): review them and add them there"
        )
    return needed


def log_training_run(
    params: Params,
    model: Any,
    X_example: pd.DataFrame,
    train_path: Path,
    metrics: dict[str, float],
    out_dir: Path,
    eval_path: Path | None = None,
) -> dict[str, Any]:
    """Log params, metrics, lineage tags and the model; save the same model to ``out_dir``."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    setup(params)
    proba = model.predict_proba(X_example)
    signature = infer_signature(X_example, proba)
    tags = lineage_tags(params, train_path, eval_path)
    logged_params = _flat("train", params.train.model_dump()) | {
        "dataset": params.dataset.name,
        "features.numeric": ",".join(params.dataset.features.numeric),
        "features.categorical": ",".join(params.dataset.features.categorical),
    }
    trusted = trusted_types(model)
    requirements = pip_requirements()
    with mlflow.start_run(run_name=f"train-{params.dataset.name}") as run:
        mlflow.log_params({k: str(v) for k, v in logged_params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags(tags)
        mlflow.log_dict(params.model_dump(mode="json", by_alias=True), "params.json")
        info = mlflow.sklearn.log_model(
            sk_model=model,
            name="model",
            signature=signature,
            input_example=X_example,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=trusted,
            pip_requirements=requirements,
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    mlflow.sklearn.save_model(
        model,
        out_dir,
        signature=signature,
        input_example=X_example,
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=trusted,
        pip_requirements=requirements,
    )
    return {
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "model_id": getattr(info, "model_id", None),
        "experiment_id": run.info.experiment_id,
        "tags": tags,
        "metrics": metrics,
    }
