"""The model card (issue 18): a pure renderer, evidence in, Markdown and HTML out.

The evidence is real: an evaluation and a fairness assessment measured on a few hundred
synthetic scored rows (nothing trained), a gate decision with a skipped check and one
without enough evidence. Some values are hostile (a group, a feature, a reason and the
description carrying markup): in the HTML every one of them is text, never a tag.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.release.card import (
    NOT_COMPUTED,
    CardFacts,
    DataSeen,
    build_card,
    importance_of,
    importances,
)
from pipelines.release.card_render import render_html, render_markdown
from pipelines.stages.gate import Decision
from pipelines.stages.gate.rules import Check

HOSTILE_GROUP = "<script>alert('group')</script>"
HOSTILE_FEATURE = "<img src=x onerror=alert(1)>"
HOSTILE_REASON = "roc_auc <b>0.60</b> below | 0.80"
AT = "2026-03-01T02:00:00+00:00"
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "ul", "li"}
ALLOWED_TAGS |= {"table", "tr", "th", "td"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs |= {name for name, _ in attrs}

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def measured(params) -> dict[str, Any]:
    """An evaluation and a fairness assessment of 400 scored rows; one group of 12 rows."""
    from pipelines.stages.evaluate import evaluate_scores
    from pipelines.stages.fairness import assess_fairness

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    proba = np.clip(0.6 * y + rng.normal(0.2, 0.25, 400), 0, 1)
    groups = np.array(["a"] * 200 + ["b"] * 188 + [HOSTILE_GROUP] * 12)
    cfg = params.evaluate.model_copy(update={"bootstrap_samples": 50})
    evaluation = evaluate_scores(y, proba, cfg)
    sensitive = pd.DataFrame({"sex": groups})
    fair_cfg = params.fairness.model_copy(update={"min_group_size": 30})
    fairness = assess_fairness(y, (proba >= 0.5).astype(int), sensitive, fair_cfg)
    return {"evaluation": evaluation, "fairness": fairness}


def _facts(params, measured, **change: Any) -> CardFacts:
    decision = Decision(
        "fail", (HOSTILE_REASON, "f1 not shown >= 0.5"),
        (Check("roc_auc", "metric", "fail", "0.60", ">= 0.80", HOSTILE_REASON),
         Check("f1", "metric", "insufficient", "0.50", ">= 0.5", "f1 straddles 0.5", 900),
         Check("roc_auc vs champion", "comparison", "skip", None, "",
               "no champion yet: only absolute checks apply")),
        None, AT,
    )  # fmt: skip
    dataset = params.dataset.model_copy(
        update={"description": "Records of people. </p><script>alert('desc')</script>"}
    )
    evidence = {
        "fairness_intervals": {
            "sex": {"demographic_parity_difference": {"point": 0.12, "lower": 0.08, "upper": 0.16}}
        },
        "eval_rows": 400,
        "distinct_eval_rows": 398,
        "fairness_not_judged": ["sex: equalized odds: too few positives"],
    }
    base: dict[str, Any] = dict(
        model="screens-model", version="7", run_id="r123", verdict="rejected",
        headline=f"REJECTED by the gate: {HOSTILE_REASON}", dataset=dataset, decision=decision,
        training=DataSeen("data/window/train.parquet", "0123abcd" * 4, 32561,
                          {"age": (17.0, 90.0), HOSTILE_FEATURE: (0.0, 1.5)}, {"workclass": 8}),
        evaluation_data=DataSeen("data/window/eval.parquet", "feedbeef" * 4),
        evaluation=measured["evaluation"], fairness=measured["fairness"], evidence=evidence,
        window={"batches": ["2026-02-27", "2026-02-28"], "retracted": {"2026-02-26": "mislabelled"},
                "eval_source": "held-out part of batch 2026-02-28"},
        git_commit="abc123",
    )  # fmt: skip
    return CardFacts(**(base | change))


def test_the_card_says_the_verdict_first_and_every_section(params, measured):
    md = render_markdown(build_card(_facts(params, measured)))
    lines = md.splitlines()
    assert lines[0] == "# Model card: screens-model v7"
    assert lines[2].startswith("**REJECTED by the gate: roc_auc <b>0.60</b> below")
    titles = [x[3:] for x in lines if x.startswith("## ")]
    assert titles == ["Intended use", "Data", "Metrics", "Fairness per group",
                      "Feature importance", "Decision", "Known limits"]  # fmt: skip


def test_the_card_has_the_data_lineage(params, measured):
    md = render_markdown(build_card(_facts(params, measured)))
    assert "| training data DVC hash | " + "0123abcd" * 4 + " |" in md
    assert "| evaluation data DVC hash | " + "feedbeef" * 4 + " |" in md
    assert "| training rows | 32,561 |" in md
    assert "the reference data + 2 accepted batch(es): 2026-02-27, 2026-02-28" in md
    assert "| left out (retracted) | 2026-02-26: mislabelled |" in md
    assert "| evaluation rows | 400 (398 distinct) |" in md
    assert "| judged on | held-out part of batch 2026-02-28 |" in md
    assert "Records of people." in md  # the params' description: intended use


def test_metrics_carry_their_intervals(params, measured):
    ev = measured["evaluation"]
    md = render_markdown(build_card(_facts(params, measured)))
    auc = ev.metrics["roc_auc"]
    assert f"| roc_auc | {auc.point:.4f} [{auc.lower:.4f}, {auc.upper:.4f}] | - | - |" in md
    assert "95% intervals from 50 bootstrap samples" in md
    diff = {"point": 0.01, "lower": -0.004, "upper": 0.02}
    champ = {"champion_evaluation": {"metrics": {"roc_auc": auc.to_dict()}},
             "differences": {"roc_auc": diff}}  # fmt: skip
    md = render_markdown(build_card(_facts(params, measured, evidence=champ)))
    assert "+0.0100 [-0.0040, +0.0200]" in md


def test_fairness_shows_every_group_with_its_size(params, measured):
    fr = measured["fairness"]
    md = render_markdown(build_card(_facts(params, measured)))
    a = fr.attribute("sex")
    for g in a.groups:
        assert f"| {g.group} | {g.n:,} | {g.positives:,} | {g.selection_rate:.4f} |" in md
    assert {g.n for g in a.groups} == {200, 188}
    assert f"| {HOSTILE_GROUP} | 12 | - | too small to judge |" in md
    assert "demographic_parity_difference: 0.1200 [0.0800, 0.1600]" in md


def test_known_limits_name_small_groups_skipped_checks_and_ranges(params, measured):
    md = render_markdown(build_card(_facts(params, measured)))
    limits = md.split("## Known limits", 1)[1]
    small = f"- sex: 1 group(s) too small to judge (fewer than 30 rows): {HOSTILE_GROUP} (12)"
    assert small in limits and limits.count(HOSTILE_GROUP) == 1  # said once
    assert "- check skipped: roc_auc vs champion: no champion yet" in limits
    assert "- not enough evidence: f1: f1 straddles 0.5; about 900 rows needed" in limits
    assert "- fairness not judged: sex: equalized odds: too few positives" in limits
    assert "| age | 17 | 90 |" in limits and "| workclass | 8 |" in limits


def test_importance_is_rendered_when_given_and_said_missing_when_not(params, measured):
    md = render_markdown(build_card(_facts(params, measured)))
    assert md.split("## Feature importance", 1)[1].split("##")[0].strip() == NOT_COMPUTED
    given = {"age": 0.02, "hours-per-week": 0.11, HOSTILE_FEATURE: -0.3}
    md = render_markdown(build_card(_facts(params, measured, importance=given)))
    section = md.split("## Feature importance", 1)[1].split("## ")[0]
    rows = [x for x in section.splitlines() if x.startswith("| ") and "feature" not in x]
    assert [r.split(" | ")[0][2:] for r in rows] == [HOSTILE_FEATURE, "hours-per-week", "age"]
    assert "| hours-per-week | 0.1100 | not computed |" in section
    both = render_markdown(
        build_card(_facts(params, measured, importance=given, champion_importance={"age": 0.5}))
    )
    assert "| age | 0.0200 | 0.5000 |" in both and "| hours-per-week | 0.1100 | undefined |" in both


def test_html_escapes_every_value(params, measured):
    facts = _facts(params, measured, importance={HOSTILE_FEATURE: 0.3})
    page = render_html(build_card(facts))
    parsed = _Tags()
    parsed.feed(page)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS  # no script, no img
    assert parsed.attrs <= {"charset", "style"}  # no onerror
    text = "".join(parsed.text)
    for value in (HOSTILE_GROUP, HOSTILE_FEATURE, HOSTILE_REASON, "<script>alert('desc')"):
        assert value in text  # shown as text, every one
    assert "&lt;script&gt;alert(&#x27;group&#x27;)&lt;/script&gt;" in page


def test_markdown_tables_keep_their_columns(params, measured):
    md = render_markdown(build_card(_facts(params, measured)))
    row = next(x for x in md.splitlines() if x.startswith("| roc_auc | fail |"))
    assert "roc_auc <b>0.60</b> below \\| 0.80" in row
    assert row.replace("\\|", "").count("|") == 6  # five columns


def test_importance_is_read_from_the_evidence_in_its_json_forms():
    assert importances({}) == (None, None)
    assert importances({"feature_importance": {"age": 0.1}}) == ({"age": 0.1}, None)
    split = {"feature_importance": {"challenger": {"age": {"point": 0.2, "lower": 0.1}},
                                    "champion": {"age": 0.3}}}  # fmt: skip
    assert importances(split) == ({"age": 0.2}, {"age": 0.3})
    assert importance_of({"age": "high", "x": True}) is None  # nothing numeric: not computed


def test_the_card_is_copied_to_the_night(tmp_path, params):
    from pipelines.paths import CardOut
    from pipelines.release.card_files import copy_card

    src, dst = CardOut(tmp_path / "register"), CardOut(tmp_path / "nights" / "2026-03-01")
    assert copy_card(src, dst) == []  # no card: nothing copied
    src.folder.mkdir()
    src.markdown.write_text("# card\n")
    src.html.write_text("<p>card</p>\n")
    assert copy_card(src, dst) == [dst.markdown, dst.html]
    assert dst.html.read_text() == "<p>card</p>\n"
