"""Stage `drift`: has the current data moved away from the reference data?

The core, :func:`detect_drift`, scores every feature column (and, separately, the target) with
the method and threshold from the ``drift`` params, and returns a :class:`DriftResult`: per
column score and verdict, the share of drifted feature columns, the dataset verdict
(``share >= dataset_share``) and the reasons as short sentences.

Scores come from an *engine*, a function that scores a list of columns:

* ``"evidently"`` runs one Evidently 0.7 ``Report`` with a ``ValueDrift`` metric per column, the
  column types given explicitly through ``DataDefinition``;
* ``"fast"`` computes the same statistics with numpy/scipy, one small function per column
  (:func:`score_column`), following Evidently's own implementations
  (``evidently/legacy/calculations/stattests``): normed Wasserstein, Jensen-Shannon and PSI on
  Evidently's bins, K-S and chi-square p-values. It gives the same numbers (to ~1e-14) without
  the plots and summaries Evidently also builds per column, which dominate its run time.

Both engines see the same cleaned values: missing (None/NaN) and infinite values are dropped per
column, as Evidently does. A column with no values left on one side cannot be scored; it counts
as drifted when the other side has values. :func:`main` is the thin edge: it reads the prepared
files, writes ``drift.json`` (the result), ``metrics.json`` (flat numbers for ``dvc metrics``)
and ``drift.html`` (Evidently's report on a seeded sample), and prints a short summary.
Drift is a finding, not an error: the exit code is 0 either way, 2 on unusable input.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipelines.config import ConfigError, DatasetConfig, DriftConfig, load_params
from pipelines.data import DataError, clean, read_parquet, read_table
from pipelines.files import write_atomic, write_json

Kind = Literal["numeric", "categorical"]

# Evidently's decision rule per method: distances drift at or above the threshold, p-values
# at or below (K-S) / strictly below (chi-square) the significance level.
_RULES: dict[str, str] = {
    "wasserstein": ">=",
    "jensenshannon": ">=",
    "psi": ">=",
    "ks": "<=",
    "chisquare": "<",
}
_NUMERIC_ONLY = {"wasserstein", "ks"}
_N_BINS_MIN_UNIQUE = 20  # Evidently bins a numeric column by histogram above 20 distinct values
REPORT_SEED = 0
REPORT_FILE, RESULT_FILE, METRICS_FILE = "drift.html", "drift.json", "metrics.json"


# --------------------------------------------------------------------------- value objects
@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: the method, its threshold, the score and the verdict.

    ``score`` is None when one side has no values at all (nothing to compare).
    ``missing_reference`` / ``missing_current`` are the shares of missing or infinite values,
    which the statistics ignore.
    """

    column: str
    kind: Kind
    method: str
    threshold: float
    score: float | None
    drifted: bool
    missing_reference: float = 0.0
    missing_current: float = 0.0

    @property
    def rule(self) -> str:
        return _RULES[self.method]

    @property
    def severity(self) -> float:
        """How far past (>1) or short of (<1) its threshold the score is, for ranking columns."""
        if self.score is None:
            return math.inf if self.drifted else 0.0
        if self.rule == ">=":
            return self.score / self.threshold
        return self.threshold / max(self.score, 1e-300)

    def describe(self, label: str = "column") -> str:
        if self.score is None:
            side = "current" if self.missing_current == 1.0 else "reference"
            return f"{label} {self.column!r} has no values in the {side} data"
        stat = f"{self.method} p-value" if self.rule != ">=" else self.method
        if self.drifted:
            op = self.rule
        else:
            op = {">=": "<", "<=": ">", "<": ">="}[self.rule]
        return f"{label} {self.column!r} {stat} {self.score:.3g} {op} {self.threshold:g}"


