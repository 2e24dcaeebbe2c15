"""Typed, frozen configuration parsed once from ``params.yaml``.

Everything a user tunes lives in the params file. It is read here, validated against frozen
pydantic models that forbid unknown keys, and handed to the stage cores as typed objects. A bad
file fails with one :class:`ConfigError` that names the file and the dotted key.

:attr:`Params.paths` resolves the workspace's folders into :class:`pipelines.paths.Paths`,
the one module that spells a workspace path. The module is over 400 lines on purpose: it is the
one schema of params.yaml, and it reads best whole.

Nothing here knows about a particular dataset: the dataset section describes columns, target,
positive label and sensitive attributes, so another tabular binary-classification dataset runs
with its own params file and suite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelines.paths import Paths
from pipelines.settings import settings

DEFAULT_PARAMS = "params.yaml"
PARAMS_ENV = "RETRAIN_PARAMS"


class ConfigError(ValueError):
    """A params file that cannot be used; the message names the file and the key."""


class InvalidKey(ValueError):
    """Raised inside a validator for a key below the model being validated: ``key`` is its
    dotted path from there, so the error names the exact key (``gate.metrics.roc_auc.min``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


# --------------------------------------------------------------------------- dataset
class DataFile(_Frozen):
    """One file of the dataset, as published (name relative to the mirror / source URL)."""

    name: str
    skip_rows: int = Field(0, ge=0, description="leading lines to drop (e.g. a banner line)")
    sha256: str | None = Field(None, description="expected digest of the (uncompressed) file")


class Features(_Frozen):
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.numeric + self.categorical


class SplitConfig(_Frozen):
    """One published file cut in two: reference (before) and current (the rest).

    ``by: time``: rows whose ``column`` is below ``cutoff`` are the reference, the others are
    current (a numeric column compares as numbers, dates as dates, other text as written).
    ``by: rows``: the first ``fraction`` of the rows, in file order, are the reference."""

    by: Literal["time", "rows"]
    column: str | None = Field(None, description="by: time: the column holding the time")
    cutoff: float | str | None = Field(None, description="by: time: first value of current")
    fraction: Fraction | None = Field(None, description="by: rows: share kept as reference")

    @model_validator(mode="after")
    def _check_kind(self) -> SplitConfig:
        timed: tuple[str, ...] = ("column", "cutoff")
        need, other = (timed, ("fraction",)) if self.by == "time" else (("fraction",), timed)
        for key in need:
            if getattr(self, key) is None:
                raise InvalidKey(key, f"needed with by: {self.by}")
        for key in other:
            if getattr(self, key) is not None:
                raise InvalidKey(key, f"not used with by: {self.by}")
        return self


class DatasetConfig(_Frozen):
    """Where the data comes from and what its columns mean."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field(
        "", max_length=2000, description="what the data is and what a model of it is for"
    )
    mirror: Path | None = Field(None, description="local folder holding the published files")
    source_url: str | None = Field(None, description="public URL prefix to fetch the files from")
    reference: DataFile
    current: DataFile | None = Field(None, description="the held-out file; or a split")
    split: SplitConfig | None = Field(None, description="cut the reference file in two")
    columns: tuple[str, ...] = Field(min_length=2)
    separator: str = Field(",", min_length=1, max_length=1)
    header: bool = Field(False, description="the files start with a row of column names")
    quote_char: str = Field('"', min_length=1, max_length=1)
    na_values: tuple[str, ...] = ("?",)
    label_strip_suffix: str = ""
    target: str
    positive_label: str
    negative_label: str | None = None
    features: Features
    sensitive: tuple[str, ...] = ()
    weight: str | None = None

    @property
    def files(self) -> tuple[DataFile, ...]:
        """The published files: reference, then current unless one file is split."""
        return (self.reference,) if self.current is None else (self.reference, self.current)

    @model_validator(mode="after")
    def _check_columns(self) -> DatasetConfig:
        known = set(self.columns)
        if len(known) != len(self.columns):
            dupes = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise ValueError(f"duplicate column names: {dupes}")
        for key, names in (
            ("features.numeric", self.features.numeric),
            ("features.categorical", self.features.categorical),
            ("sensitive", self.sensitive),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise InvalidKey(key, f"listed twice: {twice}")
        if self.target in self.sensitive:
            raise InvalidKey(
                "sensitive", f"{self.target!r} is the target (dataset.target), not an attribute"
            )
        if (self.current is None) == (self.split is None):
            raise InvalidKey(
                "current" if self.split is None else "split",
                "give the held-out file (dataset.current) or split one file (dataset.split), "
                "one of the two",
            )
        if self.split and self.split.column and self.split.column not in known:
            raise InvalidKey("split.column", f"{self.split.column!r} is not in dataset.columns")
        for group, names in (
            ("target", (self.target,)),
            ("features.numeric", self.features.numeric),
            ("features.categorical", self.features.categorical),
            ("sensitive", self.sensitive),
        ):
            missing = [n for n in names if n not in known]
            if missing:
                raise ValueError(f"{group} names columns not in dataset.columns: {missing}")
        if self.target in self.features.all:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        both = set(self.features.numeric) & set(self.features.categorical)
        if both:
            raise ValueError(f"columns listed as both numeric and categorical: {sorted(both)}")
        if not self.features.all:
            raise ValueError("features: at least one numeric or categorical feature is needed")
        return self


# --------------------------------------------------------------------------- stages
class PathsConfig(_Frozen):
    data: Path = Path("data")
    reports: Path = Path("reports")
    models: Path = Path("models")
    expectations: Path = Path("expectations")


class ProfileConfig(_Frozen):
    """How `retrain profile` turns reference data into a first suite for review."""

    range_margin: float = Field(0.1, ge=0.0, description="profiled range (warns): widen by")
    plausible_margin: float = Field(1.0, ge=0.0, description="plausible range (rejects): widen by")
    null_rate_margin: float = Field(0.02, ge=0.0, le=1.0)
    max_categories: int = Field(100, ge=1)
    closed_min_count: int = Field(5, ge=1, description="closed set: every value seen this often")
    max_duplicate_share: float = Field(0.95, ge=0.0, le=1.0, description="rows with a copy")
    min_rows: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _plausible_is_wider(self) -> ProfileConfig:
        if self.plausible_margin < self.range_margin:
            raise InvalidKey(
                "plausible_margin",
                f"{self.plausible_margin} is narrower than range_margin ({self.range_margin})",
            )
        return self


class ValidateConfig(_Frozen):
    suite: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    profile: ProfileConfig = Field(default_factory=ProfileConfig)


class DriftConfig(_Frozen):
    """Per-column drift tests. ``engine: fast`` computes Evidently's statistics with numpy
    (same scores and verdicts, tested for parity) for large batches; the HTML report is always
    Evidently's own."""

    engine: Literal["evidently", "fast"] = "evidently"
    numeric_method: Literal["wasserstein", "ks", "psi", "jensenshannon"] = "wasserstein"
    numeric_threshold: float = Field(0.1, gt=0.0)
    categorical_method: Literal["jensenshannon", "chisquare", "psi"] = "jensenshannon"
    categorical_threshold: float = Field(0.1, gt=0.0)
    target_method: Literal["jensenshannon", "chisquare", "psi"] = "jensenshannon"
    target_threshold: float = Field(0.1, gt=0.0)
    dataset_share: Fraction = 0.5
    report_sample_rows: int = Field(20000, ge=100)


# classifier name -> (module, class); imported only when a TrainConfig is validated or fitted.
CLASSIFIERS: dict[str, tuple[str, str]] = {
    "hist_gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier"),
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression"),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier"),
    "gradient_boosting": ("sklearn.ensemble", "GradientBoostingClassifier"),
}


