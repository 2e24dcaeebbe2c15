"""The second dataset, UCI Census-Income (KDD), by configuration only: its params file parses and
keeps its workspace apart from Adult's, its reviewed suite passes on both published files and
catches corrupted copies, and no pipeline code names a dataset or its columns."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.config import Params, load_params
from pipelines.stages.validate import format_summary, load_suite, validate_file, validate_frame

ROOT = Path(__file__).resolve().parents[2]
CENSUS_PARAMS = ROOT / "params" / "census_kdd.yaml"
pytestmark = pytest.mark.usefixtures("census_mirror_from_its_params")
PARAMS_FILES = (ROOT / "params.yaml", CENSUS_PARAMS)


@pytest.fixture(scope="module")
def census_params() -> Params:
    return load_params(CENSUS_PARAMS)


@pytest.fixture(scope="module")
def census(census_params: Params, tmp_path_factory: pytest.TempPathFactory):
    """Cleaned census train (reference) and test (current) files, from the mirror."""
    from pipelines.stages.prepare import prepare

    mirror = census_params.mirror
    if mirror is None or not (mirror / census_params.dataset.reference.name).is_file():
        pytest.skip(f"census mirror not present: {mirror}")
    return prepare(census_params, tmp_path_factory.mktemp("census-raw"))


@pytest.fixture(scope="module")
def suite(census_params: Params) -> dict:
    return load_suite(census_params.paths.suite)


# --------------------------------------------------------------------------- configuration
def test_params_parse_with_the_columns_of_the_published_files(census_params: Params) -> None:
    ds = census_params.dataset
    published = (ROOT.parent / "shared/datasets/census_income_kdd/COLUMNS.txt").resolve()
    if published.is_file():
        assert list(ds.columns) == published.read_text().strip().split(",")
    assert len(ds.columns) == 42
    assert ds.target == "income_gt_50k" and ds.positive_label == "50000+"
    assert ds.negative_label == "- 50000" and ds.label_strip_suffix == "."
    assert ds.sensitive == ("sex", "race")
    assert ds.weight == "instance_weight" and ds.weight not in ds.features.all
    codes = {
        "detailed_industry_recode",
        "detailed_occupation_recode",
        "year",
        "own_business_or_self_employed",
        "veterans_benefits",
    }
    assert codes <= set(ds.features.categorical)
    # every column but the weight and the target is a feature, each of one kind only
    assert set(ds.features.all) == set(ds.columns) - {ds.weight, ds.target}
    assert len(ds.features.all) == len(set(ds.features.all)) == 40
    assert census_params.drift.engine == "fast"
    assert census_params.train.encoding == "ordinal"
    assert census_params.validate.suite == "census_kdd"


def _workspace_folders(p: Params) -> dict[str, Path]:
    """Every folder a night writes to, resolved."""
    return {
        "data": p.paths.data.resolve(),
        "reports": p.paths.reports.resolve(),
        "models": p.paths.models.resolve(),
        "landing": p.path(p.nightly.landing).resolve(),
        "quarantine": p.path(p.nightly.quarantine).resolve(),
    }


def test_census_workspace_does_not_collide_with_adult(census_params: Params, params) -> None:
    ours, theirs = _workspace_folders(census_params), _workspace_folders(params)
    stage_outputs = ("raw", "prepared", "window", "accepted")  # dvc.yaml outs under data/
    for name, folder in ours.items():
        assert folder.is_relative_to(ROOT), f"{name}: {folder} is outside the project"
        for other_name, other in theirs.items():
            assert folder != other, f"census {name} is Adult's {other_name}: {folder}"
            assert not other.is_relative_to(folder), f"Adult's {other_name} is inside census {name}"
        for out in stage_outputs:
            assert not folder.is_relative_to(theirs["data"] / out), f"{name} inside Adult's {out}"
    assert census_params.paths.suite.resolve() == ROOT / "expectations" / "census_kdd.json"
    assert census_params.mlflow.registered_model != params.mlflow.registered_model
    assert census_params.mlflow.experiment != params.mlflow.experiment


def test_every_params_file_has_the_same_keys() -> None:
    """A second dataset is a copy of the same schema, not a variant with its own options."""

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k not in ("hyperparameters", "metrics", "fairness"):
                out |= keys(v, prefix + k + ".")
        return out

    adult, census = (keys(yaml.safe_load(p.read_text())) for p in PARAMS_FILES)
    assert census - adult <= {"dataset.weight"}, census - adult


# --------------------------------------------------------------------------- no dataset in code
def _names_and_labels() -> set[str]:
    out: set[str] = set()
    for p in PARAMS_FILES:
        ds = yaml.safe_load(p.read_text())["dataset"]
        out |= set(ds["columns"]) | {ds["positive_label"], ds["negative_label"]}
    return out


def _code_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants and identifiers in code, docstrings left out (they may give examples)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.arg):
            found.append((node.lineno, node.arg))
    return found


def test_no_pipeline_code_names_a_dataset_or_its_columns() -> None:
    names = _names_and_labels()
    word = re.compile(
        r"(?<![\w-])("
        + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        + r")(?![\w-])"
    )
    dataset = re.compile(r"\b(adult|census|kdd)\b", re.IGNORECASE)
    hits = []
    for path in sorted((ROOT / "pipelines").rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        rel = path.relative_to(ROOT)
        text = path.read_text(errors="replace")
        hits += [f"{rel}:{i}: names a dataset" for i, line in enumerate(text.splitlines(), 1)
                 if dataset.search(line)]  # fmt: skip
        if path.suffix == ".py":
            for line, value in _code_strings(ast.parse(text)):
                if word.search(value):
                    hits.append(f"{rel}:{line}: {value!r} is a column or label of a dataset")
    assert not hits, "\n".join(hits)


# --------------------------------------------------------------------------- the suite, real data
def test_suite_matches_params(suite: dict, census_params: Params) -> None:
    ds = census_params.dataset
    assert suite["name"] == census_params.validate.suite
    [columns] = [
        e["kwargs"]["column_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_table_columns_to_match_set"
    ]
    assert columns == list(ds.columns)
    checked = {e["kwargs"].get("column") for e in suite["expectations"]} - {None}
    assert checked == set(ds.columns)
    [labels] = [
        e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == ds.target
    ]
    assert set(labels) == {ds.positive_label, ds.negative_label}
    assert suite["meta"]["review_edits"], "a reviewed suite lists its edits"


@pytest.mark.parametrize("which", ["reference", "current"])
def test_real_census_data_passes(which: str, census, suite: dict, census_params: Params) -> None:
    df: pd.DataFrame = getattr(census, which)
    assert len(df) == {"reference": 199_523, "current": 99_762}[which]
    result = validate_frame(df, suite, census_params)
    assert result.success, format_summary(result)
    assert result.evaluated == len(suite["expectations"])


def test_cleaned_census_frames_are_what_every_stage_expects(census, census_params) -> None:
    """Labels without the '.', numbers as float64 (the weight too), text as str or None, and
    each distinct text value one shared object (the memory the 1M-row nights rely on)."""
    ds = census_params.dataset
    df = census.current
    assert set(df[ds.target].unique()) == {ds.positive_label, ds.negative_label}
    for c in (*ds.features.numeric, ds.weight):
        assert df[c].dtype == "float64", c
    for c in ds.features.categorical:
        assert df[c].dtype == object, c
        values = df[c].to_numpy()
        assert all(v is None or type(v) is str for v in values[:5000]), c
        assert len({id(v) for v in values}) == df[c].nunique() + df[c].isna().any(), c
    assert df["migration_code_change_in_msa"].isna().groupby(df["year"]).mean().to_dict() == {
        "94": 0.0,
        "95": 1.0,
    }


def _rows(df: pd.DataFrame, n: int) -> pd.Index:
    return df.index[::97][:n]


def _age_over_top(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[_rows(df, 10), "age"] = 140.0
    return df


def _unknown_industry_code(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[_rows(df, 7), "detailed_industry_recode"] = "99"
    return df


def _labels_with_suffix(df: pd.DataFrame) -> pd.DataFrame:
    df["income_gt_50k"] = df["income_gt_50k"] + "."
    return df


def _weeks_over_a_year(df: pd.DataFrame) -> pd.DataFrame:
    df.loc[_rows(df, 3), "weeks_worked_in_year"] = 53.0
    return df


def _migration_missing_in_1994(df: pd.DataFrame) -> pd.DataFrame:
    rows = df.index[(df["year"] == "94").to_numpy()][:5000]
    df.loc[rows, "migration_code-change_in_reg"] = None
    return df


CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set, str]] = {
    "age beyond the top code": (_age_over_top, {"age"}, "10 values outside [0, 99]: [140]"),
    "unknown industry code": (
        _unknown_industry_code,
        {"detailed_industry_recode"},
        "7 rows with unexpected values ['99']",
    ),
    "label suffix kept": (
        _labels_with_suffix,
        {"income_gt_50k"},
        "labels outside the allowed labels",
    ),
    "53 weeks": (_weeks_over_a_year, {"weeks_worked_in_year"}, "values outside [0, 52]"),
    "migration missing for 1994": (
        _migration_missing_in_1994,
        {"migration_code-change_in_reg"},
        "null, allowed 2.0%",
    ),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupted_census_copy_fails_on_the_right_columns(
    kind: str, census, suite: dict, census_params: Params
) -> None:
    corrupt, columns, message = CORRUPTIONS[kind]
    # the first 20,000 published rows (both years; the whole file passes above): the suite's
    # answer to a corruption does not need all 99,762, and each check reads the frame again
    sample = census.current.head(20_000).copy()
    assert set(sample["year"]) == {"94", "95"}
    result = validate_frame(corrupt(sample), suite, census_params)
    assert not result.success
    assert {f.column for f in result.failed} == columns, format_summary(result)
    assert any(message in f.message for f in result.failed), format_summary(result)


def test_a_1995_only_batch_passes(census, suite: dict, census_params: Params) -> None:
    """Migration fields are null for every 1995 record: a batch of 1995 records is valid."""
    df = census.current[census.current["year"] == "95"].head(5000)
    result = validate_frame(df, suite, census_params)
    assert result.success, format_summary(result)


def test_landed_csv_batch_in_published_form_passes(
    census, suite: dict, census_params: Params, tmp_path: Path
) -> None:
    """A batch landed as CSV, labels with their '.', missing values as '?', passes."""
    df = census.current.head(3000).copy()
    df["income_gt_50k"] = df["income_gt_50k"] + "."
    path = tmp_path / "batch.csv"
    df.fillna("?").to_csv(path, index=False)
    result = validate_file(path, suite, census_params)
    assert result.success, format_summary(result)
    assert result.n_rows == 3000


# --------------------------------------------------------------------------- dtypes at scale
def test_clean_is_the_same_for_object_category_and_string_columns(census, census_params) -> None:
    """Readers hand clean() text as object (CSV of old), category (CSV, Parquet dictionaries)
    or pandas strings: the cleaned frame is the same for each."""
    ds = census_params.dataset
    raw = census.current.head(5000).copy()
    raw[ds.target] = " " + raw[ds.target] + "."  # as published: leading space, '.' suffix
    raw = raw.fillna("?").astype({c: str for c in ds.features.numeric})
    text = [c for c in raw.columns if raw[c].dtype == object]
    from pipelines.data import clean

    expected = clean(raw, ds)
    for dtype in ("category", "string"):
        got = clean(raw.astype({c: dtype for c in text}), ds)
        pd.testing.assert_frame_equal(got, expected)
    assert expected[ds.target].isin([ds.positive_label, ds.negative_label]).all()
    assert expected["migration_code_change_in_msa"].isna().any()  # '?' is missing
    assert expected["migration_code_change_in_msa"].dropna().map(type).eq(str).all()


def test_drift_scores_do_not_depend_on_the_text_dtype(census, census_params) -> None:
    from pipelines.stages.drift import detect_drift

    ds, cfg = census_params.dataset, census_params.drift
    ref, cur = census.reference.sample(20_000, random_state=0), census.current.head(20_000)
    as_category = {c: "category" for c in (*ds.features.categorical, ds.target)}
    a = detect_drift(ref, cur, ds, cfg, engine="fast")
    b = detect_drift(ref.astype(as_category), cur.astype(as_category), ds, cfg, engine="fast")
    assert [(c.column, c.drifted) for c in a.columns] == [(c.column, c.drifted) for c in b.columns]
    for x, y in zip((*a.columns, a.target), (*b.columns, b.target), strict=True):
        assert y.score == pytest.approx(x.score, abs=1e-12), x.column


@pytest.mark.parametrize("encoding", ["ordinal", "onehot"])
def test_both_encodings_fit_and_score_census_rows(census, census_params, encoding) -> None:
    """Ordinal codes (native categorical splits) and one-hot both train and score; unseen and
    missing categories at scoring time are handled, not errors."""
    from sklearn.metrics import roc_auc_score

    from pipelines.data import labels
    from pipelines.stages.evaluate import positive_scores
    from pipelines.stages.train import fit

    cfg = census_params.train.model_copy(
        update={"encoding": encoding, "hyperparameters": {"max_iter": 30}}
    )
    model = fit(census.reference.sample(20_000, random_state=1), census_params.dataset, cfg)
    cur = census.current.head(5000).copy()
    cur.loc[cur.index[:50], "state_of_previous_residence"] = "Atlantis"  # unseen category
    cur.loc[cur.index[50:100], "education"] = None  # missing
    proba = positive_scores(model, cur, census_params)
    assert proba.shape == (5000,) and ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc_score(labels(cur, census_params.dataset), proba) > 0.9
    if encoding == "ordinal":  # the classifier codes the categories itself: one column each
        assert [name for name, _ in model.steps] == ["classifier"]
        assert model.named_steps["classifier"].is_categorical_.sum() == 33
    else:  # one column per kept category
        assert model.named_steps["preprocess"].transform(cur.head(3)).shape[1] > 200


def test_ordinal_encoding_needs_native_categorical_splits() -> None:
    from pipelines.config import ConfigError, parse_params

    raw = yaml.safe_load(CENSUS_PARAMS.read_text())
    raw["train"].update(classifier="logistic_regression", hyperparameters={})
    with pytest.raises(ConfigError, match="encoding 'ordinal' needs classifier"):
        parse_params(raw, source="census_kdd.yaml")


def test_one_census_file_split_by_its_year_column(census_params: Params, tmp_path) -> None:
    """`dataset.split`: the train file alone, 1994 as reference and 1995 as current."""
    from pipelines.config import SplitConfig
    from pipelines.stages.prepare import prepare

    mirror = census_params.mirror
    if mirror is None or not (mirror / census_params.dataset.reference.name).is_file():
        pytest.skip(f"census mirror not present: {mirror}")
    split = SplitConfig(by="time", column="year", cutoff=95)
    ds = census_params.dataset.model_copy(update={"current": None, "split": split})
    out = prepare(census_params.model_copy(update={"dataset": ds}), tmp_path)
    assert set(out.reference["year"]) == {"94"} and set(out.current["year"]) == {"95"}
    assert len(out.reference) + len(out.current) == 199_523
    assert min(len(out.reference), len(out.current)) > 90_000
