"""The gate's feature-importance comparison: both models explained on the same rows, a changed
ranking flagged as a warning that never changes the verdict, and the report's section."""

from __future__ import annotations

import pytest

from pipelines.config import Bound, GateConfig
from pipelines.records import Interval
from pipelines.serve.fastpath import CompiledScorer
from pipelines.serve.model import ServingSpec
from pipelines.stages.gate import Evidence, decide, render_markdown
from pipelines.stages.gate.importance import (
    CHECK_NAME,
    add_to_reports,
    compare_importance,
    importance_html,
    importance_markdown,
    importance_of,
    with_importance,
)

CFG = GateConfig(metrics={"roc_auc": Bound(min=0.85)}, non_inferiority_metric="roc_auc")
GOOD = {"roc_auc": Interval(0.90, 0.89, 0.91)}
CHAMPION = {"age": 0.9, "hours": 0.5, "education": 0.3, "sex": 0.1}


@pytest.fixture(scope="module")
def importances(prefit, adult_current, params) -> dict[str, dict[str, float]]:
    spec = ServingSpec.from_params(params)
    rows = adult_current.sample(300, random_state=0)
    out = {}
    for key, model in prefit.items():
        imp = importance_of(CompiledScorer(model, spec.fields), rows)
        assert imp is not None
        out[key] = imp
    return out


def test_both_models_are_explained_on_the_same_rows(importances, params):
    a, b = importances["a"], importances["b"]
    names = set(ServingSpec.from_params(params).fields.names)
    assert set(a) == set(b) == names
    assert list(a.values()) == sorted(a.values(), reverse=True)
    assert all(v >= 0 for v in a.values()) and max(a.values()) > 0
    cmp = compare_importance(b, a, 0.9, 300)
    assert cmp.ndcg is not None and 0 < cmp.ndcg <= 1
    assert compare_importance(a, a, 0.9, 300).ndcg == pytest.approx(1.0)


@pytest.mark.parametrize("passed", [True, False])
def test_a_changed_ranking_is_a_warning_that_never_changes_the_verdict(passed):
    metrics = GOOD if passed else {"roc_auc": Interval(0.80, 0.79, 0.81)}
    d = decide(Evidence(metrics=metrics, fairness={}), CFG)
    reordered = {"sex": 0.9, "education": 0.5, "hours": 0.3, "age": 0.1}
    flagged = with_importance(d, compare_importance(reordered, CHAMPION, 0.9, 500))
    assert flagged.verdict == d.verdict and flagged.checks[: len(d.checks)] == d.checks
    check = flagged.checks[-1]
    assert check.name == CHECK_NAME and check.verdict == "info" and check.value < 0.9
    assert "age 1->4" in check.detail
    assert len(flagged.reasons) == len(d.reasons) + 1
    assert "not blocking" in flagged.reasons[-1]
    same = with_importance(d, compare_importance(dict(CHAMPION), CHAMPION, 0.9, 500))
    assert same.reasons == d.reasons and same.checks[-1].value == pytest.approx(1.0)
    md = render_markdown(flagged) + importance_markdown(
        compare_importance(reordered, CHAMPION, 0.9, 500)
    )
    assert "changed ranking (warning, not blocking)" in md
    assert "| age | 0.1000 (#4) | 0.9000 (#1) |" in md


def test_without_a_champion_nothing_is_compared():
    cmp = compare_importance(CHAMPION, None, 0.9, 500)
    assert cmp.ndcg is None and not cmp.flagged and "no champion" in cmp.note
    d = with_importance(decide(Evidence(metrics=GOOD, fairness={}), CFG), cmp)
    assert d.checks[-1].value is None and "no champion" in d.checks[-1].detail
    assert "Ranking not compared" in importance_markdown(cmp)
    assert "<td>age</td>" in importance_html(cmp)


def test_the_written_reports_carry_the_section(params, tmp_path):
    from pipelines.stages.gate.stage import write_decision

    reordered = {"sex": 0.9, "education": 0.5, "hours": 0.3, "age": 0.1}
    cmp = compare_importance(reordered, CHAMPION, 0.9, 500)
    d = with_importance(decide(Evidence(metrics=GOOD, fairness={}), CFG), cmp)
    files = write_decision(d, params.paths, tmp_path)
    add_to_reports(files, cmp)
    md, page = files["markdown"].read_text(), files["html"].read_text()
    assert md.index("## Checks") < md.index("## Feature importance")
    assert "| sex | 0.9000 (#1) | 0.1000 (#4) |" in md
    assert page.index("Feature importance") < page.index("</body>")
    assert "<td>sex</td><td>0.9000 (#1)</td><td>0.1000 (#4)</td>" in page
    assert "importance nDCG" in files["json"].read_text()


def test_both_importances_reach_the_model_card_through_the_evidence(tmp_path):
    import json

    from pipelines.release.card import importances as card_importances
    from pipelines.stages.gate.importance import record_importance

    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps({"rows": 10}))
    challenger = {"age": 0.2, "hours": 0.8, "education": 0.3, "sex": 0.1}
    record_importance(evidence, compare_importance(challenger, CHAMPION, 0.9, 1000))
    data = json.loads(evidence.read_text())
    assert data["rows"] == 10  # the rest of the evidence is kept
    assert card_importances(data) == (challenger, CHAMPION)
    record_importance(evidence, compare_importance(challenger, None, 0.9, 1000))
    assert card_importances(json.loads(evidence.read_text())) == (challenger, None)
