"""Stage `prepare`: fetch the published dataset files, clean them, write Parquet for DVC.

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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.config import ConfigError, Params, load_params
from pipelines.data import DataError, check_labels, fetch_file, read_published, write_parquet
from pipelines.files import write_folder


@dataclass(frozen=True)
class Prepared:
    reference: pd.DataFrame
    current: pd.DataFrame


def prepare(params: Params, raw_dir: Path) -> Prepared:
    """Fetch both files into ``raw_dir`` (mirror first, then source URL) and clean them."""
    ds = params.dataset
    frames = []
    for f in (ds.reference, ds.current):
        local = fetch_file(f, params.mirror, ds.source_url, raw_dir / f.name)
        frames.append(read_published(local, ds, skip_rows=f.skip_rows))
    check_labels(frames[0], ds, source=ds.reference.name)
    return Prepared(reference=frames[0], current=frames[1])


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
