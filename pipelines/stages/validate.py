"""Stage `validate`: check a batch against the committed Great Expectations suite.

The suite (``expectations/<suite>.json``) is first generated from reference data by
:func:`profile_suite` (``python -m pipelines.stages.validate profile``), then reviewed and committed
by a person. :func:`validate_frame` runs it on a dataframe with an
ephemeral GX context and returns a :class:`ValidationResult`: the verdict, the numbers and one
readable sentence per failed expectation. A batch that cannot even be read (empty, unreadable,
a required column missing, text in a numeric column) is a failed result too, so it can be
quarantined with its report.

``python -m pipelines.stages.validate run`` writes ``validation.json`` and ``validation.html``, then
exits 0 when the batch passes and 1 when it fails (so ``dvc repro`` stops there); bad input
(params, a missing or invalid suite, a data path that does not exist) exits 2 with one line.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import ConfigError, Params, load_params
from pipelines.data import DataError, md5_of, read_table
from pipelines.files import write_text

# Types a numeric feature may have: pandas dtypes for typed columns, and the Python types GX
# checks value by value when the column has dtype object.
NUMERIC_TYPES = ("int32", "int64", "float32", "float64", "Int64", "Float64", "int", "float")
# A categorical column is object dtype holding str (GX then checks each value) or pandas' string.
CATEGORICAL_TYPES = ("str", "StringDtype")
SCHEMA_ERROR = "schema_error"  # the `expectation` of a failure found before GX could run

_PARTIAL_COUNT = 20  # unexpected values GX keeps per expectation (examples in messages)


class SuiteError(ValueError):
    """An expectation suite that cannot be used; the message names the file or expectation."""


# --------------------------------------------------------------------------- result objects
@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation, with a sentence saying what was expected and what was seen."""

    expectation: str  # GX expectation type, or SCHEMA_ERROR
    column: str | None
    message: str
    unexpected_count: int | None = None
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectationCheck:
    """Every evaluated expectation (passed or not), for the report."""

    expectation: str
    column: str | None
    success: bool
    expected: str
    observed: str


@dataclass(frozen=True)
class ValidationResult:
    success: bool
    n_rows: int | None
    evaluated: int
    failed: tuple[FailedExpectation, ...]
    checks: tuple[ExpectationCheck, ...] = ()
    suite: str = ""
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ValidationResult:
        failed = tuple(
            FailedExpectation(**{**f, "examples": tuple(f.get("examples", ()))})
            for f in d["failed"]
        )
        checks = tuple(ExpectationCheck(**c) for c in d.get("checks", ()))
        return cls(
            success=bool(d["success"]),
            n_rows=d.get("n_rows"),
            evaluated=int(d["evaluated"]),
            failed=failed,
            checks=checks,
            suite=d.get("suite", ""),
            source=d.get("source"),
        )


# --------------------------------------------------------------------------- profiling
def _num(x: float) -> int | float:
    """A number as JSON shows it best: an int when it is whole."""
    return int(x) if float(x).is_integer() else float(x)


def _expectation(type_: str, meta: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs, "meta": meta or {}, "severity": "critical"}


def _numeric_range(s: pd.Series, margin: float) -> tuple[float, float, float, float] | None:
    """(allowed min, allowed max, observed min, observed max), or None for an all-null column."""
    values = pd.to_numeric(s, errors="coerce").dropna()
    if values.empty:
        return None
    lo, hi = float(values.min()), float(values.max())
    pad = margin * (hi - lo)
    low, high = lo - pad, hi + pad
    if lo >= 0:  # a column never negative in the reference stays non-negative
        low = max(low, 0.0)
    if (values % 1 == 0).all():  # whole numbers: whole bounds
        low, high = math.floor(low), math.ceil(high)
    else:  # six decimals, rounded outwards so the reference itself always passes
        low, high = math.floor(low * 1e6) / 1e6, math.ceil(high * 1e6) / 1e6
    return low, high, lo, hi