def classifier_class(name: str) -> type:
    import importlib

    module, cls = CLASSIFIERS[name]
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def classifier_params(name: str) -> set[str]:
    """The hyperparameter names the classifier accepts (for validating params.yaml)."""
    return set(classifier_class(name)().get_params(deep=False))


NO_CLASSIFIER_CHECK = "no_classifier_check"  # validation context: see load_params
ClassifierName = Literal[
    "hist_gradient_boosting", "logistic_regression", "random_forest", "gradient_boosting"
]
HyperValue = bool | int | float | str | None


class TrainConfig(_Frozen):
    classifier: ClassifierName = "hist_gradient_boosting"
    hyperparameters: dict[str, HyperValue] = Field(default_factory=dict)
    seed: int = 42
    max_categories: int = Field(50, ge=2, description="rarer categories are grouped")
    encoding: Literal["onehot", "ordinal"] = Field(
        "onehot",
        description="categorical features: one-hot columns, or ordinal codes (unknown/missing "
        "as NaN) that hist_gradient_boosting splits natively, for large data (at most 255 "
        "distinct values per feature; max_categories applies to one-hot only)",
    )

    @model_validator(mode="after")
    def _check_hyperparameters(self, info: ValidationInfo) -> TrainConfig:
        # the names a classifier takes come from scikit-learn (a second to import): a
        # command that fits nothing (`retrain status`) loads the params without asking it
        skip = bool(info.context and info.context.get(NO_CLASSIFIER_CHECK))
        allowed = set(self.hyperparameters) if skip else classifier_params(self.classifier)
        unknown = sorted(set(self.hyperparameters) - allowed)
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for classifier {self.classifier!r}"
            )
        if self.encoding == "ordinal" and self.classifier != "hist_gradient_boosting":
            raise ValueError(
                "encoding 'ordinal' needs classifier 'hist_gradient_boosting' (native "
                f"categorical splits); {self.classifier!r} would read the codes as quantities"
            )
        return self


