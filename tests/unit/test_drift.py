"""Unit tests of the drift stage on small frames built here (both engines, the CLI edge)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from pipelines.config import DatasetConfig, DriftConfig
from pipelines.data import DataError
from pipelines.stages.drift import (
    ColumnDrift,
    DriftResult,
    detect_drift,
    main,
    read_frame,
    score_column,
)

ENGINES = ["evidently", "fast"]
N = 2000

TOY = {
    "name": "toy",
    "reference": {"name": "reference.csv"},
    "current": {"name": "current.csv"},
    "columns": ["x", "z", "colour", "size", "label"],
    "target": "label",
    "positive_label": "yes",
    "negative_label": "no",
    "features": {"numeric": ["x", "z"], "categorical": ["colour", "size"]},
}


@pytest.fixture(scope="module")
def toy() -> DatasetConfig:
    return DatasetConfig.model_validate(TOY)


def toy_frame(
    seed: int,
    n: int = N,
    *,
    x_shift: float = 0.0,
    colour_p: tuple[float, float, float] = (0.5, 0.3, 0.2),
    label_p: float = 0.3,
) -> pd.DataFrame:
    """x: normal (histogram bins), z: few integer values (value bins), two categoricals."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(x_shift, 1.0, n),
            "z": rng.poisson(3.0, n).astype("float64"),
            "colour": rng.choice(["red", "green", "blue"], n, p=colour_p).astype(object),
            "size": rng.choice(["S", "M", "L"], n).astype(object),
            "label": np.where(rng.random(n) < label_p, "yes", "no").astype(object),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return toy_frame(seed=1)


@pytest.fixture(scope="module")
def current() -> pd.DataFrame:
    return toy_frame(seed=2)