@dataclass(frozen=True)
class DriftResult:
    """The drift decision: per-column scores, the share of drifted features, and why."""

    drifted: bool
    share: float
    n_drifted: int
    n_columns: int
    dataset_share: float
    columns: tuple[ColumnDrift, ...]
    target: ColumnDrift
    reasons: tuple[str, ...]
    n_reference: int
    n_current: int
    engine: str

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.drifted)

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain floats and ints, no numpy scalars, non-finite numbers as None."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "columns":
                v = [_column_to_dict(c) for c in v]
            elif f.name == "target":
                v = _column_to_dict(v)
            elif f.name == "reasons":
                v = list(v)
            out[f.name] = _json_safe(v)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftResult:
        return cls(
            drifted=bool(d["drifted"]),
            share=float(d["share"]),
            n_drifted=int(d["n_drifted"]),
            n_columns=int(d["n_columns"]),
            dataset_share=float(d["dataset_share"]),
            columns=tuple(ColumnDrift(**c) for c in d["columns"]),
            target=ColumnDrift(**d["target"]),
            reasons=tuple(d["reasons"]),
            n_reference=int(d["n_reference"]),
            n_current=int(d["n_current"]),
            engine=str(d["engine"]),
        )

    def metrics(self) -> dict[str, float | int | None]:
        """Flat numbers for ``dvc metrics show``."""
        return {
            "drift_share": float(self.share),
            "n_drifted": int(self.n_drifted),
            "dataset_drift": int(self.drifted),
            "target_drift_score": _json_safe(self.target.score),
        }


def _column_to_dict(c: ColumnDrift) -> dict[str, Any]:
    return {f.name: _json_safe(getattr(c, f.name)) for f in fields(c)}


def _json_safe(v: Any) -> Any:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v


# --------------------------------------------------------------------------- one column (fast)
@dataclass(frozen=True)
class ColumnTest:
    """What to compute for one column: its type, method and threshold."""

    column: str
    kind: Kind
    method: str
    threshold: float


def score_column(reference: pd.Series, current: pd.Series, kind: Kind, method: str) -> float:
    """The drift score of one column, as Evidently computes it, with numpy/scipy only.

    Both series must already be free of missing and infinite values and non-empty.
    """
    if method == "wasserstein":
        return _wasserstein_norm(reference, current)
    if method == "ks":
        from scipy import stats

        r, c = _floats(reference), _floats(current)
        return float(stats.ks_2samp(r, c)[1])
    if method == "jensenshannon":
        from scipy.spatial import distance

        p, q = _binned(reference, current, kind, fill_zeroes=False)
        return float(distance.jensenshannon(p, q))
    if method == "psi":
        p, q = _binned(reference, current, kind, fill_zeroes=True)
        return float(np.sum((p - q) * np.log(p / q)))
    if method == "chisquare":
        return _chisquare_pvalue(reference, current)
    raise ValueError(f"unknown drift method {method!r}")


def _floats(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype=np.float64)


def _wasserstein_norm(reference: pd.Series, current: pd.Series) -> float:
    """The first Wasserstein distance over the reference's (population) std, floored at 1e-3."""
    norm = max(float(np.std(_floats(reference))), 0.001)
    return _wasserstein(reference, current) / norm


def _wasserstein(u: pd.Series, v: pd.Series) -> float:
    """``scipy.stats.wasserstein_distance(u, v)``: the area between the two empirical CDFs.

    scipy sorts every value (three sorts of up to N values); here each side is counted per
    distinct value (hashing) and only the distinct values are sorted. The CDFs are the same
    integer counts over N at the same points, so the result equals scipy's up to summation
    order, and it is several times faster on columns with repeated values.
    """
    uc, vc = u.value_counts(sort=False), v.value_counts(sort=False)
    grid = np.union1d(uc.index.to_numpy(dtype=np.float64), vc.index.to_numpy(dtype=np.float64))
    u_cdf = np.cumsum(uc.reindex(grid, fill_value=0).to_numpy()) / len(u)
    v_cdf = np.cumsum(vc.reindex(grid, fill_value=0).to_numpy()) / len(v)
    return float(np.sum(np.abs(u_cdf[:-1] - v_cdf[:-1]) * np.diff(grid)))