def profile_suite(reference: pd.DataFrame, params: Params, source: str = "<frame>") -> dict:
    """A first suite built from reference data, as the JSON dict GX writes, for review.

    Columns must match the dataset's columns; numeric features are numeric and within the
    observed range widened by ``profile.range_margin``; categorical features and the target take
    only the values seen (at most ``profile.max_categories``; the target only the configured
    labels); null rates may exceed the observed rate by ``profile.null_rate_margin`` (the
    target may never be null); and a batch needs ``profile.min_rows`` rows. ``source`` is
    recorded in the suite's meta.
    """
    ds, prof = params.dataset, params.validate.profile
    missing = [c for c in ds.columns if c not in reference.columns]
    if missing:
        raise DataError(f"{source}: reference data lacks column(s) {missing}")
    n = len(reference)
    if n == 0:
        raise DataError(f"{source}: reference data has no rows")

    exps = [
        _expectation(
            "expect_table_columns_to_match_set", column_set=list(ds.columns), exact_match=True
        ),
        _expectation(
            "expect_table_row_count_to_be_between",
            meta={"observed_rows": n},
            min_value=prof.min_rows,
            max_value=None,
        ),
    ]
    notes: list[str] = []
    numeric = list(ds.features.numeric)
    if ds.weight and ds.weight not in numeric:
        numeric.append(ds.weight)
    categorical = [*ds.features.categorical, ds.target]

    for col in ds.columns:
        s = reference[col]
        if col in numeric:
            exps.append(
                _expectation(
                    "expect_column_values_to_be_in_type_list",
                    column=col,
                    type_list=list(NUMERIC_TYPES),
                )
            )
            bounds = _numeric_range(s, prof.range_margin)
            if bounds is None:
                notes.append(f"{col}: no non-null values in the reference, no range check")
            else:
                low, high, lo, hi = bounds
                exps.append(
                    _expectation(
                        "expect_column_values_to_be_between",
                        meta={"observed_min": _num(lo), "observed_max": _num(hi)},
                        column=col,
                        min_value=_num(low),
                        max_value=_num(high),
                    )
                )
        elif col in categorical:
            exps.append(
                _expectation(
                    "expect_column_values_to_be_in_type_list",
                    column=col,
                    type_list=list(CATEGORICAL_TYPES),
                )
            )
            seen = sorted({str(v) for v in s.dropna()})
            if col == ds.target and ds.negative_label is not None:
                allowed = sorted({ds.positive_label, ds.negative_label})
                exps.append(
                    _expectation(
                        "expect_column_values_to_be_in_set",
                        meta={"observed_values": seen, "source": "dataset labels"},
                        column=col,
                        value_set=allowed,
                    )
                )
            elif len(seen) <= prof.max_categories:
                if col == ds.target and ds.positive_label not in seen:
                    seen = sorted([*seen, ds.positive_label])
                exps.append(
                    _expectation(
                        "expect_column_values_to_be_in_set",
                        meta={"observed_categories": len(seen)},
                        column=col,
                        value_set=seen,
                    )
                )
            else:
                notes.append(
                    f"{col}: {len(seen)} distinct values > profile.max_categories "
                    f"({prof.max_categories}), no allowed-values check"
                )
        null_rate = float(s.isna().mean())
        mostly = min(1.0, max(0.0, 1.0 - (null_rate + prof.null_rate_margin)))
        if col == ds.target:  # a missing label would silently count as the negative class
            mostly = 1.0
            if null_rate > 0:
                notes.append(f"{col}: {null_rate:.2%} null in the reference; the suite allows none")
        exps.append(
            _expectation(
                "expect_column_values_to_not_be_null",
                meta={"observed_null_rate": round(null_rate, 6)},
                column=col,
                mostly=math.floor(round(mostly * 10_000, 6)) / 10_000,  # never stricter
            )
        )

    return {
        "name": params.validate.suite,
        "id": None,
        "expectations": exps,
        "meta": {
            "generated_by": "python -m pipelines.stages.validate profile",
            "generated_from": {"source": source, "rows": n, "dataset": ds.name},
            "profile": prof.model_dump(),
            "review": "Generated from reference data: review, edit and commit. Note edits here.",
            "profile_notes": notes,
            "great_expectations_version": _gx_version(),
        },
        "notes": None,
    }


