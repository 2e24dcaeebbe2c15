"""The prepare stage refuses unusable published files in one line and keeps the last good data."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.config import ConfigError, SplitConfig, parse_params
from pipelines.data import DataError
from pipelines.stages import prepare
from pipelines.stages.prepare import split_frame

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture()
def workspace(tmp_path, params, monkeypatch):
    """A workspace whose mirror holds the first rows of the real Adult files."""
    monkeypatch.delenv("RETRAIN_DATASET_MIRROR", raising=False)
    if params.mirror is None or not (params.mirror / params.dataset.reference.name).is_file():
        pytest.skip(f"dataset mirror not present: {params.mirror}")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for f in params.dataset.files:
        lines = (params.mirror / f.name).read_text().splitlines(keepends=True)
        (mirror / f.name).write_text("".join(lines[: 400 + f.skip_rows]))
    return tmp_path, mirror


def write_params(root: Path, mirror: Path, **dataset) -> Path:
    raw = copy.deepcopy(RAW)
    for f in ("reference", "current"):
        raw["dataset"][f].pop("sha256", None)
    raw["dataset"].update({"mirror": str(mirror), "source_url": None, **dataset})
    p = root / "params.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def prepared_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "data" / "prepared").iterdir())}


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"separator": ";"}, "one column read where 15 were expected with separator ';'"),
        ({"positive_label": ">50k"}, "dataset.positive_label '>50k' is not a value of"),
        ({"reference": {"name": "adult.data", "sha256": "0" * 64}}, "sha256 "),
        ({"current": {"name": "absent.test"}}, "absent.test: not found in mirror"),
    ],
)
def test_a_failed_prepare_says_why_in_one_line_and_keeps_the_last_good_data(
    workspace, capsys, change, expected
):
    root, mirror = workspace
    assert prepare.main(["--params", str(write_params(root, mirror))]) == 0
    good = prepared_bytes(root)
    assert set(good) == {"reference.parquet", "current.parquet"}
    capsys.readouterr()

    assert prepare.main(["--params", str(write_params(root, mirror, **change))]) == 1
    err = capsys.readouterr().err.strip()
    assert expected in err and err.startswith("prepare: error: ") and "\n" not in err
    assert prepared_bytes(root) == good


# --------------------------------------------------------------------------- one file, split
@pytest.fixture(scope="module")
def timed(adult_current):
    """Held-out Adult rows with a time column: a year, and a day written as text."""
    df = adult_current.head(400).reset_index(drop=True)
    days = pd.date_range("2008-05-01", periods=len(df), freq="D").strftime("%Y-%m-%d")
    return df.assign(year=np.repeat([1994.0, 1995.0], len(df) // 2), day=list(days))


def test_split_by_row_order_keeps_file_order(timed):
    out = split_frame(timed, SplitConfig(by="rows", fraction=0.75))
    assert (len(out.reference), len(out.current)) == (300, 100)
    pd.testing.assert_frame_equal(pd.concat([out.reference, out.current], ignore_index=True), timed)


@pytest.mark.parametrize(
    "column,cutoff,n_ref",
    [
        ("year", 1995, 200),
        ("year", "1995", 200),
        ("day", "2008-06-01", 31),
        ("day", "2008-6-1", 31),
    ],
)
def test_split_by_a_time_column_and_a_cutoff(timed, column, cutoff, n_ref):
    out = split_frame(timed, SplitConfig(by="time", column=column, cutoff=cutoff))
    assert len(out.reference) == n_ref and len(out.current) == len(timed) - n_ref
    assert out.reference[column].max() < out.current[column].min()


@pytest.mark.parametrize(
    "split,frame,expected",
    [
        (SplitConfig(by="time", column="year", cutoff=1990), None, "leaves no reference rows"),
        (SplitConfig(by="time", column="day", cutoff="2030-01-01"), None, "no current rows"),
        (SplitConfig(by="time", column="year", cutoff="soon"), None, "'soon' is not a number"),
        (SplitConfig(by="time", column="workclass", cutoff="M"), "missing", "missing values"),
    ],
)
def test_a_split_that_cannot_be_made_is_named(timed, split, frame, expected):
    df = timed if frame is None else timed.assign(workclass=[None] + ["x"] * (len(timed) - 1))
    with pytest.raises(DataError, match="dataset.split") as err:
        split_frame(df, split, source="one.csv")
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"split": {"by": "rows", "fraction": 0.7}}, "key 'dataset.split': give the held-out"),
        ({"current": None}, "key 'dataset.current': give the held-out file"),
        ({"current": None, "split": {"by": "rows"}}, "key 'dataset.split.fraction': needed"),
        (
            {"current": None, "split": {"by": "rows", "fraction": 0.7, "column": "age"}},
            "key 'dataset.split.column': not used with by: rows",
        ),
        (
            {"current": None, "split": {"by": "time", "column": "when", "cutoff": 3}},
            "key 'dataset.split.column': 'when' is not in dataset.columns",
        ),
        ({"current": None, "split": {"by": "rows", "fraction": 1.5}}, "dataset.split.fraction"),
    ],
)
def test_a_split_is_checked_at_load(change, expected):
    raw = copy.deepcopy(RAW)
    raw["dataset"].update(change)
    with pytest.raises(ConfigError) as err:
        parse_params(raw, source="params.yaml")
    assert expected in str(err.value)


def test_prepare_splits_one_published_file(workspace, capsys):
    root, mirror = workspace
    p = write_params(root, mirror, current=None, split={"by": "rows", "fraction": 0.75})
    assert prepare.main(["--params", str(p)]) == 0
    ref = pd.read_parquet(root / "data" / "prepared" / "reference.parquet")
    cur = pd.read_parquet(root / "data" / "prepared" / "current.parquet")
    assert (len(ref), len(cur)) == (300, 100)
    assert not (root / "data" / "raw" / RAW["dataset"]["current"]["name"]).exists()
