"""A model card per registered version, made from the gate's evidence (pure: facts in, text out).

What the card says, section by section: the verdict first (as the version's description says
it), what the model is for and the data it learned from (the DVC hashes, rows, the training
window's batches by date and those left out, the held-out rows that judged it), its metrics
with their intervals beside the champion's and the paired differences, fairness per group
with each group's size, feature importance when the evidence carries it ("not computed"
otherwise: nothing is computed here), the gate's decision with every check, and the known
limits: groups too small to judge, checks skipped or without enough evidence and why, the
ranges of the data the model has seen. :mod:`pipelines.release.card_render` lays it out as
Markdown and HTML; :mod:`pipelines.release.register` gathers the facts, writes the files and
logs them on the challenger's run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.config import DatasetConfig
from pipelines.release.card_render import Block, CardText, Section, table
from pipelines.stages.evaluate import Evaluation
from pipelines.stages.fairness import FairnessResult
from pipelines.stages.gate import Decision

NOT_COMPUTED = "Not computed for this version."


@dataclass(frozen=True)
class DataSeen:
    """One data file a model met: where it is, its DVC hash, its rows and, for the training
    data, the range of each numeric feature and the number of categories of each other one."""

    path: str
    version: str
    rows: int | None = None
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    categories: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CardFacts:
    """Everything a card is made from. ``evidence`` is the gate's ``evidence.json``,
    ``window`` the window stage's ``window.json`` (batches trained on, retracted ones, where
    the held-out rows came from); ``importance`` and ``champion_importance``: feature ->
    global importance, when the evidence has them."""

    model: str
    version: str
    run_id: str
    verdict: str  # "passed" or "rejected" (the version's verdict tag)
    headline: str  # the first line of the version's description
    dataset: DatasetConfig
    decision: Decision
    training: DataSeen
    evaluation_data: DataSeen | None = None
    evaluation: Evaluation | None = None
    fairness: FairnessResult | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    window: Mapping[str, Any] = field(default_factory=dict)
    include_reference: bool = True
    git_commit: str = ""
    importance: Mapping[str, float] | None = None
    champion_importance: Mapping[str, float] | None = None


# --------------------------------------------------------------------------- numbers as text
def _num(v: Any) -> str:
    if v is None:
        return "undefined"
    x = float(v)
    return f"{x:.4f}" if math.isfinite(x) else "undefined"


def _interval(d: Mapping[str, Any] | None, signed: bool = False) -> str:
    """``0.9012 [0.8890, 0.9120]`` of an interval's JSON form; ``-`` when there is none."""
    if not d:
        return "-"
    fmt = "{:+.4f}" if signed else "{:.4f}"

    def one(key: str) -> str:
        v = d.get(key)
        x = math.nan if v is None else float(v)
        return fmt.format(x) if math.isfinite(x) else "undefined"

    if d.get("lower") is None and d.get("upper") is None:
        return one("point")
    return f"{one('point')} [{one('lower')}, {one('upper')}]"


def _rows(n: int | None) -> str:
    return "unknown" if n is None else f"{n:,}"


# --------------------------------------------------------------------------- sections
def _intended_use(f: CardFacts) -> Section:
    ds = f.dataset
    feats = ds.features
    threshold = f.evaluation.decision_threshold if f.evaluation else None
    uses: list[Block] = []
    if ds.description.strip():
        uses.append(ds.description.strip())
    decides = ""
    if threshold is not None:
        decides = f"; a score of at least {threshold:g} predicts {ds.positive_label}"
    uses.append(
        f"Scores the probability that {ds.target} is {ds.positive_label} for one record of "
        f"the {ds.name} data, from {len(feats.all)} features ({len(feats.numeric)} numeric, "
        f"{len(feats.categorical)} categorical){decides}."
    )
    if ds.sensitive:
        uses.append(f"Judged for fairness across: {', '.join(ds.sensitive)}.")
    uses.append(
        "Not judged on records outside the data it has seen nor for groups too small to "
        "judge (see Known limits): its numbers say nothing there."
    )
    return Section("Intended use", tuple(uses))


