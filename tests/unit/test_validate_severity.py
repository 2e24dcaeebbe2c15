"""Unit tests of expectation severities on small frames built here: schema checks and impossible
values reject a batch; new but plausible values (a category in an open column, a number beyond
the profiled range) leave it accepted with a warning, in the result, its JSON, the printed lines
and the Data Docs page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.config import ConfigError, Params, parse_params
from pipelines.night.summary import accepted_text, night_line
from pipelines.records import BatchValidation, NightRecord
from pipelines.stages.validate import (
    SuiteError,
    ValidationResult,
    format_summary,
    load_suite,
    profile_suite,
    validate_frame,
    write_report,
    write_suite,
)
from pipelines.stages.validate.suite import is_closed
from tests.support.datadocs import failed_rows

N = 400
RAW = {
    "dataset": {
        "name": "toy",
        "reference": {"name": "reference.csv"},
        "current": {"name": "current.csv"},
        "columns": ["age", "hours", "city", "size", "label"],
        "target": "label",
        "positive_label": "yes",
        "negative_label": "no",
        "features": {"numeric": ["age", "hours"], "categorical": ["city", "size"]},
    },
    "validate": {
        "suite": "toy",
        "profile": {
            "range_margin": 0.1,
            "plausible_margin": 1.0,
            "closed_min_count": 5,
            "max_duplicate_share": 0.2,
            "min_rows": 10,
        },
    },
    "mlflow": {"registered_model": "toy-model"},
}


def _params(root: Path, **profile: object) -> Params:
    raw = json.loads(json.dumps(RAW))
    raw["validate"]["profile"].update(profile)
    return parse_params(raw, root=root)


@pytest.fixture()
def params(tmp_path: Path) -> Params:
    return _params(tmp_path)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """age 20..60 (whole); hours 10..60 (no two rows alike); city: a long tail (values seen
    once: open); size S/M/L (closed)."""
    rng = np.random.default_rng(0)
    age = rng.integers(20, 61, N).astype("float64")
    age[:2] = [20.0, 60.0]
    city = rng.choice(["north", "south", "east"], N).astype(object)
    city[:3] = ["harbour", "hill", "lake"]  # each seen once
    return pd.DataFrame(
        {
            "age": age,
            "hours": rng.uniform(10, 60, N),
            "city": city,
            "size": rng.choice(["S", "M", "L"], N).astype(object),
            "label": rng.choice(["yes", "no"], N).astype(object),
        }
    )


@pytest.fixture()
def suite(reference: pd.DataFrame, params: Params) -> dict:
    return profile_suite(reference, params)


def _batch(reference: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    return reference.sample(200, random_state=seed).reset_index(drop=True)


def _severities(suite: dict, column: str, type_: str) -> list[str]:
    return [
        e["meta"]["severity"]
        for e in suite["expectations"]
        if e["type"] == type_ and e["kwargs"].get("column") == column
    ]


# --------------------------------------------------------------------------- profile
def test_profile_gives_each_expectation_a_severity(suite: dict) -> None:
    assert {e["meta"]["severity"] for e in suite["expectations"]} == {"reject", "warn"}
    assert _severities(suite, "age", "expect_column_values_to_be_between") == ["reject", "warn"]
    assert _severities(suite, "city", "expect_column_values_to_be_in_set") == ["warn"]
    assert _severities(suite, "size", "expect_column_values_to_be_in_set") == ["reject"]
    assert _severities(suite, "label", "expect_column_values_to_be_in_set") == ["reject"]
    schema = (
        "expect_table_columns_to_match_set",
        "expect_table_row_count_to_be_between",
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
    )
    for e in suite["expectations"]:
        if e["type"] in schema:
            assert e["meta"]["severity"] == "reject", e
    [dup] = [
        e for e in suite["expectations"] if e["type"] == "expect_compound_columns_to_be_unique"
    ]
    assert dup["kwargs"]["mostly"] == pytest.approx(0.8)
    assert dup["kwargs"]["column_list"] == ["age", "hours", "city", "size", "label"]


@pytest.mark.parametrize(
    ("values", "closed"),
    [
        (["a"] * 5 + ["b"] * 7, True),
        (["a"] * 50 + ["b"] * 4, False),  # a value seen fewer than 5 times: a long tail
        ([None] * 3 + ["a"] * 5, True),  # nulls are not a value
        ([None, None], False),
    ],
)
def test_a_category_set_is_closed_when_every_value_is_common(values: list, closed: bool) -> None:
    assert is_closed(pd.Series(values, dtype=object), 5) is closed


def test_plausible_margin_narrower_than_range_margin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plausible_margin"):
        _params(tmp_path, range_margin=0.5, plausible_margin=0.2)


# --------------------------------------------------------------------------- verdicts
def test_a_new_value_in_an_open_column_is_accepted_with_a_warning(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    df = _batch(reference)
    df.loc[:4, "city"] = "bay"
    result = validate_frame(df, suite, params)
    assert result.success and result.failed == ()
    [warning] = result.warned
    assert warning.column == "city" and warning.severity == "warn"
    assert warning.message == "column 'city': 5 rows with unexpected values ['bay']"


def test_a_new_value_in_a_closed_column_rejects(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    df = _batch(reference)
    df.loc[:1, "size"] = "XL"
    result = validate_frame(df, suite, params)
    assert not result.success
    assert [(f.column, f.severity) for f in result.failed] == [("size", "reject")]


def test_a_number_beyond_the_profiled_range_but_plausible_warns(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    df = _batch(reference)
    df.loc[:2, "age"] = 70.0  # profiled [16, 64], plausible [0, 100]
    result = validate_frame(df, suite, params)
    assert result.success and result.failed == ()
    assert [w.message for w in result.warned] == ["column 'age': 3 values outside [16, 64]: [70]"]


def test_a_number_beyond_the_plausible_range_rejects(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    df = _batch(reference)
    df.loc[:2, "age"] = 150.0
    result = validate_frame(df, suite, params)
    assert not result.success
    assert [f.message for f in result.failed] == ["column 'age': 3 values outside [0, 100]: [150]"]
    assert [w.column for w in result.warned] == ["age"]  # beyond the profiled range too


@pytest.mark.parametrize("column", ["size", "label"])
def test_nulls_in_a_column_that_allows_none_reject(
    column: str, reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    df = _batch(reference)
    df.loc[:19, column] = None  # 10%; the reference has none (allowed: 2% / 0% for the label)
    result = validate_frame(df, suite, params)
    assert not result.success
    assert any(
        f.expectation == "expect_column_values_to_not_be_null" and f.column == column
        for f in result.failed
    )


@pytest.mark.parametrize(("copied", "rejected"), [(200, True), (60, True), (20, False)])
def test_duplicate_rows_over_the_allowed_share_reject(
    copied: int, rejected: bool, reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    """``copied`` rows of 200 are one row repeated; at most 20% may have a copy."""
    df = _batch(reference)
    df.iloc[:copied] = df.iloc[[0] * copied].to_numpy()
    df = df.astype({"age": "float64", "hours": "float64"})
    result = validate_frame(df, suite, params)
    assert result.success is not rejected, format_summary(result)
    dup = [f for f in result.failed if f.expectation == "expect_compound_columns_to_be_unique"]
    assert bool(dup) is rejected
    if rejected:
        assert dup[0].message.startswith(f"table: {100 * copied / 200:.1f}% of rows with a copy")


def test_an_expectation_without_a_severity_rejects(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    """Suites written before severities keep their behaviour: every failure rejects."""
    for e in suite["expectations"]:
        del e["meta"]["severity"]
    df = _batch(reference)
    df.loc[:4, "city"] = "bay"
    result = validate_frame(df, suite, params)
    assert not result.success and result.warned == ()
    assert [f.column for f in result.failed] == ["city"]


def test_load_suite_refuses_an_unknown_severity(suite: dict, tmp_path: Path) -> None:
    suite["expectations"][3]["meta"]["severity"] = "critical"
    path = write_suite(suite, tmp_path / "toy.json")
    with pytest.raises(SuiteError, match=r"expectation #3 .*meta.severity 'critical'"):
        load_suite(path)


# --------------------------------------------------------------------------- what people see
@pytest.fixture()
def warned(reference: pd.DataFrame, suite: dict, params: Params) -> ValidationResult:
    df = _batch(reference)
    df.loc[:4, "city"] = "bay"
    df.loc[:2, "age"] = 70.0
    return validate_frame(df, suite, params)


def test_warnings_survive_the_json_round_trip_and_are_printed(warned: ValidationResult) -> None:
    again = ValidationResult.from_dict(json.loads(json.dumps(warned.to_dict())))
    assert again == warned and len(again.warned) == 2
    text = format_summary(warned)
    assert text.startswith("validate: PASSED") and "0 failed, 2 warned" in text
    assert "  ~ warning: column 'city': 5 rows with unexpected values ['bay']" in text


def test_the_night_says_the_batch_was_accepted_with_warnings(warned: ValidationResult) -> None:
    rec = NightRecord(date="2026-01-02", started_at="t", reports="r", outcome="not_promoted")
    rec.validation = BatchValidation(
        success=True,
        evaluated=warned.evaluated,
        warned=[f"{w.expectation}: {w.message}" for w in warned.warned],
    )
    text = accepted_text(rec)
    assert text.startswith("accepted with 2 warnings: column 'age': 3 values outside [16, 64]")
    line = night_line(rec)
    assert "batch accepted (2 warnings)" in line and f"  {text}" in line.splitlines()


def test_the_report_shows_the_severity_of_each_check(
    warned: ValidationResult, tmp_path: Path
) -> None:
    page = write_report(warned, tmp_path / "docs", "Batch 2026-01-02")
    rows = failed_rows(page)  # GX marks a failed warn check failed: its severity says what
    assert len(rows) == 2
    assert any("warn: values in 6 allowed: east, harbour" in r and "bay" in r for r in rows)
    assert any("warn: values in [16, 64]" in r and "70" in r for r in rows)
    assert "reject: values in [0, 100]" in page.read_text()  # a passed check shows its own