def _value_counts(s: pd.Series) -> pd.Series:
    """Counts of the values present (a categorical's unused categories left out), most common
    first, indexed by plain values."""
    vc = s.value_counts()
    if isinstance(s.dtype, pd.CategoricalDtype):
        vc = vc[vc.to_numpy() > 0]
        vc.index = pd.Index(np.asarray(vc.index, dtype=object))
    return vc


def _counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Value counts of both sides over the union of their values (aligned)."""
    rc, cc = _value_counts(reference), _value_counts(current)
    keys = rc.index.append(cc.index[~cc.index.isin(rc.index)])
    return (
        rc.reindex(keys, fill_value=0).to_numpy(dtype=np.float64),
        cc.reindex(keys, fill_value=0).to_numpy(dtype=np.float64),
    )


def _binned(
    reference: pd.Series, current: pd.Series, kind: Kind, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: shares per bin (numeric, >20 distinct values in the
    reference: Sturges histogram over both sides) or per value, zeros optionally smoothed."""
    if kind == "numeric" and reference.nunique() > _N_BINS_MIN_UNIQUE:
        r, c = _floats(reference), _floats(current)
        edges = np.histogram_bin_edges(np.concatenate([r, c]), bins="sturges")
        p = np.histogram(r, edges)[0] / len(r)
        q = np.histogram(c, edges)[0] / len(c)
    else:
        rc, cc = _counts(reference, current)
        p, q = rc / len(reference), cc / len(current)
    if fill_zeroes:
        p, q = _fill_zeroes(p), _fill_zeroes(q)
    return p, q


def _fill_zeroes(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64, copy=True)
    smallest = x[x != 0].min()
    x[x == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return x


def _chisquare_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Chi-square goodness of fit of the current counts to the reference shares."""
    from scipy import stats

    rc, cc = _counts(reference, current)
    expected = rc * (len(current) / len(reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(cc, expected)[1])


def is_drifted(method: str, score: float, threshold: float) -> bool:
    """Evidently's verdict for a score of this method."""
    rule = _RULES[method]
    if rule == ">=":
        return bool(score >= threshold)
    if rule == "<=":
        return bool(score <= threshold)
    return bool(score < threshold)


# --------------------------------------------------------------------------- engines
@dataclass(frozen=True, eq=False)
class ColumnData:
    """One column to score: its test and each side's usable values (missing and infinite values
    dropped, as Evidently drops them), never empty."""

    test: ColumnTest
    reference: pd.Series
    current: pd.Series


# An engine scores columns and returns (score, drifted) per column, in order. It gets the two
# frames too, for engines (Evidently) that do their own cleaning.
Engine = Callable[[pd.DataFrame, pd.DataFrame, Sequence[ColumnData]], list[tuple[float, bool]]]


def _usable(s: pd.Series) -> pd.Series:
    """The values a statistic sees: missing and infinite ones dropped.

    Plain numeric columns come back as float64 arrays; text columns as categoricals, so each
    side is hashed once and every count after that is a ``bincount`` of small integer codes
    (at a million rows this is most of the fast engine's time). The values are the same either
    way; only their dtype differs.
    """
    if s.dtype.kind in "iuf":
        v = s.to_numpy(dtype=np.float64)
        return pd.Series(v[np.isfinite(v)], name=s.name, copy=False)
    if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype | pd.StringDtype):
        cat = s if isinstance(s.dtype, pd.CategoricalDtype) else s.astype("category")
        codes = cat.cat.codes.to_numpy()
        kept = pd.Categorical.from_codes(codes[codes >= 0], dtype=cat.dtype)
        return pd.Series(kept, name=s.name, copy=False)
    if pd.api.types.is_numeric_dtype(s):
        s = s.replace([np.inf, -np.inf], np.nan)
    return s.dropna()


def _scores_fast(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[ColumnData]
) -> list[tuple[float, bool]]:
    out = []
    for c in columns:
        t = c.test
        score = score_column(c.reference, c.current, t.kind, t.method)
        out.append((score, is_drifted(t.method, score, t.threshold)))
    return out


