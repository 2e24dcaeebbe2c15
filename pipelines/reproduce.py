"""Rebuild a registered model version from its lineage, and prove it predicts the same.

A version's run records the params it was trained with (``params.json``) and the DVC content
hashes of its training and evaluation data. The data is fetched by hash from the DVC cache, or
from the DVC remote when the cache no longer has it, the model is refitted through the same
``train.fit``, and its predictions are compared with the registered model's on a sample. The
registered model is loaded only once its signature verifies (the one verifying load).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import Params, parse_params
from pipelines.files import write_json
from pipelines.records import JsonRecord


class ReproduceError(RuntimeError):
    """A version cannot be rebuilt; the message says what is missing."""


@dataclass(frozen=True)
class Reproduction(JsonRecord):
    version: str
    train_rows: int
    compared_rows: int
    max_abs_diff: float
    identical: bool
    train_version: str
    eval_version: str


def fetch_by_hash(params: Params, md5: str, dest: Path) -> Path:
    """Copy the DVC object ``md5`` to ``dest``: from the local cache, else from the remote."""
    from dvc.repo import Repo

    repo = Repo(str(params.root))
    try:
        cached = Path(repo.cache.local.oid_to_path(md5))
        dest.parent.mkdir(parents=True, exist_ok=True)
        if cached.is_file():
            shutil.copyfile(cached, dest)
            return dest
        try:
            odb = repo.cloud.get_remote_odb(None)
        except Exception as err:  # noqa: BLE001 - no remote configured
            raise ReproduceError(
                f"data version {md5} is not in the cache and no remote: {err}"
            ) from None
        src = odb.oid_to_path(md5)
        if not odb.fs.exists(src):
            raise ReproduceError(
                f"data version {md5} is neither in the cache nor in the remote {odb.path}"
            )
        odb.fs.get_file(src, str(dest))
        return dest
    finally:
        repo.close()


def reproduce_version(params: Params, version: str, sample: int = 2000) -> Reproduction:
    import mlflow

    from pipelines.edges import registry
    from pipelines.release.deploy import reference_scorer
    from pipelines.stages.train import fit

    c = registry.client(params)
    name = params.mlflow.registered_model
    mv = c.get_model_version(name, version)
    original_scorer = reference_scorer(params, version)  # verified first: refused, nothing runs
    tags = dict(mv.tags)
    for key in ("data_version.train", "data_version.eval"):
        if key not in tags:
            raise ReproduceError(f"{name} v{version} has no lineage tag {key!r}")
    workdir = params.paths.stage("reproduce") / f"v{version}"
    workdir.mkdir(parents=True, exist_ok=True)
    raw = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/params.json")
    trained_params = parse_params(raw, source=f"run {mv.run_id} params.json", root=params.root)
    train_df = pd.read_parquet(
        fetch_by_hash(params, tags["data_version.train"], workdir / "train.parquet")
    )
    eval_df = pd.read_parquet(
        fetch_by_hash(params, tags["data_version.eval"], workdir / "eval.parquet")
    )
    rebuilt = fit(train_df, trained_params.dataset, trained_params.train)
    rows = eval_df.head(sample)
    from pipelines.data import feature_frame

    again = rebuilt.predict_proba(feature_frame(rows, trained_params.dataset))[:, 1]
    original_scorer.dataset = trained_params.dataset
    original = original_scorer.predict_proba(rows)
    diff = float(np.max(np.abs(again - original))) if len(rows) else 0.0
    result = Reproduction(
        version=str(version),
        train_rows=len(train_df),
        compared_rows=len(rows),
        max_abs_diff=diff,
        identical=bool(np.array_equal(again, original)),
        train_version=tags["data_version.train"],
        eval_version=tags["data_version.eval"],
    )
    write_json(workdir / "reproduction.json", result.to_dict())
    return result