class EvaluateConfig(_Frozen):
    bootstrap_samples: int = Field(1000, ge=50)
    linear_above_rows: int | None = Field(
        200_000,
        ge=2,
        description="above this many distinct rows, intervals by linearisation (DeLong for "
        "ROC AUC) instead of the bootstrap; null: always the bootstrap",
    )
    confidence: Fraction = 0.95
    decision_threshold: Fraction = 0.5
    calibration_bins: int = Field(10, ge=2)
    seed: int = 0


class BinsConfig(_Frozen):
    """A numeric sensitive attribute in ranges: fixed ``edges``, or ``quantiles`` groups."""

    edges: tuple[float, ...] | None = Field(None, min_length=1)
    quantiles: int | None = Field(None, ge=2)

    @model_validator(mode="after")
    def _one_kind(self) -> BinsConfig:
        if (self.edges is None) == (self.quantiles is None):
            raise ValueError("give edges or quantiles, one of the two")
        if self.edges is not None and list(self.edges) != sorted(set(self.edges)):
            raise InvalidKey("edges", f"must increase: {list(self.edges)}")
        return self

    @property
    def groups(self) -> int:
        return len(self.edges) + 1 if self.edges is not None else int(self.quantiles or 0)


class FairnessConfig(_Frozen):
    min_group_size: int = Field(30, ge=1)
    intersection: bool = True
    bins: dict[str, BinsConfig] = Field(default_factory=dict, description="numeric attributes")
    max_groups: int = Field(20, ge=2, description="more groups in one attribute: an error")

    @model_validator(mode="after")
    def _few_enough_groups(self) -> FairnessConfig:
        for name, b in self.bins.items():
            if b.groups > self.max_groups:
                raise InvalidKey(
                    f"bins.{name}", f"{b.groups} groups, more than max_groups ({self.max_groups})"
                )
        return self


MetricName = Literal["roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier", "ece"]
FairnessMeasure = Literal[
    "demographic_parity_difference", "equalized_odds_difference", "disparate_impact_ratio"
]


class Bound(_Frozen):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("a bound needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidKey("min", f"{self.min:g} is greater than max {self.max:g}")
        return self


# Where each bounded measure lives: a bound outside it fails every night, or never does.
MEASURE_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("roc_auc", "accuracy", "f1", "precision", "recall", "brier", "ece"), (0, 1)),
    "log_loss": (0.0, math.inf),
    "demographic_parity_difference": (0.0, 1.0),
    "equalized_odds_difference": (0.0, 1.0),
    "disparate_impact_ratio": (0.0, 1.0),  # the smallest selection rate over the largest
}


