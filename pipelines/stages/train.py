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
from pipelines.data import feature_frame as feature_frame  # re-exported: evaluate uses it
from pipelines.data import labels
from pipelines.files import write_json


def build_pipeline(ds: DatasetConfig, cfg: TrainConfig) -> Any:
    """Preprocessing plus the classifier, from config.

    ``encoding: onehot`` imputes and scales numeric features and one-hot encodes categorical ones
    (dense). ``encoding: ordinal`` (hist_gradient_boosting only) gives the features as they are
    to the classifier with ``categorical_features`` naming the categorical ones: it codes each
    category as an integer (unknown and missing ones as NaN) and splits on the codes natively,
    so memory stays at one column per feature however many categories there are. (scikit-learn
    does this coding itself whenever ``categorical_features`` is set; an encoder in front would
    only make it code the codes again.) Each categorical feature may then have at most
    ``max_bins`` (255) distinct values; ``max_categories`` applies to one-hot only.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    clf_cls = classifier_class(cfg.classifier)
    hp: dict[str, Any] = dict(cfg.hyperparameters)
    if "random_state" in clf_cls().get_params(deep=False):
        hp.setdefault("random_state", cfg.seed)
    if cfg.classifier == "logistic_regression":
        hp.setdefault("max_iter", 1000)

    numeric_cols, categorical_cols = list(ds.features.numeric), list(ds.features.categorical)
    if cfg.encoding == "ordinal":
        hp["categorical_features"] = categorical_cols
        return Pipeline([("classifier", clf_cls(**hp))])

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
            ("numeric", numeric, numeric_cols),
            ("categorical", categorical, categorical_cols),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    return Pipeline([("preprocess", pre), ("classifier", clf_cls(**hp))])


def fit(
    df: pd.DataFrame, ds: DatasetConfig, cfg: TrainConfig, sample_weight: np.ndarray | None = None
) -> Any:
    """Fit the pipeline on a cleaned frame; deterministic for a given seed and data."""
    return fit_features(feature_frame(df, ds), labels(df, ds), ds, cfg, sample_weight)


def fit_features(
    X: pd.DataFrame,
    y: np.ndarray,
    ds: DatasetConfig,
    cfg: TrainConfig,
    sample_weight: np.ndarray | None = None,
) -> Any:
    """:func:`fit` on the model's input (:func:`feature_frame`) and binary labels."""
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"training data has only one class of {ds.target!r}; need both "
            f"{ds.positive_label!r} and another label"
        )
    pipe = build_pipeline(ds, cfg)
    kwargs = {"classifier__sample_weight": sample_weight} if sample_weight is not None else {}
    pipe.fit(X, y, **kwargs)
    return pipe


def positive_proba(model: Any, X: pd.DataFrame, chunk_rows: int = 100_000) -> np.ndarray:
    """The model's positive-class probabilities for the rows of ``X`` (from
    :func:`feature_frame`), scored in chunks so preprocessing copies stay small at any N."""
    parts = [
        model.predict_proba(X.iloc[i : i + chunk_rows])[:, 1] for i in range(0, len(X), chunk_rows)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def _training_input(path: Path, ds: DatasetConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The model's input and labels from the training file; the cleaned frame itself is
    dropped on return, so it is not held while the model fits."""
    from pipelines.data import read_parquet

    df = read_parquet(path)
    return feature_frame(df, ds), labels(df, ds)


def run_name(params: Params) -> str:
    """What the training run is: ``challenger <newest batch trained on> (<dataset>)``, or
    ``challenger reference (<dataset>)`` before any batch (the window's ``window.json``)."""
    manifest = params.paths.window_manifest
    batches = json.loads(manifest.read_text()).get("batches") if manifest.is_file() else None
    newest = sorted(batches)[-1] if batches else "reference"
    return f"challenger {newest} ({params.dataset.name})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="train", description=__doc__)
    ap.add_argument("--params", default=None)
    args = ap.parse_args(argv)
    params = load_params(args.params)

    from pipelines.edges import tracking

    train_path, eval_path = (params.paths.window_train, params.paths.window_eval)
    X, y = _training_input(train_path, params.dataset)
    t0 = time.perf_counter()
    model = fit_features(X, y, params.dataset, params.train)
    fit_seconds = time.perf_counter() - t0

    from sklearn.metrics import roc_auc_score

    train_auc = float(roc_auc_score(y, positive_proba(model, X)))
    record = tracking.log_training_run(
        params,
        model,
        X_example=X.head(5),
        train_path=train_path,
        metrics={"train_roc_auc": train_auc, "fit_seconds": fit_seconds, "train_rows": len(X)},
        out_dir=params.paths.model,
        eval_path=eval_path,
        run_name=run_name(params),
    )
    write_json(params.paths.train_record, record)
    print(
        f"train: {params.train.classifier} on {len(X):,} rows in {fit_seconds:.1f}s "
        f"(train ROC AUC {train_auc:.4f}); MLflow run {record['run_id']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