def _data(f: CardFacts) -> Section:
    w, t, e = f.window, f.training, f.evaluation_data
    batches = list(w.get("batches") or [])
    parts = (["the reference data"] if f.include_reference else []) + (
        [f"{len(batches)} accepted batch(es): {', '.join(batches)}"] if batches else []
    )
    train_text = " + ".join(parts) if parts else "unknown"
    rows: list[tuple[str, str]] = [
        ("dataset", f.dataset.name),
        ("target", f"{f.dataset.target} (positive: {f.dataset.positive_label})"),
        ("training data", t.path),
        ("training data DVC hash", t.version),
        ("training rows", _rows(t.rows)),
        ("training window", train_text),
    ]
    rows += [("left out (retracted)", f"{d}: {r}") for d, r in (w.get("retracted") or {}).items()]
    if e is not None:
        rows += [
            ("evaluation data", e.path),
            ("evaluation data DVC hash", e.version),
        ]
    ev = f.evidence
    eval_rows = ev.get("eval_rows", e.rows if e else None)
    if eval_rows is None and f.evaluation is not None:
        eval_rows = f.evaluation.n
    distinct = ev.get("distinct_eval_rows")
    held = _rows(eval_rows) + (f" ({distinct:,} distinct)" if distinct is not None else "")
    rows.append(("evaluation rows", held))
    if w.get("eval_source"):
        rows.append(("judged on", str(w["eval_source"])))
    rows += [("training run", f.run_id), ("git commit", f.git_commit or "unknown")]
    return Section("Data", (table(("what", "value"), rows),))


def _metrics(f: CardFacts) -> Section:
    ev = f.evaluation
    if ev is None:
        return Section("Metrics", ("No evaluation was recorded for this version.",))
    champ = (f.evidence.get("champion_evaluation") or {}).get("metrics") or {}
    diffs = f.evidence.get("differences") or {}
    version = f.decision.champion_version
    rows = [
        (m, _interval(i.to_dict()), _interval(champ.get(m)), _interval(diffs.get(m), True))
        for m, i in ev.metrics.items()
    ]
    head = (
        f"On {ev.n:,} held-out rows ({ev.positives:,} positive); {ev.confidence:.0%} intervals "
        f"from {ev.bootstrap_samples:,} bootstrap samples (seed {ev.seed})."
    )
    blocks: list[Block] = [head]
    if ev.note:
        blocks.append(f"Note: {ev.note}")
    champion = f"champion v{version}" if version else "champion (none yet)"
    blocks.append(table(("metric", "this version", champion, "this - champion (paired)"), rows))
    return Section("Metrics", tuple(blocks))


def _fairness(f: CardFacts) -> Section:
    fr = f.fairness
    if fr is None:
        return Section("Fairness", ("No fairness assessment was recorded for this version.",))
    intervals = f.evidence.get("fairness_intervals") or {}
    changes = f.evidence.get("fairness_changes") or {}
    blocks: list[Block] = [
        f"On {fr.n:,} held-out rows; a group is judged from {fr.min_group_size:,} rows."
    ]
    for a in fr.attributes:
        ci = intervals.get(a.attribute) or {}
        measures = tuple(
            f"{m}: {_interval(ci.get(m)) if m in ci else _num(v)}"
            + (f"; change vs champion {_interval(changes[a.attribute][m], True)}"
               if m in (changes.get(a.attribute) or {}) else "")
            for m, v in a.measures.items()
        )  # fmt: skip
        blocks += [f"{a.attribute}:", measures]
        rows = [
            (g.group, f"{g.n:,}", f"{g.positives:,}", _num(g.selection_rate), _num(g.tpr),
             _num(g.fpr))
            for g in a.groups
        ]  # fmt: skip
        rows += [(g.group, f"{g.n:,}", "-", "too small to judge", "-", "-") for g in a.too_small]
        blocks.append(table(("group", "rows", "positives", "selection rate", "TPR", "FPR"), rows))
    return Section("Fairness per group", tuple(blocks))


def _importance(f: CardFacts) -> Section:
    mine, theirs = f.importance, f.champion_importance
    if not mine and not theirs:
        return Section("Feature importance", (NOT_COMPUTED,))
    order = sorted(
        set(mine or {}) | set(theirs or {}),
        key=lambda k: (-abs(float((mine or theirs or {}).get(k, 0.0))), k),
    )
    rows = [
        (k, _num((mine or {}).get(k)) if mine else "not computed",
         _num((theirs or {}).get(k)) if theirs else "not computed")
        for k in order
    ]  # fmt: skip
    return Section(
        "Feature importance",
        ("Global importance per feature, largest first.",
         table(("feature", "this version", "champion"), rows)),
    )  # fmt: skip