def _definition(tests: Sequence[ColumnTest]) -> Any:
    """Column types stated in full, so Evidently infers nothing."""
    from evidently import DataDefinition

    return DataDefinition(
        numerical_columns=[t.column for t in tests if t.kind == "numeric"],
        categorical_columns=[t.column for t in tests if t.kind == "categorical"],
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )


def _for_evidently(df: pd.DataFrame, tests: Sequence[ColumnTest]) -> pd.DataFrame:
    """The tested columns, infinities as NaN: Evidently drops them from the statistics anyway,
    but its plots and summaries would otherwise compute with them."""
    numeric = [t.column for t in tests if t.kind == "numeric"]
    df = df[[t.column for t in tests]]
    if numeric:
        df = df.assign(**{c: df[c].replace([np.inf, -np.inf], np.nan) for c in numeric})
    return df


def _scores_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[ColumnData]
) -> list[tuple[float, bool]]:
    """One Evidently Report with a ValueDrift metric (and its drift test) per column."""
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift

    tests = [c.test for c in columns]
    if not tests:
        return []
    definition = _definition(tests)
    report = Report(
        [ValueDrift(column=t.column, method=t.method, threshold=t.threshold) for t in tests],
        include_tests=True,
    )
    with np.errstate(divide="ignore"):  # chi-square of a category unseen in the reference
        snapshot = report.run(
            reference_data=Dataset.from_pandas(
                _for_evidently(reference, tests), data_definition=definition
            ),
            current_data=Dataset.from_pandas(
                _for_evidently(current, tests), data_definition=definition
            ),
        )
    out = snapshot.dict()
    score = {m["config"]["column"]: float(m["value"]) for m in out["metrics"]}
    column_of = {m["id"]: m["config"]["column"] for m in out["metrics"]}
    failed = {
        column_of[t["metric_config"]["metric_id"]]: t["status"] == "FAIL" for t in out["tests"]
    }
    return [(score[t.column], failed[t.column]) for t in tests]


ENGINES: dict[str, Engine] = {"evidently": _scores_evidently, "fast": _scores_fast}


# --------------------------------------------------------------------------- core
def column_tests(dataset: DatasetConfig, cfg: DriftConfig) -> tuple[list[ColumnTest], ColumnTest]:
    """The feature tests (numeric first, then categorical) and the target test, from config."""
    if cfg.categorical_method in _NUMERIC_ONLY:
        raise ConfigError(
            f"drift.categorical_method: {cfg.categorical_method!r} works on numeric columns only "
            "(use jensenshannon, chisquare or psi)"
        )
    features = [
        ColumnTest(c, "numeric", cfg.numeric_method, cfg.numeric_threshold)
        for c in dataset.features.numeric
    ] + [
        ColumnTest(c, "categorical", cfg.categorical_method, cfg.categorical_threshold)
        for c in dataset.features.categorical
    ]
    target = ColumnTest(dataset.target, "categorical", cfg.target_method, cfg.target_threshold)
    return features, target


