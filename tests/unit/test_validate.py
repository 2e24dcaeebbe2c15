"""Unit tests of the validate stage on small frames built here: profiling, every kind of
violation, unreadable batches, the result's JSON form, the Data Docs report and the CLI edge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.config import Params, parse_params
from pipelines.data import write_parquet
from pipelines.stages.validate import (
    SCHEMA_ERROR,
    SuiteError,
    ValidationResult,
    load_suite,
    main,
    profile_suite,
    schema_failure,
    validate_file,
    validate_frame,
    write_report,
    write_suite,
)
from tests.support.datadocs import failed_rows, page_text

N = 200
RAW = {
    "dataset": {
        "name": "toy",
        "reference": {"name": "reference.csv"},
        "current": {"name": "current.csv"},
        "columns": ["age", "hours", "colour", "size", "label"],
        "target": "label",
        "positive_label": "yes",
        "negative_label": "no",
        "features": {"numeric": ["age", "hours"], "categorical": ["colour", "size"]},
    },
    "validate": {
        "suite": "toy",
        "profile": {"range_margin": 0.1, "null_rate_margin": 0.02, "min_rows": 10},
    },
    "mlflow": {"registered_model": "toy-model"},
}


def make_params(root: Path, **dataset_overrides) -> Params:
    raw = json.loads(json.dumps(RAW))
    raw["dataset"].update(dataset_overrides)
    return parse_params(raw, root=root)


@pytest.fixture()
def params(tmp_path: Path) -> Params:
    return make_params(tmp_path)


def toy_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    """age: whole numbers 18..80; hours: floats 10..60; colour 5% null; label yes/no."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 81, n).astype("float64")
    age[:2] = [18.0, 80.0]  # pin the observed range
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[rng.permutation(n)[: n // 20]] = None
    return pd.DataFrame(
        {
            "age": age,
            "hours": rng.uniform(10, 60, n),
            "colour": colour,
            "size": rng.choice(["S", "M", "L"], n).astype(object),
            "label": rng.choice(["yes", "no"], n).astype(object),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return toy_frame()


@pytest.fixture()
def suite(reference: pd.DataFrame, params: Params) -> dict:
    return profile_suite(reference, params, source="toy reference")


def _expectation(
    suite: dict, type_: str, column: str | None = None, range_: str | None = None
) -> dict:
    """The one expectation of a type on a column (numeric ranges: ``range_`` says which)."""
    [e] = [
        e
        for e in suite["expectations"]
        if e["type"] == type_
        and e["kwargs"].get("column") == column
        and e["meta"].get("range") == range_
    ]
    return e


# --------------------------------------------------------------------------- profiling
def test_profile_describes_the_reference(suite: dict, reference: pd.DataFrame) -> None:
    assert suite["name"] == "toy"
    assert suite["meta"]["generated_from"] == {
        "source": "toy reference",
        "rows": N,
        "dataset": "toy",
    }
    cols = _expectation(suite, "expect_table_columns_to_match_set")["kwargs"]
    assert cols == {"column_set": ["age", "hours", "colour", "size", "label"], "exact_match": True}
    rows = _expectation(suite, "expect_table_row_count_to_be_between")["kwargs"]
    assert rows["min_value"] == 10

    # whole-number column: observed [18, 80] widened by 10% of 62 and rounded outwards
    age = _expectation(suite, "expect_column_values_to_be_between", "age", "profiled")["kwargs"]
    assert (age["min_value"], age["max_value"]) == (11, 87)
    # the plausible range: widened by 100% of 62, and never negative (none in the reference)
    age = _expectation(suite, "expect_column_values_to_be_between", "age", "plausible")["kwargs"]
    assert (age["min_value"], age["max_value"]) == (0, 142)
    hours = _expectation(suite, "expect_column_values_to_be_between", "hours", "profiled")["kwargs"]
    lo, hi = reference["hours"].min(), reference["hours"].max()
    assert hours["min_value"] == pytest.approx(lo - 0.1 * (hi - lo), abs=1e-5)
    assert hours["max_value"] == pytest.approx(hi + 0.1 * (hi - lo), abs=1e-5)

    for col in ("age", "hours"):
        types = _expectation(suite, "expect_column_values_to_be_in_type_list", col)
        assert "float64" in types["kwargs"]["type_list"]
    assert (
        "str"
        in _expectation(suite, "expect_column_values_to_be_in_type_list", "colour")["kwargs"][
            "type_list"
        ]
    )

    colour_set = _expectation(suite, "expect_column_values_to_be_in_set", "colour")["kwargs"]
    assert colour_set["value_set"] == ["blue", "green", "red"]
    label_set = _expectation(suite, "expect_column_values_to_be_in_set", "label")["kwargs"]
    assert label_set["value_set"] == ["no", "yes"]

    # 5% null observed + 2% margin -> at least 93% non-null; none observed -> 98%
    assert _expectation(suite, "expect_column_values_to_not_be_null", "colour")["kwargs"][
        "mostly"
    ] == pytest.approx(0.93)
    assert _expectation(suite, "expect_column_values_to_not_be_null", "size")["kwargs"][
        "mostly"
    ] == pytest.approx(0.98)
    # a missing label would count as the negative class: never allowed
    assert (
        _expectation(suite, "expect_column_values_to_not_be_null", "label")["kwargs"]["mostly"]
        == 1.0
    )


def test_profile_then_validate_passes_on_the_same_data(
    suite: dict, reference: pd.DataFrame, params: Params
) -> None:
    result = validate_frame(reference, suite, params)
    assert result.success, result.failed
    assert result.failed == ()
    assert result.n_rows == N
    assert result.evaluated == len(suite["expectations"]) == len(result.checks)
    assert all(c.success for c in result.checks)


def test_profile_labels_when_no_negative_label_is_configured(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    params = make_params(tmp_path, negative_label=None)
    suite = profile_suite(reference, params)
    labels = _expectation(suite, "expect_column_values_to_be_in_set", "label")["kwargs"]
    assert labels["value_set"] == ["no", "yes"]  # the labels seen


def test_profile_skips_allowed_values_above_max_categories(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    raw = json.loads(json.dumps(RAW))
    raw["validate"]["profile"]["max_categories"] = 2
    params = parse_params(raw, root=tmp_path)
    suite = profile_suite(reference, params)
    in_set = {
        e["kwargs"]["column"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
    }
    assert in_set == {"label"}  # colour and size have 3 values each
    assert any("colour: 3 distinct values" in n for n in suite["meta"]["profile_notes"])


def test_reference_passes_its_own_suite_even_without_margins(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    """Bounds are rounded outwards, so the exact min/max of float columns stay allowed."""
    raw = json.loads(json.dumps(RAW))
    raw["validate"]["profile"].update(range_margin=0.0, null_rate_margin=0.0)
    params = parse_params(raw, root=tmp_path)
    suite = profile_suite(reference, params)
    result = validate_frame(reference, suite, params)
    assert result.success, result.failed


def test_null_rate_allowance_is_clamped(reference: pd.DataFrame, tmp_path: Path) -> None:
    raw = json.loads(json.dumps(RAW))
    raw["validate"]["profile"]["null_rate_margin"] = 1.0
    suite = profile_suite(reference, parse_params(raw, root=tmp_path))
    mostly = _expectation(suite, "expect_column_values_to_not_be_null", "colour")["kwargs"]
    assert mostly["mostly"] == 0.0


# --------------------------------------------------------------------------- violations
def _out_of_range(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[:2, "age"] = 500.0
    return df


def _unknown_category(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[:1, "colour"] = "purple"
    return df


def _too_many_nulls(df: pd.DataFrame) -> pd.DataFrame:
    df["colour"] = pd.Series(["red"] * (N // 2) + [None] * (N - N // 2), dtype=object)
    return df


def _text_in_numeric(df: pd.DataFrame) -> pd.DataFrame:
    df["hours"] = df["hours"].astype(object)
    df.loc[:1, "hours"] = "forty"
    return df


def _label_outside(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[:3, "label"] = "maybe"
    return df


def _label_missing(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[:0, "label"] = None
    return df


VIOLATIONS = {
    "value out of range": (_out_of_range, "age", "column 'age': 3 values outside [0, 142]: [500]"),
    "unknown category": (
        _unknown_category,
        "colour",
        "column 'colour': 2 rows with unexpected values ['purple']",
    ),
    "too many nulls": (_too_many_nulls, "colour", "column 'colour': 50.0% null, allowed 7.0%"),
    "missing column": (
        lambda df: df.drop(columns=["size"]),
        None,
        "table: missing column(s) ['size']",
    ),
    "extra column": (
        lambda df: df.assign(extra=1),
        None,
        "table: unexpected column(s) ['extra']",
    ),
    "text in numeric column": (
        _text_in_numeric,
        "hours",
        "column 'hours': 2 values are not numeric: ['forty']",
    ),
    "too few rows": (lambda df: df.head(5), None, "table: 5 rows, expected at least 10 rows"),
    "label outside allowed labels": (
        _label_outside,
        "label",
        "column 'label' (target): 4 labels outside the allowed labels ['no', 'yes']: ['maybe']",
    ),
    "missing label": (_label_missing, "label", "column 'label' (target): 0.5% null, allowed 0.0%"),
}


@pytest.mark.parametrize("kind", list(VIOLATIONS))
def test_each_violation_fails_and_names_the_problem(
    kind: str, reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    corrupt, column, message = VIOLATIONS[kind]
    result = validate_frame(corrupt(reference.copy()), suite, params)
    assert not result.success
    messages = [f.message for f in result.failed]
    assert message in messages
    assert column in {f.column for f in result.failed}


def test_missing_column_fails_its_own_checks_without_crashing(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    result = validate_frame(reference.drop(columns=["size"]), suite, params)
    assert {f.column for f in result.failed} == {None, "size"}
    assert "column 'size': column is missing from the data" in {f.message for f in result.failed}


def test_out_of_range_failure_keeps_the_numbers(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    result = validate_frame(_out_of_range(reference.copy()), suite, params)
    [failure] = result.failed
    assert failure.expectation == "expect_column_values_to_be_between"
    assert failure.unexpected_count == 3
    assert failure.examples == ("500",)


def test_validate_frame_does_not_modify_the_frame(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    df = reference.copy()
    validate_frame(df, suite, params)
    pd.testing.assert_frame_equal(df, reference)


def test_an_invalid_expectation_is_an_error_not_silently_dropped(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    broken = {**suite, "expectations": [*suite["expectations"], {"type": "expect_nonsense"}]}
    with pytest.raises(SuiteError, match="expect_nonsense"):
        validate_frame(reference, broken, params)
    typo = {"type": "expect_column_values_to_be_between", "kwargs": {"colum": "age"}}
    with pytest.raises(SuiteError, match="expectation #0"):
        validate_frame(reference, {**suite, "expectations": [typo]}, params)


# --------------------------------------------------------------------------- files
def _csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def test_a_good_csv_and_parquet_pass_and_keep_nulls(
    reference: pd.DataFrame, suite: dict, params: Params, tmp_path: Path
) -> None:
    for path in (
        _csv(reference, tmp_path / "batch.csv"),
        write_parquet(reference, tmp_path / "batch.parquet"),
    ):
        result = validate_file(path, suite, params)
        assert result.success, result.failed
        assert result.source == str(path)
        assert result.n_rows == N


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _header_only(path: Path) -> Path:
    path.write_text("age,hours,colour,size,label\n")
    return path


SCHEMA_CASES = {
    "empty file": ("batch.csv", _empty, "file is empty"),
    "no rows": ("batch.csv", _header_only, "file has no rows"),
    "corrupt parquet": (
        "batch.parquet",
        lambda p: p.write_bytes(b"this is not parquet") and p,
        "unreadable",
    ),
    "unsupported type": ("batch.xlsx", lambda p: p.write_text("x") and p, "unsupported file type"),
    "missing file": ("absent.csv", lambda p: p, "file not found"),
}


@pytest.mark.parametrize("case", list(SCHEMA_CASES))
def test_an_unreadable_file_is_a_failed_result_not_a_crash(
    case: str, suite: dict, params: Params, tmp_path: Path
) -> None:
    name, make, problem = SCHEMA_CASES[case]
    path = tmp_path / name
    make(path)
    result = validate_file(path, suite, params)
    assert not result.success
    assert result.evaluated == 0
    [failure] = result.failed
    assert failure.expectation == SCHEMA_ERROR
    assert str(path) in failure.message and problem in failure.message


def test_a_missing_required_column_in_a_file_is_named(
    reference: pd.DataFrame, suite: dict, params: Params, tmp_path: Path
) -> None:
    path = _csv(reference.drop(columns=["hours"]), tmp_path / "batch.csv")
    [failure] = validate_file(path, suite, params).failed
    assert failure.expectation == SCHEMA_ERROR
    assert "missing column(s) ['hours']" in failure.message


def test_text_in_a_numeric_column_of_a_file_is_named(
    reference: pd.DataFrame, suite: dict, params: Params, tmp_path: Path
) -> None:
    path = _csv(_text_in_numeric(reference.copy()), tmp_path / "batch.csv")
    [failure] = validate_file(path, suite, params).failed
    assert failure.expectation == SCHEMA_ERROR
    assert "column 'hours' should be numeric" in failure.message
    assert "forty" in failure.message


# --------------------------------------------------------------------------- result and reports
def test_result_json_round_trip(reference: pd.DataFrame, suite: dict, params: Params) -> None:
    df = _label_outside(_unknown_category(_out_of_range(reference.copy())))
    result = validate_frame(df, suite, params)
    assert len(result.failed) == 3
    again = ValidationResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    schema = ValidationResult.from_dict(
        json.loads(json.dumps(validate_file(Path("absent.csv"), suite, params).to_dict()))
    )
    assert schema.failed[0].expectation == SCHEMA_ERROR and schema.n_rows is None


def test_result_json_holds_the_verdict_not_the_gx_run(
    reference: pd.DataFrame, suite: dict, params: Params
) -> None:
    result = validate_frame(_unknown_category(reference.copy()), suite, params)
    assert result.gx_run is not None and result.gx_run.result is not None  # kept for the report
    d = result.to_dict()
    keys = ["success", "n_rows", "evaluated", "failed", "checks", "warned", "suite", "source"]
    assert list(d) == keys
    assert ValidationResult.from_dict(d).gx_run is None


def _docs_page(result: ValidationResult, out: Path, title: str = "Batch 2026-01-01") -> Path:
    page = write_report(result, out, title)
    assert page.is_file() and page.suffix == ".html"
    assert page.resolve().is_relative_to(out.resolve())
    return page


def test_data_docs_page_shows_the_failed_expectation_with_the_value_escaped(
    reference: pd.DataFrame, suite: dict, params: Params, tmp_path: Path
) -> None:
    df = reference.copy()
    df.loc[:0, "size"] = "<script>XL</script>"
    result = validate_frame(df, suite, params)
    page = _docs_page(result, tmp_path / "docs")
    markup = page.read_text()
    text = page_text(markup)
    assert "Status: Failed" in text and "Batch 2026-01-01" in text
    assert f"Evaluated Expectations {result.evaluated}" in text
    assert "Unsuccessful Expectations 1" in text
    [row] = failed_rows(page)  # the one failed expectation, with the value that failed it
    assert "reject: values in 3 allowed: L, M, S" in row and "<script>XL</script>" in row
    # a value from the data is shown, never run as markup
    assert "<script>XL" not in markup and "&lt;script&gt;XL&lt;/script&gt;" in markup
    assert "&amp;lt;" not in markup  # and escaped once only


def test_data_docs_site_is_complete_and_relocatable(
    reference: pd.DataFrame, suite: dict, params: Params, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    page = _docs_page(validate_frame(reference, suite, params), docs, "../ok/../..")
    assert "Status: Succeeded" in page_text(page.read_text())
    assert failed_rows(page) == []
    assert (docs / "index.html").is_file() and (docs / "static").is_dir()
    # links are relative: the suite page the validation page links to is in the final folder
    [href] = set(re.findall(r'href="([^"]*expectations/toy\.html)"', page.read_text()))
    assert (page.parent / href).resolve() == (docs / "expectations" / "toy.html").resolve()
    assert [p.name for p in tmp_path.iterdir()] == ["docs"]  # no build folder left behind


def test_data_docs_of_an_unreadable_batch_say_why(
    suite: dict, params: Params, tmp_path: Path
) -> None:
    result = validate_file(_empty(tmp_path / "batch.csv"), suite, params)
    page = _docs_page(result, tmp_path / "docs")
    text = page_text(page.read_text())
    assert "Status: Failed" in text and "Evaluated Expectations 0" in text
    assert "file is empty" in text and "batch.csv" in text
    # the same from a result with no suite or GX run at all (e.g. read back from JSON)
    again = ValidationResult.from_dict(schema_failure("x.csv: unreadable", "x.csv").to_dict())
    assert "x.csv: unreadable" in page_text(_docs_page(again, tmp_path / "d2").read_text())


def test_write_report_replaces_its_folder_and_nothing_else(
    reference: pd.DataFrame, suite: dict, params: Params, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    _docs_page(validate_frame(_out_of_range(reference.copy()), suite, params), docs)
    second = _docs_page(validate_frame(reference, suite, params), docs)
    assert list(docs.glob("validations/**/*.html")) == [second]  # the old run is gone
    assert failed_rows(second) == []

    other = tmp_path / "reports"
    (other / "validation.json").parent.mkdir()
    (other / "validation.json").write_text("{}")
    with pytest.raises(ValueError, match="not a Data Docs folder"):
        write_report(validate_frame(reference, suite, params), other, "t")
    assert [p.name for p in other.iterdir()] == ["validation.json"]


def test_write_report_needs_the_gx_run_of_a_validated_batch(
    reference: pd.DataFrame, suite: dict, params: Params, tmp_path: Path
) -> None:
    """A result read back from JSON cannot be redrawn: the report shows the judging run."""
    saved = ValidationResult.from_dict(validate_frame(reference, suite, params).to_dict())
    with pytest.raises(ValueError, match="no Great Expectations run"):
        write_report(saved, tmp_path / "docs", "t")
    assert not (tmp_path / "docs").exists()


# --------------------------------------------------------------------------- suite files
def test_write_then_load_suite(suite: dict, tmp_path: Path) -> None:
    path = tmp_path / "expectations" / "toy.json"
    write_suite(suite, path)
    assert load_suite(path) == suite
    assert [p.name for p in path.parent.iterdir()] == ["toy.json"]  # no temporary left


@pytest.mark.parametrize(
    "content, problem",
    [(None, "not found"), ("{not json", "not valid JSON"), ("[1, 2]", "not an expectation suite")],
)
def test_load_suite_names_the_file(content: str | None, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "toy.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SuiteError, match=problem) as err:
        load_suite(path)
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------- CLI
@pytest.fixture()
def workspace(tmp_path: Path, reference: pd.DataFrame) -> Path:
    """A params file, reference/current data as CSV, and the prepared Parquet files."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(RAW))
    _csv(reference, tmp_path / "reference.csv")
    _csv(toy_frame(seed=1), tmp_path / "current.csv")
    write_parquet(reference, tmp_path / "data" / "prepared" / "reference.parquet")
    write_parquet(toy_frame(seed=1), tmp_path / "data" / "prepared" / "current.parquet")
    return tmp_path


def _cli(ws: Path, *args: str) -> int:
    return main([args[0], "--params", str(ws / "params.yaml"), *args[1:]])


def test_cli_profile_writes_the_suite_and_refuses_to_overwrite(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite_path = workspace / "expectations" / "toy.json"
    assert _cli(workspace, "profile") == 0  # default: the prepared reference data
    suite = load_suite(suite_path)
    assert suite["meta"]["generated_from"]["source"].startswith(
        "data/prepared/reference.parquet (md5 "
    )
    suite_path.write_text(suite_path.read_text().replace('"min_value": 11', '"min_value": 17'))
    reviewed = suite_path.read_text()
    capsys.readouterr()

    assert _cli(workspace, "profile", "--data", str(workspace / "reference.csv")) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert suite_path.read_text() == reviewed  # the reviewed edit survives

    assert _cli(workspace, "profile", "--data", str(workspace / "reference.csv"), "--force") == 0
    assert '"min_value": 11' in suite_path.read_text()


def test_cli_run_passes_with_defaults_and_writes_reports(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(workspace, "profile") == 0
    capsys.readouterr()
    assert _cli(workspace, "run") == 0  # default data: prepared current Parquet
    out = workspace / "reports" / "validate"
    result = ValidationResult.from_dict(json.loads((out / "validation.json").read_text()))
    assert result.source is not None
    assert result.success and result.source.endswith("current.parquet")
    [page] = (out / "validation_docs").glob("validations/**/*.html")
    assert "Status: Succeeded" in page_text(page.read_text())
    printed = capsys.readouterr().out
    assert "validate: PASSED" in printed and f"validate: report {page}" in printed
    assert not (out / "validation.html").exists()


def test_cli_run_fails_with_exit_1_after_writing_the_reports(
    workspace: Path, reference: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(workspace, "profile") == 0
    bad = _csv(_unknown_category(reference.copy()), workspace / "bad.csv")
    out = workspace / "quarantine"
    capsys.readouterr()
    assert _cli(workspace, "run", "--data", str(bad), "--out", str(out)) == 1
    saved = json.loads((out / "validation.json").read_text())
    assert saved["success"] is False
    [failure] = saved["failed"]
    assert failure["message"] == "column 'colour': 2 rows with unexpected values ['purple']"
    [page] = (out / "validation_docs").glob("validations/**/*.html")
    [row] = failed_rows(page)
    assert "purple" in row and "Validation of bad.csv" in page_text(page.read_text())
    printed = capsys.readouterr().out
    assert "validate: FAILED" in printed and "['purple']" in printed


def test_cli_run_unreadable_batch_is_a_failure_with_report(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(workspace, "profile") == 0
    bad = _empty(workspace / "empty.csv")
    out = workspace / "quarantine"
    assert _cli(workspace, "run", "--data", str(bad), "--out", str(out)) == 1
    saved = json.loads((out / "validation.json").read_text())
    assert saved["failed"][0]["expectation"] == SCHEMA_ERROR
    assert "file is empty" in capsys.readouterr().out
    [page] = (out / "validation_docs").glob("validations/**/*.html")
    assert "file is empty" in page_text(page.read_text())


@pytest.mark.parametrize(
    "setup, args, problem",
    [
        ("no suite", ("run",), "expectation suite not found"),
        ("bad params", ("run",), "unknown key 'validate.sute'"),
        ("suite", ("run", "--data", "absent.csv"), "absent.csv: data file not found"),
        ("suite", ("profile", "--data", "absent.csv", "--force"), "absent.csv: file not found"),
        ("suite", ("profile", "--data", "empty.csv", "--force"), "file is empty"),
    ],
)
def test_cli_bad_input_exits_2_with_one_readable_line(
    setup: str,
    args: tuple[str, ...],
    problem: str,
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if setup == "suite":
        assert _cli(workspace, "profile") == 0
    if setup == "bad params":
        raw = json.loads(json.dumps(RAW))
        raw["validate"]["sute"] = raw["validate"].pop("suite")
        (workspace / "params.yaml").write_text(yaml.safe_dump(raw))
    _empty(workspace / "empty.csv")
    args = tuple(str(workspace / a) if a.endswith(".csv") else a for a in args)
    capsys.readouterr()
    assert _cli(workspace, *args) == 2
    err = capsys.readouterr().err
    assert problem in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_held_out_rows_leave_their_count_to_the_gate():
    from pipelines.stages.validate.stage import ROW_COUNT, without_row_count

    suite = {
        "name": "s",
        "expectations": [
            {"type": ROW_COUNT, "kwargs": {"min_value": 100}},
            {"type": "expect_column_to_exist", "kwargs": {"column": "x"}},
        ],
    }
    kept = without_row_count(suite)
    assert [e["type"] for e in kept["expectations"]] == ["expect_column_to_exist"]
    assert len(suite["expectations"]) == 2  # the suite itself is untouched