def check_bounds(section: str, bounds: Mapping[Any, Bound]) -> None:
    """A bound outside its measure's range names its key (``metrics.roc_auc.min``)."""
    for name, bound in bounds.items():
        lo, hi = MEASURE_RANGES[name]
        for side in ("min", "max"):
            v = getattr(bound, side)
            if v is not None and not lo <= v <= hi:
                raise InvalidKey(
                    f"{section}.{name}.{side}", f"{v:g} is outside {name}'s range [{lo:g}, {hi:g}]"
                )


class GateConfig(_Frozen):
    """Promotion rules. Absolute metric bounds are judged on the CI bound that is worst for the
    model (lower bound for a `min`, upper bound for a `max`) unless `use_interval` is false."""

    metrics: dict[MetricName, Bound] = Field(default_factory=dict)
    use_interval: bool = True
    fairness: dict[FairnessMeasure, Bound] = Field(default_factory=dict)
    fairness_include_intersection: bool = Field(
        False, description="judge bounds on the intersection too (it is always reported)"
    )
    non_inferiority_metric: MetricName = "roc_auc"
    non_inferiority_margin: float = Field(0.01, ge=0.0)
    fairness_regression_margin: float = Field(0.03, ge=0.0)
    max_failed_expectations: int = Field(0, ge=0)
    replace_failing_champion: bool = Field(
        True,
        description="a champion failing the bounds on the same rows is replaced by a challenger "
        "significantly better on the paired CI and not worse on fairness, even one that misses "
        "a bound too",
    )
    fairness_min_group_size: dict[FairnessMeasure, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="rows (parity, impact) or actual positives and negatives (equalized odds) "
        "a group needs to be judged, per measure; unset: fairness.min_group_size",
    )
    fairness_small_groups_hold_share: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="groups too small to judge hold a decision on their pooled point only when "
        "together they are at least this share of the held-out rows; fewer are reported",
    )
    degenerate_selection_rate: float = Field(
        0.02,
        ge=0.0,
        lt=0.5,
        description="a champion selecting at most this share (or at least 1 minus it) of the "
        "rows is degenerate: no fairness baseline",
    )
    importance_ndcg_min: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="nDCG of the challenger's feature-importance ranking against the "
        "champion's below this: a warning in the report and the reasons, never a block",
    )

    @model_validator(mode="after")
    def _check_bound_ranges(self) -> GateConfig:
        check_bounds("metrics", self.metrics)
        check_bounds("fairness", self.fairness)
        return self


class WindowConfig(_Frozen):
    """Training window and held-out split of accepted batches."""

    holdout_fraction: Fraction = 0.3
    last_batches: int | None = Field(None, ge=1, description="null: all accepted batches")
    include_reference: bool = True
    seed: int = 0


class NightlyConfig(_Frozen):
    """When a night retrains, where batches land and where rejected ones go."""

    retrain_on_drift: bool = True
    retrain_on_target_drift: bool = True
    retrain_every: int = Field(7, ge=0, description="nights; 0 = never on schedule")
    lock_timeout_seconds: float = Field(0.0, ge=0.0, description="0: refuse at once if busy")
    landing: Path = Path("data/landing")
    quarantine: Path = Path("data/quarantine")
    batch_folders: tuple[Path, ...] = Field(
        (),
        description="folders besides the landing a batch named on the command line or in "
        "the Airflow form may come from (a batch outside the workspace is copied, never moved)",
    )


class SeriesNight(_Frozen):
    scenario: Literal["stable", "covariate_drift", "label_shift", "corrupt", "biased"]
    force_retrain: bool = False


class ConceptConfig(_Frozen):
    """A concept change in the loop's live population: its outcomes follow a changed, learnable
    relationship. The labels of the rows above ``quantile`` of ``column`` (a numeric feature;
    the quantile is taken over the held-out file) are flipped, a ``flip_rate`` share of them."""

    column: str | None = Field(None, description="numeric feature; null: no concept change")
    quantile: Fraction = 0.5
    flip_rate: float = Field(1.0, ge=0.0, le=1.0)