def _gx_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("great-expectations")
    except PackageNotFoundError:  # pragma: no cover - GX is a dependency
        return "unknown"


# --------------------------------------------------------------------------- validating
def _gx() -> Any:
    """Import GX quietly (its INFO logging floods Airflow task logs)."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    # Some GX modules set their own logger to INFO on import; quiet those too.
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("great_expectations.") and isinstance(logger, logging.Logger):
            if logger.level and logger.level < logging.WARNING:
                logger.setLevel(logging.WARNING)
    return gx


def _ephemeral_context(gx: Any) -> Any:
    """An in-memory context: no files, no docs site, no progress bars."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _build_suite(gx: Any, suite: dict) -> Any:
    """The GX suite object; an invalid expectation is an error here (GX would drop it)."""
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    if not isinstance(suite, dict) or not suite.get("name"):
        raise SuiteError("suite: expected a JSON object with a 'name'")
    built, errors = [], []
    for i, exp in enumerate(suite.get("expectations") or []):
        try:
            conf = {k: v for k, v in exp.items() if k != "id"}
            built.append(ExpectationConfiguration(**conf).to_domain_obj())
        except Exception as err:  # noqa: BLE001 - GX raises several kinds; all mean "invalid"
            first = " ".join(str(err).split())[:300]
            type_ = exp.get("type", "?") if isinstance(exp, dict) else "?"
            errors.append(f"expectation #{i} ({type_}): {first}")
    if errors:
        raise SuiteError(f"suite {suite['name']!r}: invalid expectation(s): " + "; ".join(errors))
    return gx.ExpectationSuite(name=suite["name"], expectations=built, meta=suite.get("meta"))


def validate_frame(df: pd.DataFrame, suite: dict, params: Params) -> ValidationResult:
    """Run ``suite`` on ``df`` with an ephemeral GX context (nothing is written to disk)."""
    gx = _gx()
    gx_suite = _build_suite(gx, suite)
    ctx = _ephemeral_context(gx)
    gx_suite = ctx.suites.add(gx_suite)
    batch = (
        ctx.data_sources.add_pandas("batch")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    vd = gx.ValidationDefinition(name="validate", data=batch, suite=gx_suite)
    run = vd.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": _PARTIAL_COUNT},
    ).to_json_dict()

    order = {e.id: i for i, e in enumerate(gx_suite.expectations)}
    results = sorted(
        run["results"],
        key=lambda r: (
            "column" in r["expectation_config"]["kwargs"],  # table-level checks first
            order.get(r["expectation_config"].get("id"), len(order)),
        ),
    )
    checks, failed = [], []
    for r in results:
        check, failure = _interpret(r, df, params)
        checks.append(check)
        if failure is not None:
            failed.append(failure)
    return ValidationResult(
        success=bool(run["success"]) and not failed,
        n_rows=len(df),
        evaluated=len(results),
        failed=tuple(failed),
        checks=tuple(checks),
        suite=suite["name"],
    )


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _pct(p: float) -> str:
    return f"{p:.1f}%" if p >= 0.1 or p == 0 else f"{p:.2g}%"


def _describe(type_: str, kw: dict[str, Any]) -> str:
    """What an expectation asks for, in a few words."""
    if type_ == "expect_table_columns_to_match_set":
        cols = kw.get("column_set") or []
        how = "exactly" if kw.get("exact_match", True) else "at least"
        return f"{how} these {len(cols)} columns: {', '.join(map(str, cols))}"
    if type_ == "expect_table_row_count_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if hi is None:
            return f"at least {_fmt(lo)} rows"
        return f"at most {_fmt(hi)} rows" if lo is None else f"{_fmt(lo)} to {_fmt(hi)} rows"
    if type_ == "expect_column_values_to_be_between":
        return f"values in [{_fmt(kw.get('min_value'))}, {_fmt(kw.get('max_value'))}]"
    if type_ == "expect_column_values_to_be_in_set":
        vs = list(kw.get("value_set") or [])
        shown = ", ".join(map(str, vs[:8])) + (", ..." if len(vs) > 8 else "")
        return f"values in {len(vs)} allowed: {shown}"
    if type_ == "expect_column_values_to_not_be_null":
        return f"at most {_pct(100 * (1 - kw.get('mostly', 1.0)))} null"
    if type_ == "expect_column_values_to_be_in_type_list":
        return f"type in {', '.join(kw.get('type_list') or [])}"
    rest = {k: v for k, v in kw.items() if k not in ("column", "batch_id")}
    return f"{type_} {rest}" if rest else type_


