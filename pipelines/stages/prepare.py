"""Stage `prepare`: fetch the published dataset files, clean them, write Parquet for DVC.

Reference data (the training set as published) and current data (the held-out set as
published) land in ``<data>/prepared/``; DVC caches them and pushes them to the remote, so each
content hash is a data version that can be fetched back later.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.config import Params, load_params
from pipelines.data import fetch_file, read_published, write_parquet


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
    return Prepared(reference=frames[0], current=frames[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="prepare", description=__doc__)
    ap.add_argument("--params", default=None, help="params file (default params.yaml)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    out = prepare(params, params.paths.raw)
    ref_path, cur_path = (params.paths.prepared_reference, params.paths.prepared_current)
    write_parquet(out.reference, ref_path)
    write_parquet(out.current, cur_path)
    print(
        f"prepare: reference {len(out.reference):,} rows -> {ref_path}\n"
        f"prepare: current   {len(out.current):,} rows -> {cur_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