def _decision(f: CardFacts) -> Section:
    d = f.decision
    champ = f"v{d.champion_version}" if d.champion_version else "none (first model)"
    rows = [
        (c.name, c.verdict + (" (waived)" if c.waived else ""),
         "" if c.value is None else str(c.value), c.threshold, c.detail)
        for c in d.checks
    ]  # fmt: skip
    return Section(
        "Decision",
        (f"{f.headline}. Decided at {d.decided_at}; champion compared: {champ}.",
         tuple(d.reasons) or ("no reasons recorded",),
         table(("check", "verdict", "value", "threshold", "reason"), rows)),
    )  # fmt: skip


def _limits(f: CardFacts) -> Section:
    items: list[str] = []
    if f.fairness is not None:
        least = f.fairness.min_group_size
        for a in f.fairness.attributes:
            if a.too_small:
                groups = ", ".join(f"{g.group} ({g.n:,})" for g in a.too_small)
                items.append(
                    f"{a.attribute}: {len(a.too_small)} group(s) too small to judge (fewer than "
                    f"{least:,} rows): {groups}"
                )
        items += [n for n in f.fairness.notes if "too small to judge" not in n]  # said above
    items += [f"fairness not judged: {x}" for x in f.evidence.get("fairness_not_judged") or []]
    for c in f.decision.checks:
        if c.verdict == "skip":
            items.append(f"check skipped: {c.name}: {c.detail}")
        elif c.verdict == "insufficient":
            need = f"; about {c.rows_needed:,} rows needed" if c.rows_needed else ""
            items.append(f"not enough evidence: {c.name}: {c.detail}{need}")
        if c.waived:
            items.append(f"check waived: {c.name} ({c.verdict}): {c.detail}")
    if f.evaluation is not None and f.evaluation.note:
        items.append(f"evaluation: {f.evaluation.note}")
    blocks: list[Block] = [tuple(items) if items else "None recorded by the gate."]
    t = f.training
    if t.ranges:
        blocks.append("Numeric data it has seen (training window):")
        blocks.append(
            table(("feature", "min", "max"),
                  [(k, f"{lo:g}", f"{hi:g}") for k, (lo, hi) in t.ranges.items()])
        )  # fmt: skip
    if t.categories:
        blocks.append("Categories it has seen (training window):")
        blocks.append(table(("feature", "categories"), sorted(t.categories.items())))
    return Section("Known limits", tuple(blocks))


def build_card(f: CardFacts) -> CardText:
    """The card of one registered version, laid out for :mod:`.card_render`."""
    return CardText(
        title=f"Model card: {f.model} v{f.version}",
        verdict=f.verdict,
        headline=f.headline,
        sections=(
            _intended_use(f),
            _data(f),
            _metrics(f),
            _fairness(f),
            _importance(f),
            _decision(f),
            _limits(f),
        ),
    )


def importance_of(value: Any) -> dict[str, float] | None:
    """feature -> importance from the evidence's JSON form: numbers, or intervals (their
    point); None when there is nothing (not computed)."""
    if not isinstance(value, Mapping) or not value:
        return None
    out: dict[str, float] = {}
    for k, v in value.items():
        x = v.get("point", v.get("mean")) if isinstance(v, Mapping) else v
        if isinstance(x, int | float) and not isinstance(x, bool):
            out[str(k)] = float(x)
    return out or None


def importances(
    evidence: Mapping[str, Any],
) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """(challenger's, champion's) feature importance from the gate's evidence: its
    ``feature_importance`` (feature -> value, or ``{"challenger": ..., "champion": ...}``) and
    ``champion_feature_importance``; each None when absent."""
    raw = evidence.get("feature_importance")
    mine, theirs = raw, evidence.get("champion_feature_importance")
    if isinstance(raw, Mapping) and ("challenger" in raw or "champion" in raw):
        mine, theirs = raw.get("challenger"), raw.get("champion", theirs)
    return importance_of(mine), importance_of(theirs)