def _unexpected_values(res: dict[str, Any]) -> list[Any]:
    """The distinct unexpected values GX kept (at most _PARTIAL_COUNT rows' worth)."""
    counts = res.get("partial_unexpected_counts") or []
    if counts and "value" in counts[0]:
        values = [c["value"] for c in counts]
    else:
        values = list(res.get("partial_unexpected_list") or [])
    distinct = {(type(v).__name__, _fmt(v)): v for v in values if v is not None}
    return [distinct[k] for k in sorted(distinct)]


def _show(values: list[Any]) -> str:
    """Values as a reader expects them: text quoted, numbers plain."""
    return "[" + ", ".join(repr(v) if isinstance(v, str) else _fmt(v) for v in values) + "]"


def _interpret(
    r: dict[str, Any], df: pd.DataFrame, params: Params
) -> tuple[ExpectationCheck, FailedExpectation | None]:
    """Turn one GX result into a check row and, if it failed, a readable failure."""
    conf = r["expectation_config"]
    type_, kw = conf["type"], conf["kwargs"]
    col = kw.get("column")
    res = r.get("result") or {}
    expected = _describe(type_, kw)
    where = "table" if col is None else f"column {col!r}"
    if col is not None and col == params.dataset.target:
        where += " (target)"

    # A column GX could not compute on: missing, or a type the check cannot handle.
    info = r.get("exception_info") or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    raised = [i.get("exception_message") for i in infos if i.get("raised_exception")]
    if raised:
        if col is not None and col not in df.columns:
            problem = "column is missing from the data"
        else:
            problem = f"could not be checked: {raised[0]}"
        check = ExpectationCheck(type_, col, False, expected, problem)
        return check, FailedExpectation(type_, col, f"{where}: {problem}")

    success = bool(r["success"])
    n_bad: int | None = res.get("unexpected_count")
    n_all = res.get("element_count")
    values = _unexpected_values(res) if n_bad else []
    examples = tuple(_fmt(v) for v in values)
    eg = ""  # the offending values: all of them when GX kept every unexpected row
    if values:
        eg = _show(values) if (n_bad or 0) <= _PARTIAL_COUNT else f"e.g. {_show(values)}"

    if type_ == "expect_table_columns_to_match_set":
        mism = (res.get("details") or {}).get("mismatched") or {}
        parts = []
        if mism.get("missing"):
            parts.append(f"missing column(s) {sorted(map(str, mism['missing']))}")
        if mism.get("unexpected"):
            parts.append(f"unexpected column(s) {sorted(map(str, mism['unexpected']))}")
        observed = "; ".join(parts) or "columns match"
        msg = f"table: {observed}"
        examples = ()
    elif type_ == "expect_table_row_count_to_be_between":
        n_obs = res.get("observed_value")
        observed = f"{n_obs:,} rows" if isinstance(n_obs, int) else f"{n_obs} rows"
        msg = f"table: {observed}, expected {expected}"
    elif type_ == "expect_column_values_to_not_be_null":
        pct = float(res.get("unexpected_percent") or 0.0)
        observed = f"{_pct(pct)} null ({n_bad or 0:,} of {n_all or 0:,})"
        allowed = 100 * (1 - kw.get("mostly", 1.0))
        msg = f"{where}: {_pct(pct)} null, allowed {_pct(allowed)}"
        examples = ()
    elif type_ == "expect_column_values_to_be_between":
        observed = f"{n_bad or 0:,} of {n_all or 0:,} outside"
        lo, hi = _fmt(kw.get("min_value")), _fmt(kw.get("max_value"))
        msg = f"{where}: {n_bad or 0:,} values outside [{lo}, {hi}]" + (f": {eg}" if eg else "")
    elif type_ == "expect_column_values_to_be_in_set":
        observed = f"{n_bad or 0:,} of {n_all or 0:,} not allowed" + (f": {eg}" if eg else "")
        if col == params.dataset.target:
            labels = sorted(map(str, kw.get("value_set") or []))
            msg = f"{where}: {n_bad or 0:,} labels outside the allowed labels {labels}: {eg}"
        else:
            msg = f"{where}: {n_bad or 0:,} rows with unexpected values {eg}"
    elif type_ == "expect_column_values_to_be_in_type_list":
        numeric = {*params.dataset.features.numeric, params.dataset.weight}
        kind = "numeric" if col in numeric else "text"
        if n_bad is not None:  # object column: checked value by value
            observed = f"{n_bad:,} of {n_all or 0:,} of the wrong type" + (f": {eg}" if eg else "")
            msg = f"{where}: {n_bad:,} values are not {kind}" + (f": {eg}" if eg else "")
        else:
            observed = f"dtype {res.get('observed_value')}"
            msg = f"{where}: dtype {res.get('observed_value')}, expected {kind} ({expected})"
    else:  # any other expectation a reviewer adds: still readable
        if n_bad is not None:
            observed = f"{n_bad:,} of {n_all or 0:,} unexpected" + (f": {eg}" if eg else "")
        else:
            observed = f"observed {res.get('observed_value')!r}"
        msg = f"{where}: expected {expected}; {observed}"

    check = ExpectationCheck(type_, col, success, expected, observed)
    if success:
        return check, None
    return check, FailedExpectation(type_, col, msg, n_bad, examples)


