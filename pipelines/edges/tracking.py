"""MLflow edge: tracking set-up and the training run record.

Called from stage ``main()`` functions only; nothing here runs on import.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import Params
from pipelines.edges.lineage import data_version, dvc_remote, git_state
from pipelines.settings import mask_url, settings

# The MLflow UI opens an experiment without this tag on its GenAI overview, not the runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


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


def experiment_id(params: Params, client: Any, name: str) -> str:
    """The id of experiment ``name``, created when missing (tagged to open on its runs). Two
    processes creating it at once is no error: the loser reads the winner's."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = None
        if params.tracking_uri.startswith(("sqlite:", "file:")):
            location = params.paths.artifacts.as_uri()
        try:
            made = client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
            return str(made)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(name)
    for key, value in EXPERIMENT_KIND.items():
        if exp.tags.get(key) is None:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return str(exp.experiment_id)


def side_experiment(params: Params, client: Any, suffix: str) -> str:
    """The id of ``<mlflow.experiment>-<suffix>`` (nights, monitor), created when missing."""
    return experiment_id(params, client, f"{params.mlflow.experiment}-{suffix}")


def setup(params: Params) -> str:
    """Point MLflow at the configured tracking URI and experiment; return the experiment id."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow
    from mlflow import MlflowClient

    uri = params.tracking_uri
    point_at(uri)
    exp_id = experiment_id(params, MlflowClient(uri, uri), params.mlflow.experiment)
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
    run_name: str | None = None,
) -> dict[str, Any]:
    """Log params, metrics, lineage tags, the training and evaluation data (dataset inputs,
    their DVC hashes as digests) and the model; save the same model to ``out_dir``.
    ``run_name``: what the run is (default ``train-<dataset>-<data version>``)."""
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
    name = run_name or f"train-{params.dataset.name}-{tags['data_version.train'][:8]}"
    with mlflow.start_run(run_name=name) as run:
        log_data_inputs(params, X_example, train_path, eval_path)
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


def log_data_inputs(
    params: Params, X_example: pd.DataFrame, train_path: Path, eval_path: Path | None
) -> None:
    """The training (and evaluation) file as the active run's dataset inputs: the file as the
    source, its DVC hash as the digest, the model's input columns as the schema (from
    ``X_example``; the row count, from the file's footer, as a tag: nothing read twice)."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    schema = infer_signature(X_example).inputs
    for context, path in (("training", train_path), ("evaluation", eval_path)):
        if path is None or not path.is_file():
            continue
        with warnings.catch_warnings():  # a local path: MLflow registers its source type twice
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(str(path))
        ds = MetaDataset(  # type: ignore[abstract]  # its stubs miss its own `profile`
            source=source,
            name=f"{params.dataset.name}-{context}",
            digest=data_version(path),
            schema=schema,
        )
        tags = {"data_path": _rel(params, path)}
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            tags["rows"] = str(pq.ParquetFile(path).metadata.num_rows)
        mlflow.log_input(ds, context=context, tags=tags)


def keep_with_model(params: Params, model_uri: str, path: Path) -> bool:
    """Add ``path`` to the files of a logged model (``models:/m-...`` or ``runs:/RUN/model``),
    once: a file of that name already there is left as it is (True only when added). Before
    the gate judges the model, so the file is among the digests registration signs; never
    after, when a changed file would break a signed version."""
    from mlflow import MlflowClient

    setup(params)
    c = MlflowClient(params.tracking_uri, params.tracking_uri)
    if model_uri.startswith("models:/m-"):
        model_id = model_uri.removeprefix("models:/")
        there = {a.path for a in c.list_logged_model_artifacts(model_id)}
        if path.name in there:
            return False
        c.log_model_artifact(model_id, str(path))
        return True
    if model_uri.startswith("runs:/"):
        run_id, _, folder = model_uri.removeprefix("runs:/").partition("/")
        there = {a.path for a in c.list_artifacts(run_id, folder or None)}
        if f"{folder}/{path.name}".lstrip("/") in there:
            return False
        c.log_artifact(run_id, str(path), artifact_path=folder or None)
        return True
    raise ValueError(f"{model_uri}: not a logged model URI (models:/m-... or runs:/...)")


# --------------------------------------------------------------------------- the judgement
def metric_key(name: str) -> str:
    """``name`` as an MLflow metric or tag key (letters, digits, ``_ - . `` and space)."""
    bare = re.sub(r"[()\[\]]", "", name)  # "parity (sex) vs champion": "parity sex vs ..."
    return re.sub(r"_+", "_", re.sub(r"[^\w.\- ]", "_", bare)).strip("_ .") or "_"


def log_judgement(
    params: Params,
    run_id: str,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    report_dir: Path | None = None,
) -> None:
    """What the pipeline judged about a training run, on that run: the held-out metrics and
    their interval bounds, fairness, the gate's verdict and checks (``metrics`` and ``tags``,
    keys made safe), and the gate's reports as artifacts under ``gate/``."""
    import math
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag

    setup(params)
    c = MlflowClient(params.tracking_uri, params.tracking_uri)
    now = int(time.time() * 1000)
    ms = [Metric(metric_key(k), float(v), now, 0) for k, v in metrics.items() if math.isfinite(v)]
    ts = [RunTag(metric_key(k), str(v)[:5000]) for k, v in tags.items()]
    for i in range(0, max(len(ms), len(ts)), 900):  # the batch call's limit is 1000
        c.log_batch(run_id, metrics=ms[i : i + 900], tags=ts[i : i + 900])
    if report_dir is not None and report_dir.is_dir():
        for f in sorted(report_dir.glob("*")):
            if f.is_file():
                c.log_artifact(run_id, str(f), artifact_path="gate")


def log_files(params: Params, run_id: str, files: list[Path], artifact_path: str) -> None:
    """``files`` as artifacts of run ``run_id`` under ``artifact_path``."""
    from mlflow import MlflowClient

    setup(params)
    c = MlflowClient(params.tracking_uri, params.tracking_uri)
    for f in files:
        c.log_artifact(run_id, str(f), artifact_path=artifact_path)


# --------------------------------------------------------------------------- links
def ui_base(params: Params) -> str | None:
    """The MLflow UI's address as a user's browser reaches it: ``RETRAIN_MLFLOW_UI_URL``, else
    the tracking URI when it is HTTP(S); None when there is no server (``mlflow ui``).
    Credentials masked."""
    base = settings().mlflow_ui_url or params.tracking_uri
    if not base.startswith(("http://", "https://")):
        return None
    return (mask_url(base) or base).rstrip("/")


def run_url(params: Params, experiment_id: str, run_id: str, artifact: str | None = None) -> str:
    """A link to a run (or one of its artifacts) a user can open, else how to open it."""
    tail = f"#/experiments/{experiment_id}/runs/{run_id}"
    if artifact:
        tail += f"/artifacts/{artifact}"
    base = ui_base(params)
    if base:
        return f"{base}/{tail}"
    uri = mask_url(params.tracking_uri)
    return f"`mlflow ui --backend-store-uri {uri}`, then http://127.0.0.1:5000/{tail}"