def _check_frames(reference: pd.DataFrame, current: pd.DataFrame, dataset: DatasetConfig) -> None:
    required = [*dataset.features.all, dataset.target]
    for side, df in (("reference", reference), ("current", current)):
        if len(df) == 0:
            raise DataError(f"{side} data has no rows")
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise DataError(f"{side} data: missing column(s) {missing}")
        for c in dataset.features.numeric:
            s = df[c]
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                raise DataError(f"{side} data: numeric column {c!r} has dtype {s.dtype}")


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    dataset: DatasetConfig,
    cfg: DriftConfig,
    *,
    engine: str | None = None,
) -> DriftResult:
    """Compare current data with reference data, column by column, and decide.

    Features use ``cfg.numeric_method`` / ``cfg.categorical_method`` by their declared type; the
    target is judged separately with ``cfg.target_method`` and does not count towards the
    share. The dataset drifts when the share of drifted features is at least
    ``cfg.dataset_share``. The engine defaults to ``cfg.engine``.
    """
    engine = engine or cfg.engine
    if engine not in ENGINES:
        raise ValueError(f"unknown drift engine {engine!r} (choose from {sorted(ENGINES)})")
    _check_frames(reference, current, dataset)
    feature_tests, target_test = column_tests(dataset, cfg)
    tests = [*feature_tests, target_test]

    missing: dict[str, tuple[float, float]] = {}
    scorable: list[ColumnData] = []
    for t in tests:
        ref, cur = _usable(reference[t.column]), _usable(current[t.column])
        missing[t.column] = (1.0 - len(ref) / len(reference), 1.0 - len(cur) / len(current))
        if len(ref) and len(cur):
            scorable.append(ColumnData(t, ref, cur))
    scored = ENGINES[engine](reference, current, scorable)
    scores = dict(zip([c.test.column for c in scorable], scored, strict=True))

    results: list[ColumnDrift] = []
    for t in tests:
        mr, mc = missing[t.column]
        if t.column in scores:
            score, drifted = scores[t.column]
            value: float | None = float(score)
        else:  # a side with no values at all: drift unless both are empty
            value, drifted = None, (mr < 1.0) != (mc < 1.0)
        results.append(
            ColumnDrift(
                column=t.column,
                kind=t.kind,
                method=t.method,
                threshold=float(t.threshold),
                score=value,
                drifted=bool(drifted),
                missing_reference=float(mr),
                missing_current=float(mc),
            )
        )
    *columns, target = results
    n_drifted = sum(c.drifted for c in columns)
    share = n_drifted / len(columns)
    drifted = share >= cfg.dataset_share
    return DriftResult(
        drifted=drifted,
        share=share,
        n_drifted=n_drifted,
        n_columns=len(columns),
        dataset_share=cfg.dataset_share,
        columns=tuple(columns),
        target=target,
        reasons=tuple(_reasons(columns, target, n_drifted, share, drifted, cfg.dataset_share)),
        n_reference=len(reference),
        n_current=len(current),
        engine=engine,
    )


def _ranked(columns: Iterable[ColumnDrift]) -> list[ColumnDrift]:
    """Most severe first; ties (to 9 digits, so both engines rank alike) in column order."""
    return sorted(columns, key=lambda c: -round(c.severity, 9))


def _reasons(
    columns: Sequence[ColumnDrift],
    target: ColumnDrift,
    n_drifted: int,
    share: float,
    drifted: bool,
    dataset_share: float,
) -> list[str]:
    where = "at or above" if drifted else "below"
    verdict = "dataset drift" if drifted else "no dataset drift"
    reasons = [
        f"{n_drifted} of {len(columns)} columns drifted ({share:.0%}), {where} the "
        f"{dataset_share:.0%} share: {verdict}"
    ]
    ranked = _ranked(c for c in columns if c.drifted)
    reasons += [c.describe() for c in ranked]
    suffix = (
        "" if target.score is None else (": label shift" if target.drifted else ": no label shift")
    )
    reasons.append(target.describe("target") + suffix)
    return reasons


# --------------------------------------------------------------------------- artifacts
def write_html_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    dataset: DatasetConfig,
    cfg: DriftConfig,
    path: Path,
) -> Path:
    """Evidently's own drift report (HTML) on a seeded sample of at most
    ``cfg.report_sample_rows`` rows per side, written atomically.

    It shows the distributions behind the numbers. The decision is :func:`detect_drift`'s, on
    all rows: on a sample the report's scores are close to ``drift.json``'s, not equal.
    """
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    ref = _sample(reference, cfg.report_sample_rows)
    cur = _sample(current, cfg.report_sample_rows)
    feature_tests, target_test = column_tests(dataset, cfg)
    # Evidently cannot score a column that is empty on one side: leave those out of the report
    tests = [
        t
        for t in [*feature_tests, target_test]
        if _usable(ref[t.column]).size and _usable(cur[t.column]).size
    ]
    metrics: list[Any] = [
        DataDriftPreset(
            columns=[t.column for t in tests if t != target_test],
            num_method=cfg.numeric_method,
            cat_method=cfg.categorical_method,
            num_threshold=cfg.numeric_threshold,
            cat_threshold=cfg.categorical_threshold,
            drift_share=cfg.dataset_share,
        )
    ]
    if target_test in tests:
        metrics.append(
            ValueDrift(
                column=target_test.column,
                method=target_test.method,
                threshold=target_test.threshold,
            )
        )
    definition = _definition(tests)
    with np.errstate(divide="ignore"):  # chi-square of a category unseen in the reference
        snapshot = Report(metrics).run(
            reference_data=Dataset.from_pandas(
                _for_evidently(ref, tests), data_definition=definition
            ),
            current_data=Dataset.from_pandas(
                _for_evidently(cur, tests), data_definition=definition
            ),
        )
    return write_atomic(Path(path), lambda tmp: snapshot.save_html(str(tmp)))


