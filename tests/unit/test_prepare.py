"""The prepare stage refuses unusable published files in one line and keeps the last good data."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from pipelines.stages import prepare

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
    for f in (params.dataset.reference, params.dataset.current):
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
