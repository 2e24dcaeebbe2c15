"""The model card's edge: gather its facts from the workspace's files, write the card as
Markdown and HTML beside the registration, and copy it to the night's reports.

The facts come from the stage outputs ``register`` already reads (the training record, the
gate's decision and evidence, the evaluation) and from the fairness result, the window's
manifest and the training data itself (the ranges of what the model has seen). A file that
is missing leaves its section saying so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.config import Params
from pipelines.files import write_text
from pipelines.paths import CardOut
from pipelines.release.card import CardFacts, DataSeen, build_card, importances
from pipelines.release.card_render import render_html, render_markdown
from pipelines.stages.evaluate import Evaluation
from pipelines.stages.gate import Decision


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _path(params: Params, given: str | None, default: Path) -> Path:
    p = Path(given) if given else default
    return p if p.is_absolute() else params.root / p


def _shown(params: Params, path: Path) -> str:
    return str(path.relative_to(params.root)) if path.is_relative_to(params.root) else str(path)


def data_seen(params: Params, path: Path, version: str, rows: int | None) -> DataSeen:
    """What a file holds of the model's features: each numeric one's range, each other one's
    number of categories (only the feature columns are read)."""
    feats = params.dataset.features
    ranges: dict[str, tuple[float, float]] = {}
    categories: dict[str, int] = {}
    if path.is_file() and path.suffix == ".parquet":
        import pyarrow.parquet as pq

        have = set(pq.ParquetFile(path).schema_arrow.names)
        cols = [c for c in feats.all if c in have]
        frame = pq.read_table(path, columns=cols).to_pandas() if cols else None
        if frame is not None:
            rows = len(frame) if rows is None else rows
            for c in feats.numeric:
                if c in frame and frame[c].notna().any():
                    lo, hi = float(frame[c].min()), float(frame[c].max())
                    if math.isfinite(lo) and math.isfinite(hi):
                        ranges[c] = (lo, hi)
            for c in feats.categorical:
                if c in frame:
                    categories[c] = int(frame[c].nunique(dropna=True))
    return DataSeen(_shown(params, path), version, rows, ranges, categories)


def gather_facts(
    params: Params,
    train_record: Mapping[str, Any],
    decision: Decision,
    verdict: str,
    headline: str,
    version: str,
    evaluation: Evaluation | None,
    evidence: Mapping[str, Any],
) -> CardFacts:
    """The facts of the card of ``version`` (see the module's docstring)."""
    from pipelines.stages.fairness import FairnessResult

    tags = train_record.get("tags") or {}
    metrics = train_record.get("metrics") or {}
    train_rows = metrics.get("train_rows")
    train_path = _path(params, tags.get("data_path.train"), params.paths.window_train)
    training = data_seen(
        params,
        train_path,
        str(tags.get("data_version.train") or "unknown"),
        None if train_rows is None else int(train_rows),
    )
    eval_data = None
    if tags.get("data_version.eval"):
        eval_path = _path(params, tags.get("data_path.eval"), params.paths.window_eval)
        eval_data = DataSeen(str(_shown(params, eval_path)), str(tags["data_version.eval"]))
    fairness = _read(params.paths.fairness)
    mine, theirs = importances(evidence)
    return CardFacts(
        model=params.mlflow.registered_model,
        version=str(version),
        run_id=str(train_record["run_id"]),
        verdict=verdict,
        headline=headline,
        dataset=params.dataset,
        decision=decision,
        training=training,
        evaluation_data=eval_data,
        evaluation=evaluation,
        fairness=FairnessResult.from_dict(fairness) if fairness else None,
        evidence=evidence,
        window=_read(params.paths.window_manifest),
        include_reference=params.window.include_reference,
        git_commit=str(tags.get("git_commit") or ""),
        importance=mine,
        champion_importance=theirs,
    )


def write_card(facts: CardFacts, out: CardOut) -> CardOut:
    """The card as Markdown and HTML in ``out``'s folder."""
    text = build_card(facts)
    write_text(out.markdown, render_markdown(text))
    write_text(out.html, render_html(text))
    return out


def copy_card(source: CardOut, dest: CardOut) -> list[Path]:
    """The card ``register`` wrote, copied beside a night's other reports (nothing when there
    is none)."""
    return [
        write_text(dst, src.read_text())
        for src, dst in ((source.markdown, dest.markdown), (source.html, dest.html))
        if src.is_file()
    ]