class LoopConfig(_Frozen):
    """`retrain demo-loop` (the end of `make run`): the drifted population it serves."""

    column: str | None = Field(None, description="numeric feature to shift; null: the first")
    quantile: Fraction = Field(0.4, description="traffic comes from rows above this quantile")
    rows: int = Field(3000, ge=100, description="records in the first wave; the rest after")
    shifted_share: Fraction = Field(0.75, description="of each wave from the shifted rows")
    rollout: Literal["canary", "shadow"] = "shadow"
    last_batches: int | None = Field(1, ge=1, description="window.last_batches of its night")
    holdout_fraction: Fraction = Field(0.3, description="window.holdout_fraction of its night")
    include_reference: bool = Field(True, description="window.include_reference of its night")
    concept: ConceptConfig = Field(default_factory=ConceptConfig)


class SimulateConfig(_Frozen):
    """Scenario batches (`retrain simulate`); columns default to the dataset's first ones."""

    rows: int = Field(5000, ge=10)
    seed: int = 0
    covariate_column: str | None = None
    covariate_quantile: Fraction = 0.6
    label_shift_positive_rate: Fraction = 0.6
    poison_attribute: str | None = None
    poison_group: str | None = None
    poison_rate: float = Field(1.0, gt=0.0, le=1.0)
    biased_rows: int = Field(20000, ge=10)
    corruptions: tuple[
        Literal["out_of_range", "unknown_category", "nulls", "missing_column", "wrong_type"], ...
    ] = ("out_of_range", "unknown_category", "nulls")
    series_start: str = Field("2026-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    series: tuple[SeriesNight, ...] = ()
    loop: LoopConfig = Field(default_factory=LoopConfig)


class MlflowConfig(_Frozen):
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "retrain"
    registered_model: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")


class FeedbackConfig(_Frozen):
    """Which outcomes ``POST /feedback`` takes (:mod:`pipelines.serve.feedback`)."""

    memory: int = Field(
        200_000,
        ge=1,
        description="answered request ids remembered (about 230 bytes each); older ones are "
        "refused",
    )
    ttl_hours: float = Field(24.0, gt=0.0, description="outcomes later than this are refused")
    relabel: Literal["reject", "correct"] = Field(
        "reject",
        description="a different second label for an answer: refused (409), or logged as a "
        "correction (the latest wins)",
    )


class RateLimitConfig(_Frozen):
    """How fast one client (its bearer token, else its address) may send."""

    predict_per_second: float | None = Field(
        None, gt=0.0, description="POST /predict requests per second; null: no limit"
    )
    feedback_outcomes_per_second: float | None = Field(
        1000.0, gt=0.0, description="outcomes POST /feedback takes per second; null: no limit"
    )
    burst_seconds: float = Field(10.0, gt=0.0, description="seconds' worth sent at once")


class ServeConfig(_Frozen):
    """The serving side of the loop: where answers and late outcomes are logged."""

    prediction_log: str = Field(
        "data/live",
        description="folder for Parquet files rolled by hour, or a postgresql:// URL; "
        "RETRAIN_PREDICTION_LOG overrides",
    )
    flush_rows: int = Field(100_000, ge=1, description="write the log when this many rows wait")
    flush_seconds: float = Field(1.0, gt=0.0, description="... or when the oldest waited this long")
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)


class OutcomeGuardConfig(_Frozen):
    """New outcomes that contradict the served answers are held, not landed."""

    enabled: bool = True
    min_rows: int = Field(100, ge=10, description="fewer new outcomes: landed unjudged")
    min_auc: float = Field(
        0.3, ge=0.0, le=0.5, description="hold when the answers' ROC AUC CI lies below this"
    )
    max_share_change: float = Field(
        0.35, gt=0.0, le=1.0, description="hold when the positive share moved more (CI)"
    )
    confident: float = Field(
        0.9, ge=0.5, lt=1.0, description="an answer this sure (either way) is a confident one"
    )
    max_confident_contradicted: float = Field(
        0.6, gt=0.0, lt=1.0, description="hold when more confident answers are contradicted (CI)"
    )