def with_missing(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    df = df.copy()
    rng = np.random.default_rng(seed)
    df.loc[rng.random(len(df)) < 0.1, "x"] = np.nan
    df.loc[rng.random(len(df)) < 0.1, "colour"] = None
    df.loc[rng.random(len(df)) < 0.02, "z"] = np.inf
    return df


CFG = DriftConfig()
METHOD_CONFIGS = {
    "default": CFG,
    "ks-chisquare": DriftConfig(
        numeric_method="ks",
        numeric_threshold=0.05,
        categorical_method="chisquare",
        categorical_threshold=0.05,
        target_method="chisquare",
        target_threshold=0.05,
    ),
    "psi": DriftConfig(numeric_method="psi", categorical_method="psi", target_method="psi"),
    "jensenshannon": DriftConfig(numeric_method="jensenshannon"),
}


# --------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize("engine", ENGINES)
def test_identical_data_has_no_drift(toy, reference, engine):
    result = detect_drift(reference, reference.copy(), toy, CFG, engine=engine)
    assert not result.drifted
    assert result.n_drifted == 0 and result.share == 0.0
    assert not result.target.drifted
    assert all(c.score == pytest.approx(0.0, abs=1e-12) for c in result.columns)
    assert result.reasons[0] == "0 of 4 columns drifted (0%), below the 50% share: no dataset drift"


@pytest.mark.parametrize("engine", ENGINES)
def test_same_population_has_no_drift(toy, reference, current, engine):
    result = detect_drift(reference, current, toy, CFG, engine=engine)
    assert not result.drifted
    assert result.drifted_columns == ()
    assert [c.column for c in result.columns] == ["x", "z", "colour", "size"]
    assert [c.method for c in result.columns] == ["wasserstein"] * 2 + ["jensenshannon"] * 2


@pytest.mark.parametrize("engine", ENGINES)
def test_shifted_numeric_column_drifts(toy, reference, engine):
    shifted = toy_frame(seed=2, x_shift=0.5)
    result = detect_drift(reference, shifted, toy, CFG, engine=engine)
    x = result.column("x")
    assert x.drifted and x.score > x.threshold
    assert x.score == pytest.approx(0.5, abs=0.1)  # a mean shift of half a std
    assert result.drifted_columns == ("x",)
    assert not result.drifted  # 1 of 4 is below the 50% share
    assert result.reasons[1].startswith("column 'x' wasserstein 0.")
    assert ">= 0.1" in result.reasons[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_new_category_distribution_drifts(toy, reference, engine):
    moved = toy_frame(seed=2, colour_p=(0.1, 0.3, 0.6))
    result = detect_drift(reference, moved, toy, CFG, engine=engine)
    assert result.drifted_columns == ("colour",)
    assert result.column("colour").score > CFG.categorical_threshold


@pytest.mark.parametrize("engine", ENGINES)
def test_unseen_category_drifts(toy, reference, engine):
    current = reference.copy()
    current.loc[: N // 10, "size"] = "XXL"
    cfg = METHOD_CONFIGS["ks-chisquare"]
    result = detect_drift(reference, current, toy, cfg, engine=engine)
    size = result.column("size")
    assert size.drifted and size.score == pytest.approx(0.0)
    assert result.reasons[1] == "column 'size' chisquare p-value 0 < 0.05"


@pytest.mark.parametrize("engine", ENGINES)
def test_label_shift_is_target_drift_not_dataset_drift(toy, reference, engine):
    relabelled = toy_frame(seed=2, label_p=0.6)
    result = detect_drift(reference, relabelled, toy, CFG, engine=engine)
    assert result.target.drifted
    assert result.target.score > CFG.target_threshold
    assert not result.drifted and result.n_drifted == 0  # the target is not a feature
    assert result.reasons[-1].startswith("target 'label' jensenshannon")
    assert result.reasons[-1].endswith(": label shift")


@pytest.mark.parametrize(("dataset_share", "expected"), [(0.5, True), (0.6, False)])
def test_dataset_verdict_is_share_at_or_above_threshold(toy, reference, dataset_share, expected):
    both = toy_frame(seed=2, x_shift=1.0, colour_p=(0.1, 0.3, 0.6))
    cfg = DriftConfig(dataset_share=dataset_share)
    result = detect_drift(reference, both, toy, cfg, engine="fast")
    assert result.n_drifted == 2 and result.share == 0.5
    assert result.drifted is expected
    where = "at or above" if expected else "below"
    assert result.reasons[0].startswith(f"2 of 4 columns drifted (50%), {where} the")


# --------------------------------------------------------------------------- missing values
@pytest.mark.parametrize("engine", ENGINES)
def test_missing_values_are_tolerated_and_reported(toy, reference, current, engine):
    result = detect_drift(
        with_missing(reference, 3), with_missing(current, 4), toy, CFG, engine=engine
    )
    assert not result.drifted
    x, z, colour = result.column("x"), result.column("z"), result.column("colour")
    assert 0.05 < x.missing_reference < 0.15 and 0.05 < x.missing_current < 0.15
    assert 0.05 < colour.missing_current < 0.15
    assert 0.0 < z.missing_current < 0.05  # infinities are not values either
    assert all(c.score is not None and np.isfinite(c.score) for c in result.columns)


@pytest.mark.parametrize("engine", ENGINES)
def test_column_empty_on_one_side_counts_as_drifted(toy, reference, current, engine):
    cur = current.copy()
    cur["colour"] = None
    result = detect_drift(reference, cur, toy, CFG, engine=engine)
    colour = result.column("colour")
    assert colour.drifted and colour.score is None and colour.missing_current == 1.0
    assert "column 'colour' has no values in the current data" in result.reasons


def test_column_empty_on_both_sides_is_not_drift(toy, reference, current):
    ref, cur = reference.copy(), current.copy()
    ref["z"] = np.nan
    cur["z"] = np.nan
    result = detect_drift(ref, cur, toy, CFG, engine="fast")
    assert not result.column("z").drifted and result.column("z").score is None


# --------------------------------------------------------------------------- engines agree
@pytest.mark.parametrize("config", list(METHOD_CONFIGS))
@pytest.mark.parametrize("shifted", [False, True])
def test_engines_agree(toy, reference, config, shifted):
    current = (
        toy_frame(seed=2, x_shift=0.3, colour_p=(0.3, 0.3, 0.4), label_p=0.4)
        if shifted
        else toy_frame(seed=2)
    )
    current = with_missing(current, 5)
    cfg = METHOD_CONFIGS[config]
    slow = detect_drift(reference, current, toy, cfg, engine="evidently")
    fast = detect_drift(reference, current, toy, cfg, engine="fast")
    for a, b in zip((*slow.columns, slow.target), (*fast.columns, fast.target), strict=True):
        assert (a.column, a.method, a.drifted) == (b.column, b.method, b.drifted)
        assert a.score == pytest.approx(b.score, abs=1e-6, rel=1e-6)
    assert slow.reasons == fast.reasons
    assert slow.drifted == fast.drifted


def test_score_column_matches_definitions():
    ref = pd.Series([0.0, 1.0, 2.0, 3.0])
    cur = ref + 1.0
    # Wasserstein distance 1, over the reference's population std sqrt(1.25)
    assert score_column(ref, cur, "numeric", "wasserstein") == pytest.approx(1 / np.sqrt(1.25))
    same = pd.Series(["a", "b", "b", "c"])
    assert score_column(same, same, "categorical", "psi") == pytest.approx(0.0)
    assert score_column(same, same, "categorical", "jensenshannon") == pytest.approx(0.0)
    assert score_column(same, same, "categorical", "chisquare") == pytest.approx(1.0)
    # constant reference: the std is floored at 0.001 rather than dividing by zero
    flat = pd.Series([5.0] * 10)
    assert score_column(flat, flat + 0.01, "numeric", "wasserstein") == pytest.approx(10.0)


@pytest.mark.parametrize("values", ["continuous", "ties"])
def test_fast_wasserstein_equals_scipy(values):
    from scipy import stats

    rng = np.random.default_rng(11)
    u, v = rng.standard_t(3, 5000), rng.normal(0.2, 2.0, 3000)
    if values == "ties":
        u, v = np.round(u), np.round(v * 3) / 3
    expected = stats.wasserstein_distance(u, v) / np.std(u)
    got = score_column(pd.Series(u), pd.Series(v), "numeric", "wasserstein")
    assert got == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- value object
def test_result_json_round_trip(toy, reference):
    current = with_missing(toy_frame(seed=2, x_shift=1.0, label_p=0.6), 6)
    current["size"] = None
    result = detect_drift(reference, current, toy, CFG, engine="fast")
    text = json.dumps(result.to_dict(), allow_nan=False)  # strict JSON
    back = DriftResult.from_dict(json.loads(text))
    assert back == result
    assert isinstance(back.columns[0], ColumnDrift)
    assert type(result.to_dict()["columns"][0]["score"]) is float


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop(columns=["colour"]), "missing column(s) ['colour']"),
        (lambda df: df.assign(x=df["x"].astype(str)), "numeric column 'x' has dtype"),
        (lambda df: df.iloc[:0], "current data has no rows"),
    ],
)
def test_bad_frames_are_data_errors(toy, reference, current, change, message):
    with pytest.raises(DataError, match=re.escape(message)):
        detect_drift(reference, change(current), toy, CFG, engine="fast")


