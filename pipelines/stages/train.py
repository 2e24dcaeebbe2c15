"""Stage `train`: fit a seeded scikit-learn pipeline (preprocessing + classifier from params).

The core, :func:`fit`, is a function of data and typed config. :func:`main` reads the prepared
reference data, saves the model for the next stages and logs a run to MLflow with params,
metrics, signature, input example, and the data version and git commit it was trained on.
A long fit says how far it is every ``RETRAIN_PROGRESS_SECONDS`` (:class:`FitProgress`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
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


log = logging.getLogger("pipelines.stages.train")

# The classifiers that say how far they are: the verbosity that prints one line per iteration,
# how to read it (an iteration's number, and the total when the line has it), the parameter
# with the total otherwise, and whether the line starts its iteration (1) or ends it (0).
_ITERATIONS: dict[str, tuple[int, re.Pattern[str], str, int]] = {
    "hist_gradient_boosting": (2, re.compile(r"\[(\d+)/(\d+)\]"), "max_iter", 1),
    "gradient_boosting": (1, re.compile(r"^\s*(\d+)\s+[-+0-9.]"), "n_estimators", 0),
}


class FitProgress(io.TextIOBase):
    """A fit's progress, told every ``every`` seconds from a background thread: iterations
    done (read from the estimator's own verbose output: what the fitting thread writes to
    stdout comes here, what other threads write goes on to stdout), elapsed and expected
    seconds. The estimator's verbosity is put back after the fit, so the fitted model is the
    one a fit without progress makes."""

    def __init__(self, every: float, say: Callable[[str], None], total: int | None = None):
        self.every, self.say, self.total = every, say, total
        self.done = 0
        self.pattern: re.Pattern[str] | None = None
        self.starts = 0  # 1: a line starts its iteration (that one is not done yet)
        self._first: tuple[float, int] | None = None  # (when, done) at the first iteration line
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._fitting = threading.get_ident()
        self._out: Any = sys.stdout

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._out.flush()

    def write(self, text: str) -> int:
        if threading.get_ident() != self._fitting:  # not the estimator's: passed on
            return int(self._out.write(text))
        for line in text.splitlines() if self.pattern else ():
            m = self.pattern.search(line) if self.pattern else None
            if m:
                self.done = int(m.group(1)) - self.starts
                self._first = self._first or (self.elapsed(), self.done)
                self.total = int(m.group(2)) if m.lastindex == 2 else self.total
        return len(text)

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def line(self, elapsed: float) -> str:
        if not self.done:
            return f"train: fitting, {elapsed:.0f} s elapsed"
        of = f"/{self.total}" if self.total else ""
        left = ""  # at the pace of the iterations so far (set-up time left out)
        since, first = self._first or (elapsed, self.done)
        if self.total and first < self.done < self.total and elapsed > since:
            pace = (elapsed - since) / (self.done - first)
            left = f", about {pace * (self.total - self.done):.0f} s to go"
        return f"train: {self.done}{of} iterations, {elapsed:.0f} s elapsed{left}"

    def _tell(self) -> None:
        while not self._stop.wait(self.every):
            self.say(self.line(self.elapsed()))

    @contextlib.contextmanager
    def watching(self, model: Any, classifier: str) -> Iterator[FitProgress]:
        """Around ``model.fit``: its classifier's per-iteration output read here, the lines
        told; everything put back afterwards."""
        clf = model.named_steps["classifier"]
        verbose, self.pattern, total_param, self.starts = _ITERATIONS.get(
            classifier, (0, None, "", 0)
        )
        self.total = self.total or (clf.get_params().get(total_param) if total_param else None)
        before = clf.get_params().get("verbose")
        ticker = threading.Thread(target=self._tell, name="train-progress", daemon=True)
        self._t0, self._fitting, self._out = time.monotonic(), threading.get_ident(), sys.stdout
        ticker.start()
        try:
            if verbose:
                clf.set_params(verbose=verbose)
            with contextlib.redirect_stdout(self):
                yield self
        finally:
            self._stop.set()
            ticker.join()
            if verbose:
                clf.set_params(verbose=before)


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
    progress: Callable[[str], None] | None = None,
    every: float = 10.0,
) -> Any:
    """:func:`fit` on the model's input (:func:`feature_frame`) and binary labels;
    ``progress``: told how far the fit is every ``every`` seconds (the model is the same)."""
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"training data has only one class of {ds.target!r}; need both "
            f"{ds.positive_label!r} and another label"
        )
    pipe = build_pipeline(ds, cfg)
    kwargs = {"classifier__sample_weight": sample_weight} if sample_weight is not None else {}
    if progress is None or every <= 0:
        pipe.fit(X, y, **kwargs)
        return pipe
    with FitProgress(every, progress).watching(pipe, cfg.classifier) as watch:
        pipe.fit(X, y, **kwargs)
    clf = pipe.named_steps["classifier"]
    done = getattr(clf, "n_iter_", None) if watch.pattern else None
    done = getattr(clf, "n_estimators_", done) if watch.pattern else None
    what = f"{int(done)} iterations" if done is not None else "fitted"
    progress(f"train: {what} in {watch.elapsed():.1f} s")
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
    from pipelines.settings import settings

    if not log.handlers:  # the stage's own lines, on its stdout beside its prints
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    train_path, eval_path = (params.paths.window_train, params.paths.window_eval)
    X, y = _training_input(train_path, params.dataset)
    log.info("train: %s on %s rows ...", params.train.classifier, f"{len(X):,}")
    t0 = time.perf_counter()
    every = settings().progress_seconds
    model = fit_features(X, y, params.dataset, params.train, progress=log.info, every=every)
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
