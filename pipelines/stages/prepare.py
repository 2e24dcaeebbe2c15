"""Stage `prepare`: fetch the published dataset files, clean them, write Parquet for DVC.

One published file can be cut into reference and current (``dataset.split``: by a time column
and a cutoff, or by row order).

Reference data (the training set as published) and current data (the held-out set as
published) land in ``<data>/prepared/``; DVC caches them and pushes them to the remote, so each
content hash is a data version that can be fetched back later.

A file that cannot be used (missing, wrong checksum, wrong separator, a configured label that
is not in the data) ends the stage with one line and exit code 1, and the last good prepared
data stays: both files are written to a new folder that replaces the old one only when complete,
and ``dvc.yaml`` declares the outputs ``persist`` so DVC does not delete them first.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from pipelines.config import ConfigError, Params, SplitConfig, load_params
from pipelines.data import DataError, check_labels, fetch_file, read_published, write_parquet
from pipelines.files import write_folder


@dataclass(frozen=True)
class Prepared:
    reference: pd.DataFrame
    current: pd.DataFrame


def split_frame(df: pd.DataFrame, split: SplitConfig, source: str = "<frame>") -> Prepared:
    """One published table cut in two by ``dataset.split``: reference before the cutoff (or
    the first ``fraction`` of the rows), current from it on; each side keeps file order."""
    if split.by == "rows":
        assert split.fraction is not None  # the config requires it with by: rows
        before = np.arange(len(df)) < round(len(df) * split.fraction)
        where = f"the first {split.fraction:g} of the rows"
    else:
        assert split.column is not None and split.cutoff is not None  # required with by: time
        before = _before(df[split.column], split.cutoff, source)
        where = f"{split.column} < {split.cutoff!r}"
    out = Prepared(
        reference=df[before].reset_index(drop=True), current=df[~before].reset_index(drop=True)
    )
    for side, frame in (("reference", out.reference), ("current", out.current)):
        if frame.empty:
            raise DataError(
                f"{source}: dataset.split leaves no {side} rows ({where}, {len(df):,} rows)"
            )
    return out


def _before(col: pd.Series, cutoff: float | str, source: str) -> np.ndarray:
    """Rows before ``cutoff``: as numbers for a numeric column (or text that is all numbers),
    as dates when every value and the cutoff read as dates, else as text."""
    missing = int(col.isna().sum())
    if missing:
        raise DataError(
            f"{source}: dataset.split.column {col.name!r} has {missing:,} missing values"
        )
    if pd.api.types.is_numeric_dtype(col):
        try:
            return cast(np.ndarray, (col < float(cutoff)).to_numpy())
        except ValueError:
            raise DataError(
                f"{source}: dataset.split.cutoff {cutoff!r} is not a number; "
                f"column {col.name!r} is numeric"
            ) from None
    text = col.astype(str)
    numbers, cut_number = pd.to_numeric(text, errors="coerce"), _number(cutoff)
    if cut_number is not None and numbers.notna().all():  # codes written as text ("94")
        return cast(np.ndarray, (numbers < cut_number).to_numpy())
    with warnings.catch_warnings():  # a column that is not dates says so by failing to parse
        warnings.simplefilter("ignore")
        dates = pd.to_datetime(text, errors="coerce")
        cut = pd.to_datetime(str(cutoff), errors="coerce")
    if not pd.isna(cut) and dates.notna().all():
        return cast(np.ndarray, (dates < cut).to_numpy())
    return cast(np.ndarray, (text < str(cutoff)).to_numpy())


def _number(value: float | str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def prepare(params: Params, raw_dir: Path) -> Prepared:
    """Fetch the published files into ``raw_dir`` (mirror first, then source URL), clean them,
    and split the one file when ``dataset.split`` says so."""
    ds = params.dataset
    frames = []
    for f in ds.files:
        local = fetch_file(f, params.mirror, ds.source_url, raw_dir / f.name)
        frames.append(read_published(local, ds, skip_rows=f.skip_rows))
    if ds.split is not None:
        out = split_frame(frames[0], ds.split, source=ds.reference.name)
    else:
        out = Prepared(reference=frames[0], current=frames[1])
    check_labels(out.reference, ds, source=ds.reference.name)
    return out


def write_prepared(out: Prepared, params: Params) -> None:
    """Both files into a new folder that takes the place of the old one only when complete."""
    paths = params.paths

    def build(tmp: Path) -> None:
        write_parquet(out.reference, tmp / paths.prepared_reference.name)
        write_parquet(out.current, tmp / paths.prepared_current.name)

    write_folder(paths.prepared, build)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="prepare", description=__doc__)
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    args = ap.parse_args(argv)
    try:
        params = load_params(args.params)
        out = prepare(params, params.paths.raw)
    except (ConfigError, DataError) as err:
        print(f"prepare: error: {err}", file=sys.stderr)
        return 1
    write_prepared(out, params)
    ref_path, cur_path = (params.paths.prepared_reference, params.paths.prepared_current)
    print(
        f"prepare: reference {len(out.reference):,} rows -> {ref_path}\n"
        f"prepare: current   {len(out.current):,} rows -> {cur_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
