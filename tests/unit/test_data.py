"""Reading and cleaning data: real cleaning rules, and one clear error per kind of bad input."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from pipelines.config import DataFile
from pipelines.data import (
    DataError,
    check_labels,
    clean,
    fetch_file,
    read_published,
    read_table,
    write_table,
)


@pytest.fixture()
def ds(params):
    return params.dataset


ROW = (
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K"
)


def test_published_file_is_cleaned(tmp_path, ds):
    f = tmp_path / "adult.test"
    f.write_text(
        "|1x3 Cross validator\n"
        + ROW
        + ".\n"
        + ROW.replace("State-gov", "?").replace("<=50K", ">50K")
        + ".\n\n"
    )
    df = read_published(f, ds, skip_rows=1)
    assert len(df) == 2
    assert list(df["income"]) == ["<=50K", ">50K"]  # trailing '.' removed
    assert df.loc[1, "workclass"] is None  # '?' is missing
    assert df["age"].dtype == "float64"
    assert df.loc[0, "workclass"] == "State-gov"  # leading space stripped


def test_batch_csv_and_parquet_read_the_same(tmp_path, ds):
    header = ",".join(ds.columns)
    csv = tmp_path / "b.csv"
    csv.write_text(header + "\n" + ROW + "\n")
    a = read_table(csv, ds)
    pq = tmp_path / "b.parquet"
    a.to_parquet(pq)
    b = read_table(pq, ds)
    pd.testing.assert_frame_equal(a, b)


def test_missing_column_is_named(tmp_path, ds):
    header = ",".join(c for c in ds.columns if c != "occupation")
    row = ROW.replace(" Adm-clerical,", "")
    f = tmp_path / "b.csv"
    f.write_text(header + "\n" + row + "\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['occupation'\]") as err:
        read_table(f, ds)
    assert str(f) in str(err.value)


def test_wrong_type_is_named(tmp_path, ds):
    f = tmp_path / "b.csv"
    f.write_text(",".join(ds.columns) + "\n" + ROW.replace("39,", "thirty-nine,", 1) + "\n")
    with pytest.raises(DataError, match=r"column 'age' should be numeric .*'thirty-nine'"):
        read_table(f, ds)


def test_empty_file(tmp_path, ds):
    f = tmp_path / "b.csv"
    f.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_table(f, ds)
    f.write_text(",".join(ds.columns) + "\n")
    with pytest.raises(DataError, match="has no rows"):
        read_table(f, ds)


def test_unreadable_file(tmp_path, ds):
    f = tmp_path / "b.parquet"
    f.write_bytes(b"\x00\x01 not parquet at all")
    with pytest.raises(DataError, match="unreadable"):
        read_table(f, ds)
    g = tmp_path / "b.csv.gz"
    g.write_bytes(gzip.compress(b"x")[:5])  # truncated gzip
    with pytest.raises(DataError, match="unreadable"):
        read_table(g, ds)
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        (tmp_path / "b.xlsx").write_text("x")
        read_table(tmp_path / "b.xlsx", ds)
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "absent.csv", ds)


def test_clean_does_not_mutate_input(ds):
    df = pd.DataFrame([dict.fromkeys(ds.columns, " x ")]).assign(age="5")
    before = df.copy()
    clean(df.assign(**{c: "1" for c in ds.features.numeric}), ds)
    pd.testing.assert_frame_equal(df, before)


def test_fetch_checks_digest_and_reports_missing_source(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.csv").write_text("a,b\n1,2\n")
    ok = fetch_file(DataFile(name="f.csv"), mirror, None, tmp_path / "out" / "f.csv")
    assert ok.read_text() == "a,b\n1,2\n"
    with pytest.raises(DataError, match="sha256 .* does not match"):
        fetch_file(DataFile(name="f.csv", sha256="0" * 64), mirror, None, tmp_path / "o2" / "f.csv")
    assert not (tmp_path / "o2" / "f.csv").exists()  # nothing half-written
    with pytest.raises(DataError, match="not found in mirror .* no source_url"):
        fetch_file(DataFile(name="g.csv"), mirror, None, tmp_path / "o3" / "g.csv")


# --------------------------------------------------------------------------- the dataset's format
FORMATS = [(",", True), (",", False), (";", True), (";", False), ("\t", True), ("\t", False),
           (" ", True), (" ", False)]  # fmt: skip


@pytest.fixture(scope="module")
def adult_sample(adult_current):
    """Held-out Adult rows with missing values in them, as the stages see them (cleaned)."""
    with_missing = adult_current[adult_current["workclass"].isna()].head(20)
    return pd.concat([adult_current.head(280), with_missing], ignore_index=True)


@pytest.mark.parametrize("sep,header", FORMATS)
def test_a_batch_written_in_the_dataset_format_reads_back_identically(
    tmp_path, ds, adult_sample, sep, header
):
    fmt = ds.model_copy(update={"separator": sep, "header": header})
    path = write_table(adult_sample, tmp_path / "b.csv", fmt)
    first = path.read_text().splitlines()[0]
    assert (first.split(sep)[0] == ds.columns[0]) == header  # the format applied, not CSV
    assert sep in first
    pd.testing.assert_frame_equal(read_table(path, fmt), adult_sample)


def test_a_frame_with_other_columns_is_written_with_its_header(tmp_path, ds, adult_sample):
    """Without a header row a batch missing a column could not be read back as one."""
    fmt = ds.model_copy(update={"separator": " ", "header": False})
    batch = adult_sample.drop(columns=["occupation"])
    path = write_table(batch, tmp_path / "b.csv", fmt)
    with pytest.raises(DataError, match=r"missing column\(s\) \['occupation'\]"):
        read_table(path, fmt)


@pytest.mark.parametrize("sep,header", [(";", False), (" ", False), ("\t", True)])
def test_adult_published_in_another_format_reads_back_equal(
    tmp_path, ds, adult_sample, sep, header
):
    fmt = ds.model_copy(update={"separator": sep, "header": header})
    path = write_table(adult_sample, tmp_path / "adult.data.csv", fmt)
    pd.testing.assert_frame_equal(read_published(path, fmt), adult_sample)


def test_a_wrong_separator_is_named_with_the_likely_one(tmp_path, ds, adult_sample):
    path = write_table(adult_sample, tmp_path / "b.csv", ds.model_copy(update={"separator": ";"}))
    with pytest.raises(DataError) as err:
        read_published(path, ds)
    msg = str(err.value)
    assert "one column read where 15 were expected with separator ',' (comma)" in msg
    assert "looks ';' (semicolon)-separated" in msg and "\n" not in msg
    with pytest.raises(DataError, match="one column read"):
        read_table(path, ds)


def test_a_header_promised_but_absent_is_named(tmp_path, ds, adult_sample):
    path = write_table(adult_sample, tmp_path / "b.csv", ds)
    with pytest.raises(DataError, match="dataset.header is true"):
        read_published(path, ds.model_copy(update={"header": True}))


def test_a_configured_label_absent_from_the_data_is_named(ds, adult_sample):
    check_labels(adult_sample, ds, "adult.data")
    with pytest.raises(DataError, match=r"dataset.positive_label '>50k' is not a value of"):
        check_labels(adult_sample, ds.model_copy(update={"positive_label": ">50k"}), "adult.data")
    with pytest.raises(DataError, match=r"dataset.negative_label 'no'"):
        check_labels(adult_sample, ds.model_copy(update={"negative_label": "no"}), "adult.data")