class EstimatedConfig(_Frozen):
    """Performance estimated before outcomes arrive, from the champion's calibrator (kept with
    the version at evaluation): published always; a retrain on its drop only when switched on."""

    retrain: bool = Field(
        False, description="ask for a retrain when the estimated drop exceeds max_drop"
    )
    max_drop: float = Field(
        0.03, ge=0.0, description="champion's evaluated metric minus the estimate's interval top"
    )
    draws: int = Field(
        200, ge=50, le=10_000, description="simulated sets of outcomes behind the interval"
    )


class MonitorConfig(_Frozen):
    """`retrain monitor` / the `retrain_monitor` DAG: live drift and live performance."""

    window_hours: float = Field(24.0, gt=0.0, description="judge the predictions of this span")
    outcome_horizon_hours: float = Field(
        24.0,
        gt=0.0,
        description="land outcomes that arrive within this span of their answer; a pass reads "
        "the log over max(window_hours, this) and no further back",
    )
    min_rows: int = Field(200, ge=10, description="fewer logged predictions: no drift verdict")
    min_labelled_rows: int = Field(200, ge=10, description="fewer joined labels: no performance")
    metric: Literal["roc_auc", "accuracy", "f1", "precision", "recall"] = "roc_auc"
    max_drift_share: Fraction = Field(0.3, description="share of drifted columns that retrains")
    max_performance_drop: float = Field(
        0.03, ge=0.0, description="champion's evaluated metric minus the live interval's top"
    )
    attribution_ndcg_min: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="nDCG of the live window's feature-importance ranking against the "
        "reference's below this: attribution drift is flagged (reported, never a retrain)",
    )
    pushgateway: str | None = Field(None, description="host:port of a Prometheus Pushgateway")
    outcome_guard: OutcomeGuardConfig = Field(default_factory=OutcomeGuardConfig)
    estimated: EstimatedConfig = Field(default_factory=EstimatedConfig)


class CanaryConfig(_Frozen):
    """A gate-passed challenger beside the champion, decided on labelled live traffic."""

    share: Fraction = Field(0.2, description="share of requests the canary answers")
    min_rows: int = Field(300, ge=20, description="labelled rows per arm before deciding")
    max_hours: float = Field(24.0, gt=0.0, description="undecided after this long: abort")
    metric: Literal["roc_auc", "accuracy", "f1", "precision", "recall"] = "roc_auc"
    margin: float = Field(0.01, ge=0.0, description="promote unless worse by more than this")
    fairness_margin: float = Field(0.03, ge=0.0, description="per-group regression allowed")
    method: Literal["sequential", "fixed"] = Field(
        "sequential",
        description="sequential: confidence sequences, valid however often a pass looks; "
        "fixed: a bootstrap interval at each look (its error grows with the looks)",
    )


class DeployConfig(_Frozen):
    """How a gate-passed challenger reaches traffic."""

    rollout: Literal["direct", "canary", "shadow"] = "direct"
    approval: Literal["none", "required"] = "none"
    approval_timeout_minutes: float = Field(1440.0, gt=0.0, description="then: rejected")
    replicas: int = Field(
        1, ge=1, le=16, strict=True, description="serving containers behind nginx (retrain deploy)"
    )
    canary: CanaryConfig = Field(default_factory=CanaryConfig)