def _sample(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df if len(df) <= n else df.sample(n=n, random_state=REPORT_SEED)


def write_result(result: DriftResult, out_dir: Path) -> tuple[Path, Path]:
    """``drift.json`` (the full result) and ``metrics.json`` (flat, for DVC) in ``out_dir``."""
    out_dir = Path(out_dir)
    return (
        write_json(out_dir / RESULT_FILE, result.to_dict()),
        write_json(out_dir / METRICS_FILE, result.metrics()),
    )


def summary_lines(result: DriftResult, top: int = 5) -> list[str]:
    """A short readable summary: verdict and share, then the columns nearest to (or past) their
    thresholds, then the target."""
    lines = [
        f"drift: {'DATASET DRIFT' if result.drifted else 'no dataset drift'} - "
        f"{result.n_drifted} of {result.n_columns} feature columns drifted "
        f"({result.share:.0%}; dataset drift at {result.dataset_share:.0%}), "
        f"{result.n_reference:,} reference vs {result.n_current:,} current rows"
    ]
    ranked = _ranked(result.columns)[:top]
    title = "drifted columns" if result.n_drifted else "closest to their thresholds"
    lines.append(f"drift: {title}:")
    for c in ranked:
        if c.drifted or not result.n_drifted:
            flag = "DRIFT" if c.drifted else "ok   "
            lines.append(f"  {flag} {c.describe()}")
    flag = "DRIFT" if result.target.drifted else "ok   "
    lines.append(f"  {flag} {result.target.describe('target')}")
    return lines


# --------------------------------------------------------------------------- edge
def read_frame(path: Path, dataset: DatasetConfig) -> pd.DataFrame:
    """A cleaned batch from Parquet or CSV (text read once per distinct value)."""
    path = Path(path)
    if path.suffix != ".parquet":
        return read_table(path, dataset)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        df = read_parquet(path, text="category")
    except Exception as err:  # noqa: BLE001 - any reader failure is reported with the file name
        raise DataError(f"{path}: unreadable: {type(err).__name__}: {err}") from None
    if df.empty:
        raise DataError(f"{path}: file has no rows")
    return clean(df, dataset, source=str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="drift", description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    ap.add_argument("--reference", type=Path, default=None, help="reference data (.parquet/.csv)")
    ap.add_argument("--current", type=Path, default=None, help="current data (.parquet/.csv)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default reports/drift)")
    args = ap.parse_args(argv)
    try:
        params = load_params(args.params)
        default_ref, default_cur = (params.paths.prepared_reference, params.paths.prepared_current)
        ref_path, cur_path = args.reference or default_ref, args.current or default_cur
        out = args.out or params.paths.stage("drift")
        reference = read_frame(ref_path, params.dataset)
        current = read_frame(cur_path, params.dataset)
        result = detect_drift(reference, current, params.dataset, params.drift)
    except (ConfigError, DataError) as err:
        print(f"drift: error: {err}", file=sys.stderr)
        return 2
    full, flat = write_result(result, out)
    html = write_html_report(reference, current, params.dataset, params.drift, out / REPORT_FILE)
    print("\n".join(summary_lines(result)))
    print(f"drift: wrote {full.name}, {flat.name}, {html.name} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