def test_unusable_config_and_engine(toy, reference, current):
    # the config no longer admits a numeric-only method for categorical columns
    with pytest.raises(ValidationError, match="categorical_method"):
        DriftConfig(categorical_method="wasserstein")
    with pytest.raises(ValueError, match="unknown drift engine 'turbo'"):
        detect_drift(reference, current, toy, CFG, engine="turbo")


# --------------------------------------------------------------------------- main (edge)
@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    params = {
        "dataset": TOY,
        "validate": {"suite": "toy"},
        "mlflow": {"registered_model": "toy"},
        "drift": {"report_sample_rows": 500},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def test_main_writes_result_metrics_and_report(workspace, reference, capsys):
    prepared = workspace / "data" / "prepared"
    prepared.mkdir(parents=True)
    reference.to_parquet(prepared / "reference.parquet", index=False)
    shifted = toy_frame(seed=2, x_shift=1.0, colour_p=(0.1, 0.3, 0.6))
    shifted.to_parquet(prepared / "current.parquet", index=False)

    assert main(["--params", str(workspace / "params.yaml")]) == 0  # drift is not an error

    out = workspace / "reports" / "drift"
    result = DriftResult.from_dict(json.loads((out / "drift.json").read_text()))
    assert result.drifted and set(result.drifted_columns) == {"x", "colour"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == {"drift_share": 0.5}  # `dvc metrics show`: the rest is in drift.json
    html = (out / "drift.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and "Drifted Columns" in html
    assert sorted(p.name for p in out.iterdir()) == ["drift.html", "drift.json", "metrics.json"]
    printed = capsys.readouterr().out
    assert "DATASET DRIFT - 2 of 4 feature columns drifted (50%" in printed
    assert "column 'x' wasserstein" in printed


def test_main_reads_csv_and_explicit_paths(workspace, reference, current, tmp_path):
    ref, cur = with_missing(reference, 7), with_missing(current, 8)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet", index=False)
    out = tmp_path / "out"
    args = ["--params", str(workspace / "params.yaml"), "--out", str(out)]
    args += ["--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.parquet")]
    assert main(args) == 0
    written = DriftResult.from_dict(json.loads((out / "drift.json").read_text()))
    assert not written.drifted and written.n_drifted == 0
    colour = written.column("colour")  # missing values survive both formats as missing
    assert colour.missing_reference == pytest.approx(ref["colour"].isna().mean())
    assert colour.missing_current == pytest.approx(cur["colour"].isna().mean())


def test_no_held_out_rows_is_not_judged_and_not_an_error(workspace, reference, tmp_path, capsys):
    """A night whose held-out rows are all gone: drift says so, the night goes on to the gate."""
    reference.to_parquet(tmp_path / "ref.parquet", index=False)
    reference.head(0).to_parquet(tmp_path / "cur.parquet", index=False)
    out = tmp_path / "out"
    args = ["--params", str(workspace / "params.yaml"), "--out", str(out)]
    args += [
        "--reference",
        str(tmp_path / "ref.parquet"),
        "--current",
        str(tmp_path / "cur.parquet"),
    ]
    assert main(args) == 0
    written = DriftResult.from_dict(json.loads((out / "drift.json").read_text()))
    assert not written.drifted and written.n_current == 0 and written.n_reference == len(reference)
    assert all(c.score is None and not c.drifted for c in (*written.columns, written.target))
    assert (
        written.reasons[0].startswith("drift not judged: ") and "has no rows" in written.reasons[0]
    )
    assert "drift not judged" in (out / "drift.html").read_text()
    assert "drift not judged" in capsys.readouterr().out


def test_read_frame_keeps_missing_categories_missing(toy, tmp_path):
    df = with_missing(toy_frame(seed=9, n=200), 9)
    df.to_parquet(tmp_path / "f.parquet", index=False)
    back = read_frame(tmp_path / "f.parquet", toy)
    assert back["colour"].isna().sum() == df["colour"].isna().sum() > 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda ws: ["--reference", str(ws / "nope.parquet")], "file not found"),
        (lambda ws: ["--current", str(ws / "bad.csv")], "missing column(s) ['colour']"),
        (lambda ws: ["--params", str(ws / "bad.yaml")], "unknown key 'drift.nonsense'"),
    ],
)
def test_main_bad_input_is_one_line_and_exit_2(workspace, reference, capsys, setup, message):
    reference.to_parquet(workspace / "ref.parquet", index=False)
    reference.drop(columns=["colour"]).to_csv(workspace / "bad.csv", index=False)
    bad = yaml.safe_load((workspace / "params.yaml").read_text())
    bad["drift"]["nonsense"] = 1
    (workspace / "bad.yaml").write_text(yaml.safe_dump(bad))
    base = ["--params", str(workspace / "params.yaml"), "--out", str(workspace / "out")]
    base += ["--reference", str(workspace / "ref.parquet")]
    base += ["--current", str(workspace / "ref.parquet")]
    assert main(base + setup(workspace)) == 2
    err = capsys.readouterr().err
    assert err.startswith("drift: error: ") and message in err
    assert err.count("\n") == 1
    assert not (workspace / "out").exists()