# --------------------------------------------------------------------------- root
class Params(_Frozen):
    dataset: DatasetConfig
    paths_config: PathsConfig = Field(default_factory=PathsConfig, alias="paths")
    validate_: ValidateConfig = Field(alias="validate")
    drift: DriftConfig = Field(default_factory=DriftConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    window: WindowConfig = Field(default_factory=WindowConfig)
    nightly: NightlyConfig = Field(default_factory=NightlyConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    mlflow: MlflowConfig

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Where the params file lives: relative paths are resolved against it.
    root: Path = Field(Path("."), exclude=True)
    # The file itself (None when parsed from a mapping): DVC's stage processes read the same one.
    file: Path | None = Field(None, exclude=True)

    @field_validator("root")
    @classmethod
    def _abs_root(cls, v: Path) -> Path:
        return v.resolve()

    @model_validator(mode="after")
    def _bins_of_sensitive_numbers(self) -> Params:
        for name in self.fairness.bins:
            if name not in self.dataset.sensitive:
                raise InvalidKey(f"fairness.bins.{name}", "not in dataset.sensitive")
            if name in self.dataset.features.categorical:
                raise InvalidKey(f"fairness.bins.{name}", "a categorical feature has no ranges")
        return self

    @property
    def validate(self) -> ValidateConfig:  # type: ignore[override]
        return self.validate_

    # ---- resolved locations (built in one place: :class:`Paths`)
    def path(self, p: Path | str) -> Path:
        p = Path(p)
        return p if p.is_absolute() else self.root / p

    @cached_property
    def paths(self) -> Paths:
        """Every file and folder the pipeline reads or writes, resolved against the workspace."""
        c = self.paths_config
        return Paths(
            root=self.root,
            data=self.path(c.data),
            reports=self.path(c.reports),
            models=self.path(c.models),
            suite=self.path(c.expectations) / f"{self.validate.suite}.json",
            landing=self.path(self.nightly.landing),
            quarantine=self.path(self.nightly.quarantine),
            live=self.path(self.serve.prediction_log)
            if "://" not in self.serve.prediction_log
            else self.path(c.data) / "live",
        )

    @property
    def prediction_log(self) -> str:
        """Where serving logs answers and outcomes: a folder, or a postgresql:// URL."""
        env = settings().prediction_log or self.serve.prediction_log
        return env if "://" in env else str(self.path(env))

    @property
    def mirror(self) -> Path | None:
        env = settings().dataset_mirror
        if env:
            return env.resolve()
        return self.path(self.dataset.mirror) if self.dataset.mirror else None

    @property
    def tracking_uri(self) -> str:
        uri = settings().mlflow_tracking_uri or self.mlflow.tracking_uri
        prefix = "sqlite:///"
        if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
            uri = prefix + str(self.root / uri[len(prefix) :])  # relative to the workspace
        return uri


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(
            str(p) for p in e["loc"] if not str(p).startswith("function-after") and p != "[key]"
        )
        loc = loc.replace("validate_", "validate").replace("paths_config", "paths")
        keyed = (e.get("ctx") or {}).get("error")
        if isinstance(keyed, InvalidKey):
            lines.append(f"{source}: key '{loc + '.' if loc else ''}{keyed.key}': {keyed.message}")
        elif e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{loc}'")
        elif e["type"] == "missing":
            lines.append(f"{source}: missing key '{loc}'")
        else:
            got = e.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"{source}: key '{loc or '<root>'}': {e['msg']}{shown}")
    return "\n".join(lines)


def parse_params(
    raw: Any,
    source: str = DEFAULT_PARAMS,
    root: Path | None = None,
    file: Path | None = None,
    *,
    check_classifier: bool = True,
) -> Params:
    """Validate an already-loaded mapping into :class:`Params` (``check_classifier``: see
    :func:`load_params`)."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    context = None if check_classifier else {NO_CLASSIFIER_CHECK: True}
    try:
        return Params.model_validate(
            {**raw, "root": root or Path("."), "file": file}, context=context
        )
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_params(path: Path | str | None = None, *, check_classifier: bool = True) -> Params:
    """Read and validate the params file (default: $RETRAIN_PARAMS, then ./params.yaml).

    ``check_classifier=False``: every key is validated but the hyperparameter names, which
    only scikit-learn knows (importing it costs a second); for commands that fit nothing and
    must answer at once (`retrain status`). Every command that trains checks them."""
    p = Path(path or settings().params or DEFAULT_PARAMS)
    if not p.is_file():
        raise ConfigError(f"{p}: params file not found")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from None
    return parse_params(
        raw,
        source=str(p),
        root=p.resolve().parent,
        file=p.resolve(),
        check_classifier=check_classifier,
    )
