"""Stage `train`: fit a seeded scikit-learn pipeline (preprocessing + classifier from params).

The core, :func:`fit`, is a function of data and typed config. :func:`main` reads the prepared
reference data, saves the model for the next stages and logs a run to MLflow with params,
metrics, signature, input example, and the data version and git commit it was trained on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import DatasetConfig, Params, TrainConfig, classifier_class, load_params
from pipelines.data import labels


def feature_frame(df: pd.DataFrame, cfg: DatasetConfig) -> pd.DataFrame:
    """The model's input: feature columns only, numeric as float64, categorical as object/NaN.

    Training, evaluation and serving all go through this function, so they see the same input.
    """
    X = df.loc[:, list(cfg.features.all)].copy()
    for c in cfg.features.numeric:
        X[c] = pd.to_numeric(X[c], errors="coerce").astype("float64")
    for c in cfg.features.categorical:
        col = X[c].astype(object)
        X[c] = col.where(col.notna(), np.nan)
    return X


def build_pipeline(ds: DatasetConfig, cfg: TrainConfig) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=cfg.max_categories,
                    sparse_output=False,
                ),
            ),
        ]
    )
    pre = ColumnTransformer(
        [
            ("numeric", numeric, list(ds.features.numeric)),
            ("categorical", categorical, list(ds.features.categorical)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    clf_cls = classifier_class(cfg.classifier)
    hp: dict[str, Any] = dict(cfg.hyperparameters)
    if "random_state" in clf_cls().get_params(deep=False):
        hp.setdefault("random_state", cfg.seed)
    if cfg.classifier == "logistic_regression":
        hp.setdefault("max_iter", 1000)
    return Pipeline([("preprocess", pre), ("classifier", clf_cls(**hp))])


def fit(
    df: pd.DataFrame, ds: DatasetConfig, cfg: TrainConfig, sample_weight: np.ndarray | None = None
) -> Any:
    """Fit the pipeline on a cleaned frame; deterministic for a given seed and data."""
    X, y = feature_frame(df, ds), labels(df, ds)
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"training data has only one class of {ds.target!r}; need both "
            f"{ds.positive_label!r} and another label"
        )
    pipe = build_pipeline(ds, cfg)
    kwargs = {"classifier__sample_weight": sample_weight} if sample_weight is not None else {}
    pipe.fit(X, y, **kwargs)
    return pipe


def model_dir(params: Params) -> Path:
    return params.models_dir / "model"


def train_record_path(params: Params) -> Path:
    return params.reports_dir / "train" / "train.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="train", description=__doc__)
    ap.add_argument("--params", default=None)
    args = ap.parse_args(argv)
    params = load_params(args.params)

    from pipelines import tracking
    from pipelines.window import window_paths

    train_path, eval_path = window_paths(params)
    df = pd.read_parquet(train_path)
    t0 = time.perf_counter()
    model = fit(df, params.dataset, params.train)
    fit_seconds = time.perf_counter() - t0

    from sklearn.metrics import roc_auc_score

    X = feature_frame(df, params.dataset)
    train_auc = float(roc_auc_score(labels(df, params.dataset), model.predict_proba(X)[:, 1]))
    record = tracking.log_training_run(
        params,
        model,
        X_example=X.head(5),
        train_path=train_path,
        metrics={"train_roc_auc": train_auc, "fit_seconds": fit_seconds, "train_rows": len(df)},
        out_dir=model_dir(params),
        eval_path=eval_path,
    )
    out = train_record_path(params)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"train: {params.train.classifier} on {len(df):,} rows in {fit_seconds:.1f}s "
        f"(train ROC AUC {train_auc:.4f}); MLflow run {record['run_id']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
