"""Stage `window`: which rows a challenger trains on and which fresh rows judge it.

Inputs are the reference data and the accepted batches (``<data>/accepted/<date>.parquet``,
one file per night, DVC-tracked). Each accepted batch is split deterministically into a
training part and a held-out part by row content, so a row is held out wherever it appears. The
training set is the reference data plus the training parts of the batches in the window (all of
them, or the last N). The evaluation set is the held-out part of the batch accepted last (the
night's own batch, also when a night is backfilled for an earlier date: each accepted file
carries the time it was accepted): fresh data that neither the champion (trained before the
batch arrived) nor the challenger has seen. Before any batch is accepted, the evaluation set is
the dataset's published held-out file.

A batch found bad after it was accepted is retracted (``retrain retract DATE --reason``): it stays
in ``accepted/`` with a retraction record beside it (``<date>.retracted.json``) and is left out of
every later window, for training and for evaluation. ``window.json`` lists the batches trained
on and those left out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from pipelines.config import Params, WindowConfig, load_params
from pipelines.data import parquet_metadata, read_parquet, write_parquet
from pipelines.files import write_text


@dataclass(frozen=True)
class Window:
    train: pd.DataFrame
    eval: pd.DataFrame
    batches: tuple[str, ...]  # batch names (dates) in the training window
    eval_source: str
    retracted: dict[str, str] = field(default_factory=dict)  # left out: name -> reason

    def manifest(self) -> dict[str, object]:
        """What ``window.json`` holds: what the challenger was trained and judged on."""
        return {
            "batches": list(self.batches),
            "retracted": dict(self.retracted),
            "eval_source": self.eval_source,
        }


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """A content hash per row (index ignored): identical rows hash alike."""
    hashes = pd.util.hash_pandas_object(df, index=False)
    return cast(np.ndarray, hashes.to_numpy(dtype=np.uint64))


def holdout_mask(df: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Held-out rows, chosen by row *content*: the same row is held out in every batch it
    appears in (or in none), so a row judged as fresh can never have been trained on."""
    salt = np.uint64(int.from_bytes(hashlib.sha256(str(seed).encode()).digest()[:8], "little"))
    h = row_hashes(df) ^ salt
    h = (h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)  # mix, keep 53 bits
    return (h.astype(np.float64) / float(1 << 53)) < fraction


def build_window(
    reference: pd.DataFrame,
    batches: dict[str, pd.DataFrame],
    fallback_eval: pd.DataFrame,
    cfg: WindowConfig,
    retracted: Mapping[str, str] | None = None,
    accepted_at: Mapping[str, str] | None = None,
) -> Window:
    """Pure core. ``batches`` maps batch name (sortable, e.g. an ISO date) to its rows;
    ``retracted`` (name -> reason) are left out, as if they had never been accepted. The batch
    accepted last (``accepted_at``: name -> ISO time; the newest name when unknown) judges."""
    gone = {n: r for n, r in (retracted or {}).items() if n in batches}
    names = sorted(n for n in batches if n not in gone)
    when = accepted_at or {}
    judging = max(names, key=lambda n: (when.get(n, ""), n)) if names else None
    in_window = names if cfg.last_batches is None else names[-cfg.last_batches :]
    parts = [reference] if cfg.include_reference else []
    eval_df, eval_source = fallback_eval, "published held-out data"
    for name in in_window:
        df = batches[name]
        mask = holdout_mask(df, cfg.holdout_fraction, cfg.seed)
        parts.append(df[~mask])
        if name == judging:
            eval_df, eval_source = df[mask], f"held-out part of batch {name}"
    if judging is not None and judging not in in_window:  # judged, though outside the window
        df = batches[judging]
        mask = holdout_mask(df, cfg.holdout_fraction, cfg.seed)
        eval_df, eval_source = df[mask], f"held-out part of batch {judging}"
    if not parts:
        raise ValueError("window: no training data (include_reference is false and no batches)")
    columns = list(reference.columns)
    # no copies that change nothing: at a million rows each one is hundreds of MB
    if len(parts) == 1:
        train = _plain_index(_aligned(parts[0], columns))
    else:
        train = pd.concat([_aligned(p, columns) for p in parts], ignore_index=True)
    eval_df = _aligned(eval_df, columns)
    # a guard for duplicates the data itself carries (e.g. the same record published twice)
    seen = np.isin(row_hashes(eval_df), row_hashes(train))
    if seen.any():
        eval_df = eval_df[~seen]
    return Window(
        train=train,
        eval=_plain_index(eval_df),
        batches=tuple(in_window),
        eval_source=eval_source,
        retracted=dict(sorted(gone.items())),
    )


