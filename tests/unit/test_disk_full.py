"""A full disk ends in one line naming the file and the space left, with nothing half written:
the old file (if any) still whole, no temporary file beside it. The disk is "filled" by a write
that puts half its bytes down and then raises ``OSError(ENOSPC)``, as a real one does."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines import cli
from pipelines.files import DiskFullError, write_json
from pipelines.predlog.sinks import FolderSink
from tests.support.registry import make_params


def _fill_up(path: Any, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    Path(path).write_bytes(data[: max(1, len(data) // 2)])
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_record_is_never_half_written(tmp_path, monkeypatch):
    path = tmp_path / "nights" / "summary.json"
    write_json(path, {"outcome": "promoted"})
    monkeypatch.setattr(Path, "write_text", lambda self, text, **kw: _fill_up(self, text))
    with pytest.raises(DiskFullError) as err:
        write_json(path, {"outcome": "not_promoted", "pad": "x" * 10_000})
    line = str(err.value)
    assert "\n" not in line and str(path) in line and "MiB free" in line
    assert json.loads(path.read_bytes()) == {"outcome": "promoted"}  # the old one, whole
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]


def test_a_prediction_log_part_is_whole_or_absent(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    # the sink writes Arrow tables with pyarrow: the disk fills up there
    monkeypatch.setattr(pq, "write_table", lambda table, p, **kw: _fill_up(p, b"PAR1" * 1000))
    sink = FolderSink(tmp_path / "live")
    frame = pd.DataFrame({"ts": [pd.Timestamp("2026-12-06T10:00Z")], "p": [0.5]})
    with pytest.raises(DiskFullError, match=r"no space left writing .*part-.*\.parquet \(.*free"):
        sink.write("predictions", frame)
    assert [p for p in (tmp_path / "live").rglob("*") if p.is_file()] == []


def test_the_cli_says_it_in_one_line(tmp_path, monkeypatch, capsys, adult_current):
    params = make_params(tmp_path / "ws")
    params.paths.prepared_current.parent.mkdir(parents=True)
    adult_current.head(500).to_parquet(params.paths.prepared_current)
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, p, **kw: _fill_up(p, "a,b\n" * 500))
    code = cli.main(
        [
            "simulate",
            "--params",
            str(tmp_path / "ws" / "params.yaml"),
            "--date",
            "2026-03-01",
            "--scenario",
            "stable",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("retrain: DiskFullError: no space left writing ") and "free" in err
    landing = params.paths.landing
    assert not landing.exists() or [p for p in landing.iterdir()] == []