def schema_failure(message: str, source: str | None, suite: str = "") -> ValidationResult:
    """A failed result for a batch that could not be read or has the wrong schema."""
    return ValidationResult(
        success=False,
        n_rows=None,
        evaluated=0,
        failed=(FailedExpectation(SCHEMA_ERROR, None, message),),
        suite=suite,
        source=source,
    )


def validate_file(path: Path, suite: dict, params: Params) -> ValidationResult:
    """Read ``path`` and validate it; a file that cannot be read is a failed result, not a crash."""
    try:
        df = read_table(Path(path), params.dataset)
    except DataError as err:
        return schema_failure(str(err), str(path), suite.get("name", ""))
    return replace(validate_frame(df, suite, params), source=str(path))


# --------------------------------------------------------------------------- suite files
def load_suite(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(
            f"{path}: expectation suite not found (generate one with "
            "`python -m pipelines.stages.validate profile`, review it and commit it)"
        )
    try:
        suite = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SuiteError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise SuiteError(f"{path}: not an expectation suite (no 'expectations' list)")
    if not suite.get("name"):
        raise SuiteError(f"{path}: expectation suite has no 'name'")
    return suite


def write_suite(suite: dict, path: Path) -> Path:
    return write_text(Path(path), json.dumps(suite, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- reports
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
.verdict{padding:.8rem 1rem;border-radius:6px;font-size:1.3rem;font-weight:600}
.pass{background:#e6f4ea;color:#14532d}.fail{background:#fdecea;color:#7f1d1d}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.92rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.ok{color:#14532d}td.bad{color:#b91c1c;font-weight:600}
code{font-size:.85rem}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dt{font-weight:600}
"""


def render_html(result: ValidationResult, title: str) -> str:
    """A small self-contained HTML report: verdict, failures, then every expectation."""
    e = html.escape
    verdict = "PASSED" if result.success else "FAILED"
    rows = "" if result.n_rows is None else f"{result.n_rows:,}"
    facts = [
        ("Suite", result.suite),
        ("Data", result.source or ""),
        ("Rows", rows),
        ("Expectations evaluated", str(result.evaluated)),
        ("Failed", str(len(result.failed))),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<div class="verdict {"pass" if result.success else "fail"}">{verdict}</div>',
        "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>",
    ]
    if result.failed:
        out.append("<h2>Failures</h2><ul>")
        out += [f"<li>{e(msg)}</li>" for msg in _failure_lines(result)]
        out.append("</ul>")
    if result.checks:
        out.append("<h2>All expectations</h2><table><thead><tr><th>Result</th><th>Column</th>")
        out.append("<th>Expectation</th><th>Expected</th><th>Observed</th></tr></thead><tbody>")
        for c in sorted(result.checks, key=lambda c: c.success):  # failures first, order kept
            status = '<td class="ok">pass</td>' if c.success else '<td class="bad">FAIL</td>'
            out.append(
                f"<tr>{status}<td>{e(c.column or '(table)')}</td>"
                f"<td><code>{e(c.expectation)}</code></td>"
                f"<td>{e(c.expected)}</td><td>{e(c.observed)}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def format_summary(result: ValidationResult) -> str:
    """A few lines for the terminal / task log."""
    verdict = "PASSED" if result.success else "FAILED"
    rows = "?" if result.n_rows is None else f"{result.n_rows:,}"
    lines = [
        f"validate: {verdict} - suite {result.suite!r}, {rows} rows, "
        f"{result.evaluated} expectations, {len(result.failed)} failed"
        + (f" ({result.source})" if result.source else "")
    ]
    lines += [f"  - {msg}" for msg in _failure_lines(result)]
    return "\n".join(lines)


def _failure_lines(result: ValidationResult) -> list[str]:
    """Failure messages in order, identical ones (a missing column fails each of its
    expectations) said once with a count."""
    counts: dict[str, int] = {}
    for f in result.failed:
        counts[f.message] = counts.get(f.message, 0) + 1
    return [m if n == 1 else f"{m} ({n} expectations)" for m, n in counts.items()]


# --------------------------------------------------------------------------- edge
def _run(args: argparse.Namespace) -> int:

    params = load_params(args.params)
    suite = load_suite(params.paths.suite)
    data = Path(args.data) if args.data else params.paths.prepared_current
    if not data.exists():
        raise DataError(f"{data}: data file not found")
    out = Path(args.out) if args.out else params.paths.stage("validate")
    result = validate_file(data, suite, params)
    write_text(out / "validation.json", json.dumps(result.to_dict(), indent=2) + "\n")
    write_text(out / "validation.html", render_html(result, f"Validation of {data.name}"))
    print(format_summary(result))
    print(f"validate: report {out / 'validation.html'}")
    return 0 if result.success else 1


def _profile(args: argparse.Namespace) -> int:

    params = load_params(args.params)
    data = Path(args.data) if args.data else params.paths.prepared_reference
    dest = params.paths.suite
    if dest.exists() and not args.force:
        print(
            f"validate profile: error: {dest} already exists (it may hold reviewed edits); "
            "pass --force to overwrite it",
            file=sys.stderr,
        )
        return 2
    df = read_table(data, params.dataset)
    shown = data.resolve()
    if shown.is_relative_to(params.root):  # the committed suite should not name this machine
        shown = shown.relative_to(params.root)
    suite = profile_suite(df, params, source=f"{shown} (md5 {md5_of(data)})")
    write_suite(suite, dest)
    print(
        f"validate profile: {len(suite['expectations'])} expectations from {len(df):,} rows of "
        f"{data} -> {dest}\nvalidate profile: review the suite, then commit it"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="validate", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="validate a batch against the committed suite")
    run.add_argument("--params", default=None, help="params file (default params.yaml)")
    run.add_argument("--data", default=None, help="batch file (default: prepared current data)")
    run.add_argument("--out", default=None, help="report folder (default <reports>/validate)")
    prof = sub.add_parser("profile", help="generate the suite from reference data, for review")
    prof.add_argument("--params", default=None, help="params file (default params.yaml)")
    prof.add_argument("--data", default=None, help="reference file (default: prepared reference)")
    prof.add_argument("--force", action="store_true", help="overwrite an existing suite")
    args = ap.parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _profile(args)
    except (ConfigError, DataError, SuiteError) as err:
        msg = "; ".join(str(err).splitlines())
        print(f"validate {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