def _aligned(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df if list(df.columns) == columns else df.reindex(columns=columns)


def _plain_index(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` indexed 0..n-1 (the frame itself when it already is)."""
    if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1:
        return df
    return df.reset_index(drop=True)


ACCEPTED_AT = "retrain.accepted_at"  # footer metadata of an accepted batch: when, ISO time


def read_batches(folder: Path) -> dict[str, pd.DataFrame]:
    if not folder.is_dir():
        return {}
    return {p.stem: read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def read_accepted_at(folder: Path) -> dict[str, str]:
    """When each batch of ``folder`` was accepted (from its file's footer; older files: none)."""
    if not folder.is_dir():
        return {}
    found = {p.stem: parquet_metadata(p).get(ACCEPTED_AT) for p in folder.glob("*.parquet")}
    return {name: at for name, at in found.items() if at}


_RETRACTED = ".retracted.json"


def read_retractions(folder: Path) -> dict[str, str]:
    """The retracted batches of ``folder`` (name -> reason), oldest first."""
    if not folder.is_dir():
        return {}
    found = {}
    for p in sorted(folder.glob(f"*{_RETRACTED}")):
        found[p.name.removesuffix(_RETRACTED)] = str(json.loads(p.read_text()).get("reason", ""))
    return found


def retract(params: Params, day: str, reason: str, now: datetime | None = None) -> Path:
    """Retract the batch accepted on ``day``: it stays, with a record of why, and no later
    window trains or evaluates on it. Raises ValueError for a day with no accepted batch, an
    empty reason, or a batch already retracted."""
    batch, record = params.paths.accepted_batch(day), params.paths.retraction(day)
    if not reason.strip():
        raise ValueError("retract: --reason must say why")
    if not batch.is_file():
        raise ValueError(f"retract: no accepted batch for {day} ({batch})")
    if record.is_file():
        raise ValueError(f"retract: {day} is already retracted ({record})")
    at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    body = {"batch": batch.name, "reason": reason.strip(), "retracted_at": at}
    return write_text(record, json.dumps(body, indent=2) + "\n")


def trained_on_text(manifest: Path) -> str:
    """The batches a challenger was trained on, and those left out, as report lines."""
    if not manifest.is_file():
        return ""
    m = json.loads(manifest.read_text())
    lines = ["", "## Training window", "", f"- trained on: {', '.join(m['batches']) or 'none'}"]
    lines += [f"- left out (retracted): {d}: {r}" for d, r in m["retracted"].items()]
    lines.append(f"- judged on: {m['eval_source']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="window", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=None)
    args = ap.parse_args(argv)
    params = load_params(args.params)

    ref_path, cur_path = (params.paths.prepared_reference, params.paths.prepared_current)
    w = build_window(
        read_parquet(ref_path),
        read_batches(params.paths.accepted),
        read_parquet(cur_path),
        params.window,
        read_retractions(params.paths.accepted),
        read_accepted_at(params.paths.accepted),
    )
    train_path, eval_path = (params.paths.window_train, params.paths.window_eval)
    write_parquet(w.train, train_path)
    write_parquet(w.eval, eval_path)
    write_text(params.paths.window_manifest, json.dumps(w.manifest(), indent=2) + "\n")
    parts = (["reference"] if params.window.include_reference else []) + (
        [f"{len(w.batches)} batch(es)"] if w.batches else []
    )
    print(
        f"window: train {len(w.train):,} rows ({' + '.join(parts)}); "
        f"eval {len(w.eval):,} rows ({w.eval_source})"
        + (f"; retracted, left out: {', '.join(w.retracted)}" if w.retracted else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
