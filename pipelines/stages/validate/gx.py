"""Running the suite through Great Expectations, and reading its answer in plain words.

:func:`validate_frame` runs a suite on a dataframe with an ephemeral (in-memory) GX context and
returns a :class:`ValidationResult`: the verdict, the numbers and one readable sentence per
failed expectation. The GX run itself stays on the result (``gx_run``) for the Data Docs page.
:func:`validate_file` reads a batch first; a batch that cannot even be read (empty, unreadable,
a required column missing, text in a numeric column) is a failed result too, so it can be
quarantined with its report.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import Params
from pipelines.data import DataError, read_table
from pipelines.stages.validate.result import (
    ExpectationCheck,
    FailedExpectation,
    GxRun,
    ValidationResult,
    schema_failure,
)
from pipelines.stages.validate.suite import DUPLICATES, REJECT, SuiteError, severity_of

_PARTIAL_COUNT = 20  # unexpected values GX keeps per expectation (examples in messages)
# Names of the in-memory data source and asset: GX names the batch (and its Data Docs page)
# "<source>-<asset>".
DATA_SOURCE, DATA_ASSET = "validate", "batch"


def import_gx() -> Any:
    """Import GX quietly (its INFO logging floods Airflow task logs)."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    # Some GX modules set their own logger to INFO on import; quiet those too.
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("great_expectations.") and isinstance(logger, logging.Logger):
            if logger.level and logger.level < logging.WARNING:
                logger.setLevel(logging.WARNING)
    return gx


def ephemeral_context(gx: Any) -> Any:
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


def build_gx_suite(gx: Any, suite: dict[str, Any]) -> Any:
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


def validate_frame(df: pd.DataFrame, suite: dict[str, Any], params: Params) -> ValidationResult:
    """Run ``suite`` on ``df`` with an ephemeral GX context (nothing is written to disk).

    This is the one GX run for the batch: the result keeps it (``gx_run``) for its report.
    """
    gx = import_gx()
    gx_suite = build_gx_suite(gx, suite)
    ctx = ephemeral_context(gx)
    gx_suite = ctx.suites.add(gx_suite)
    batch = (
        ctx.data_sources.add_pandas(DATA_SOURCE)
        .add_dataframe_asset(DATA_ASSET)
        .add_batch_definition_whole_dataframe("whole")
    )
    vd = gx.ValidationDefinition(name="validate", data=batch, suite=gx_suite)
    gx_result = vd.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": _PARTIAL_COUNT},
    )
    run = gx_result.to_json_dict()

    order = {e.id: i for i, e in enumerate(gx_suite.expectations)}
    results = sorted(
        run["results"],
        key=lambda r: (
            "column" in r["expectation_config"]["kwargs"],  # table-level checks first
            order.get(r["expectation_config"].get("id"), len(order)),
        ),
    )
    checks: list[ExpectationCheck] = []
    failed: list[FailedExpectation] = []
    warned: list[FailedExpectation] = []
    for r in results:
        check, failure = _interpret(r, df, params)
        checks.append(check)
        if failure is not None:
            (failed if failure.severity == REJECT else warned).append(failure)
    return ValidationResult(
        success=(bool(run["success"]) or bool(warned)) and not failed,
        n_rows=len(df),
        evaluated=len(results),
        failed=tuple(failed),
        checks=tuple(checks),
        warned=tuple(warned),
        suite=suite["name"],
        gx_run=GxRun(suite=suite, result=gx_result),
    )


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _pct(p: float) -> str:
    return f"{p:.1f}%" if p >= 0.1 or p == 0 else f"{p:.2g}%"


def describe(type_: str, kw: dict[str, Any]) -> str:
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
    if type_ == DUPLICATES:
        return f"at most {_pct(100 * (1 - kw.get('mostly', 1.0)))} of rows with an identical copy"
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
    severity = severity_of(conf)
    col = kw.get("column")
    res = r.get("result") or {}
    expected = describe(type_, kw)
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
        check = ExpectationCheck(type_, col, False, expected, problem)  # a schema problem
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
    elif type_ == DUPLICATES:
        pct = float(res.get("unexpected_percent") or 0.0)
        observed = f"{_pct(pct)} of rows with a copy ({n_bad or 0:,} of {n_all or 0:,})"
        msg = f"table: {observed}, expected {expected}"
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

    check = ExpectationCheck(type_, col, success, expected, observed, severity)
    if success:
        return check, None
    return check, FailedExpectation(type_, col, msg, n_bad, examples, severity)


def validate_file(path: Path, suite: dict[str, Any], params: Params) -> ValidationResult:
    """Read ``path`` and validate it; a file that cannot be read is a failed result, not a crash."""
    try:
        df = read_table(Path(path), params.dataset)
    except DataError as err:
        failure = schema_failure(str(err), str(path), suite.get("name", ""))
        return replace(failure, gx_run=GxRun(suite=suite))
    return replace(validate_frame(df, suite, params), source=str(path))
