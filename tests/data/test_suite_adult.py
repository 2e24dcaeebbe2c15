"""The committed suite on the real Adult data: both published files pass it, corrupted copies
fail on exactly the columns that were corrupted, and the Data Docs page shows what failed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import Params
from pipelines.stages.validate import (
    SCHEMA_ERROR,
    ValidationResult,
    format_summary,
    load_suite,
    validate_file,
    validate_frame,
    write_report,
)
from tests.support.datadocs import failed_rows, page_text


@pytest.fixture(scope="module")
def suite(params: Params) -> dict:
    return load_suite(params.paths.suite)


def test_suite_matches_params(suite: dict, params: Params) -> None:
    assert suite["name"] == params.validate.suite
    [columns] = [
        e["kwargs"]["column_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_table_columns_to_match_set"
    ]
    assert columns == list(params.dataset.columns)
    checked = {e["kwargs"].get("column") for e in suite["expectations"]} - {None}
    assert checked == set(params.dataset.columns)  # every column has at least one check
    [labels] = [
        e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
        and e["kwargs"]["column"] == params.dataset.target
    ]
    assert set(labels) == {params.dataset.positive_label, params.dataset.negative_label}


@pytest.mark.parametrize("which", ["adult_reference", "adult_current"])
def test_real_data_passes(which: str, suite: dict, params: Params, request) -> None:
    df: pd.DataFrame = request.getfixturevalue(which)
    result = validate_frame(df, suite, params)
    assert result.success, format_summary(result)
    assert result.n_rows == len(df) and result.evaluated == len(suite["expectations"])


def _rows(df: pd.DataFrame, n: int) -> pd.Index:
    return df.index[::97][:n]  # spread through the file, deterministic


def _age_negative(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[_rows(df, 10), "age"] = -1.0
    return df


def _sex_typo(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[_rows(df, 5), "sex"] = "Mle"
    return df


def _occupation_nulls(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[df.index[: len(df) // 4], "occupation"] = None
    return df


def _labels_with_suffix(df: pd.DataFrame) -> pd.DataFrame:
    """The raw adult.test labels (">50K.") as if label_strip_suffix had been forgotten."""
    df["income"] = df["income"] + "."
    return df


def _education_dropped(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["education"])


def _hours_as_minutes(df: pd.DataFrame) -> pd.DataFrame:
    df["hours-per-week"] = df["hours-per-week"] * 60
    return df


CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set, str]] = {
    "negative age": (_age_negative, {"age"}, "column 'age': 10 values outside [17, 98]: [-1]"),
    "typo in sex": (_sex_typo, {"sex"}, "column 'sex': 5 rows with unexpected values ['Mle']"),
    "occupation mostly missing": (_occupation_nulls, {"occupation"}, "null, allowed 15.0%"),
    "label suffix kept": (_labels_with_suffix, {"income"}, "labels outside the allowed labels"),
    "column dropped": (_education_dropped, {None, "education"}, "missing column(s) ['education']"),
    "unit change": (_hours_as_minutes, {"hours-per-week"}, "values outside [1, 109]"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupted_copy_fails_on_the_right_columns(
    kind: str, suite: dict, params: Params, adult_current: pd.DataFrame
) -> None:
    corrupt, columns, message = CORRUPTIONS[kind]
    result = validate_frame(corrupt(adult_current.copy()), suite, params)
    assert not result.success
    assert {f.column for f in result.failed} == columns, format_summary(result)
    assert any(message in f.message for f in result.failed), format_summary(result)


def test_data_docs_of_a_rejected_real_batch_show_the_run_that_judged_it(
    suite: dict, params: Params, adult_current: pd.DataFrame, tmp_path: Path
) -> None:
    result = validate_frame(_sex_typo(adult_current.copy()), suite, params)
    page = write_report(result, tmp_path / "validation_docs", "Validation of batch 2026-01-01")
    [row] = failed_rows(page)
    assert "reject: values in 2 allowed: Female, Male" in row and "Mle" in row
    assert "5 unexpected values found" in row
    text = page_text(page.read_text())
    assert "Status: Failed" in text and "Validation of batch 2026-01-01" in text
    assert f"Evaluated Expectations {result.evaluated}" in text
    assert "Unsuccessful Expectations 1" in text
    assert result.gx_run is not None
    judged_at = result.gx_run.result.meta["run_id"].run_time  # the same run, not a second one
    assert f"Run Time {judged_at:%Y-%m-%dT%H:%M:%SZ}" in text


def test_text_in_a_numeric_column_of_a_real_file_is_a_schema_failure(
    suite: dict, params: Params, adult_current: pd.DataFrame, tmp_path: Path
) -> None:
    df = adult_current.head(2000).copy()
    df["capital-gain"] = df["capital-gain"].astype(object)
    df.loc[[3, 7], "capital-gain"] = "unknown"
    path = tmp_path / "batch.csv"
    df.to_csv(path, index=False)
    result = validate_file(path, suite, params)
    assert not result.success
    [failure] = result.failed
    assert failure.expectation == SCHEMA_ERROR
    assert "column 'capital-gain' should be numeric but has 2 non-numeric" in failure.message
    assert ValidationResult.from_dict(result.to_dict()) == result


def test_real_batch_round_trips_through_a_csv_file(
    suite: dict, params: Params, adult_current: pd.DataFrame, tmp_path: Path
) -> None:
    """A landed CSV batch (with '?' for missing values, as published) passes like the frame."""
    path = tmp_path / "batch.csv"
    adult_current.head(3000).fillna("?").to_csv(path, index=False)
    result = validate_file(path, suite, params)
    assert result.success, format_summary(result)
    assert result.n_rows == 3000
