"""What MLflow shows a user of a challenger (issue 16): read back through the client.

A real SQLite registry in a temporary folder, the session's prefit models (nothing trained):
the training run carries its data as dataset inputs and a name saying what it is; after
``register`` it carries the held-out metrics with their bounds, fairness per attribute, the
gate's verdict and checks; the registered version's description starts with the verdict, a
rejected one is tagged and described as rejected, and its ``gate.report`` names an artifact the
run has; each version's model card (issue 18) is an artifact of its run, linked from the
description. Links use the address a browser reaches, never a password.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Params
from pipelines.edges import registry, tracking
from pipelines.stages.gate import Decision
from pipelines.stages.gate.rules import Check
from tests.support import screens
from tests.support.registry import make_params

AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC).isoformat()
UI = "https://mlflow.example.org"
EVIDENCE = {
    "fairness_intervals": {
        "sex": {"demographic_parity_difference": {"point": 0.12, "lower": 0.08, "upper": 0.16}},
        "sex x race": {"disparate_impact_ratio": {"point": 0.7, "lower": None, "upper": 0.9}},
    },
    "differences": {"roc_auc": {"point": 0.01, "lower": -0.004, "upper": 0.02}},
}


@pytest.fixture(scope="module")
def judged(tmp_path_factory, prefit, adult_reference) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("RETRAIN_MLFLOW_UI_URL", raising=False)
        root = tmp_path_factory.mktemp("screens")
        mp.setenv("RETRAIN_SIGNING_KEY", str(root / "keys" / "signing.key"))
        params = make_params(root / "ws", "screens-test")
        ok = Decision(
            "pass", ("roc_auc 0.90 [0.88, 0.92] >= 0.80", "no champion yet"),
            (Check("roc_auc", "metric", "pass", "0.90", ">= 0.80", "ok"),
             Check("parity (sex) vs champion", "fairness_regression", "pass", 0.0, "<= 0.03",
                   "ok"),
             Check("group size", "fairness", "skip", None, "", "sex: 3 rows"),
             Check("group size", "fairness", "skip", None, "", "race: 2 rows")), None, AT,
        )  # fmt: skip
        bad = Decision(
            "fail", ("roc_auc 0.60 [0.55, 0.65] below 0.80", "f1 not shown >= 0.5"),
            (Check("roc_auc", "metric", "fail", "0.60", ">= 0.80", "low"),
             Check("f1", "metric", "insufficient", "0.50", ">= 0.5", "?", 900)),
            None, AT,
        )  # fmt: skip
        first = screens.log_run(
            params, prefit["a"], adult_reference, "challenger 2026-03-01 (adult)"
        )
        screens.assess(params, prefit["a"], adult_reference)
        reg_ok = screens.judge(
            params, first, ok, screens.evaluation(params, prefit["a"], adult_reference), EVIDENCE
        )
        second = screens.log_run(
            params, prefit["b"], adult_reference, "challenger 2026-03-02 (adult)"
        )
        mp.setenv("RETRAIN_MLFLOW_UI_URL", UI)  # the second one's links: a public address
        reg_bad = screens.judge(
            params, second, bad, screens.evaluation(params, prefit["b"], adult_reference), EVIDENCE
        )
        yield {"params": params, "ok": (first, reg_ok), "bad": (second, reg_bad)}


def _client(params: Params) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(params.tracking_uri, params.tracking_uri)


def test_the_run_shows_the_evaluation_fairness_and_verdict(judged):
    params = judged["params"]
    run = _client(params).get_run(judged["ok"][0]["run_id"])
    m, tags = run.data.metrics, run.data.tags
    assert run.info.run_name == "challenger 2026-03-01 (adult)"
    for metric in ("roc_auc", "accuracy", "f1"):
        assert m[f"{metric}_lower"] <= m[metric] <= m[f"{metric}_upper"]
    assert m["fairness.sex.demographic_parity_difference_upper"] == 0.16
    assert m["fairness.sex x race.disparate_impact_ratio"] == 0.7
    assert "fairness.sex x race.disparate_impact_ratio_lower" not in m  # undefined: left out
    assert m["vs_champion.roc_auc_lower"] == -0.004
    assert (m["gate_passed"], m["gate_failed_checks"], m["gate_checks"]) == (1.0, 0.0, 4.0)
    assert tags["gate"] == "pass" and tags["release.plan"] == "promote"
    assert tags["gate.check.roc_auc"] == "pass 0.90 (>= 0.80)"
    assert tags["gate.check.parity sex vs champion"] == "pass 0.0 (<= 0.03)"
    assert tags["gate.check.group size"] == tags["gate.check.group size 2"] == "skip"

    bad = _client(params).get_run(judged["bad"][0]["run_id"])
    assert bad.data.metrics["gate_passed"] == 0.0
    assert bad.data.metrics["gate_failed_checks"] == 1.0
    assert bad.data.metrics["gate_insufficient_checks"] == 1.0
    assert bad.data.tags["gate"] == "fail" and bad.data.tags["release.plan"] == "reject"


def test_the_run_has_its_data_as_dataset_inputs(judged):
    params = judged["params"]
    run = _client(params).get_run(judged["ok"][0]["run_id"])
    tags = {d.dataset.name: {t.key: t.value for t in d.tags} for d in run.inputs.dataset_inputs}
    inputs = {
        tags[d.dataset.name]["mlflow.data.context"]: d.dataset for d in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "evaluation"}
    assert tags["adult-training"]["rows"] == "300" and tags["adult-evaluation"]["rows"] == "200"
    from pipelines.edges.lineage import data_version

    assert inputs["training"].digest == data_version(params.paths.window_train)
    assert inputs["training"].name == "adult-training"
    assert "age" in inputs["training"].schema


def test_versions_say_their_verdict_and_link_the_gate_report(judged):
    params = judged["params"]
    c = _client(params)
    name = params.mlflow.registered_model
    rec, reg = judged["ok"]
    mv = c.get_model_version(name, reg.version)
    assert mv.description.startswith("PASSED the gate: promoted to champion")
    assert "- roc_auc 0.90 [0.88, 0.92] >= 0.80" in mv.description
    assert mv.tags["verdict"] == "passed"
    report = mv.tags["gate.report"]
    assert report == f"runs:/{rec['run_id']}/gate/report.md" and report in mv.description
    assert "mlflow ui --backend-store-uri" in mv.description  # no server: how to open it
    assert "report.md" in {Path(f.path).name for f in c.list_artifacts(rec["run_id"], "gate")}

    rec, reg = judged["bad"]
    mv = c.get_model_version(name, reg.version)
    assert mv.description.startswith("REJECTED by the gate: roc_auc 0.60 [0.55, 0.65] below")
    assert mv.tags["verdict"] == "rejected" and mv.tags["status"] == "rejected"
    assert registry.alias_version(c, name, registry.CHAMPION) == judged["ok"][1].version


def test_experiments_open_on_their_runs(judged):
    params = judged["params"]
    exp = _client(params).get_experiment_by_name(params.mlflow.experiment)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.parametrize(
    "ui,uri,expected",
    [
        (None, "http://u:secret@mlflow:5000", "http://u:***@mlflow:5000/#/experiments/1/runs/r"),
        ("http://localhost:5001/", "http://mlflow:5000", "http://localhost:5001/#/experiments/"),
        (None, "sqlite:////x/mlflow.db", "`mlflow ui --backend-store-uri sqlite:////x/mlflow.db`"),
    ],
)
def test_links_use_the_address_a_browser_reaches(monkeypatch, params, ui, uri, expected):
    if ui:
        monkeypatch.setenv("RETRAIN_MLFLOW_UI_URL", ui)
    else:
        monkeypatch.delenv("RETRAIN_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from pipelines.edges.notify import mlflow_link

    link = tracking.run_url(params, "1", "r")
    assert link.startswith(expected) and "secret" not in link
    assert expected in mlflow_link(uri, "1", "r") and "secret" not in mlflow_link(uri, "1", "r")
    if ui:  # the compose-internal host name is never shown
        assert "mlflow:5000" not in link and "mlflow:5000" not in mlflow_link(uri, "1", "r")


def test_the_pipeline_summary_links_the_challenger_run(judged, monkeypatch):
    from pipelines.files import write_json
    from pipelines.night.summary import pipeline_summary

    params = judged["params"]
    rec = judged["ok"][0]
    write_json(params.paths.train_record, rec)
    monkeypatch.setenv("RETRAIN_MLFLOW_UI_URL", "http://localhost:5001")
    line = next(x for x in pipeline_summary(params).splitlines() if x.startswith("mlflow"))
    assert line.endswith(f"http://localhost:5001/#/experiments/{rec['experiment_id']}/runs/"
                         f"{rec['run_id']}")  # fmt: skip


def test_a_night_run_has_its_numbers_and_a_name(judged, tmp_path):
    from pipelines.edges.notify import publish_night
    from pipelines.records import BatchDrift, BatchValidation, GateSummary, NightRecord

    params = judged["params"]
    night = NightRecord(
        date="2026-03-02", started_at=AT, reports=str(tmp_path), outcome="not_promoted",
        rows=812, validation=BatchValidation(success=True, evaluated=24, warned=["x"]),
        drift=BatchDrift(dataset_drift=False, share=0.25, drifted_columns=["age", "hours"]),
        retrained=True, gate=GateSummary(verdict="fail", reasons=["roc_auc below 0.80"]),
        serving="1", seconds=61.5,
    )  # fmt: skip
    links = publish_night(params, night)
    c = _client(params)
    exp = c.get_experiment_by_name(f"{params.mlflow.experiment}-nights")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = c.search_runs([exp.experiment_id])
    assert run.info.run_name == "night 2026-03-02" and run.data.tags["outcome"] == "not_promoted"
    m = run.data.metrics
    assert (m["rows"], m["drift_share"], m["drifted_columns"]) == (812.0, 0.25, 2.0)
    assert (m["gate_passed"], m["promoted"], m["warned_expectations"]) == (0.0, 0.0, 1.0)
    assert run.info.run_id in links["night_run"]


def test_each_version_has_its_model_card_on_its_run(judged, adult_reference, tmp_path):
    from pipelines.edges.lineage import data_version

    params = judged["params"]
    c = _client(params)
    name = params.mlflow.registered_model
    rec, reg = judged["ok"]
    mv = c.get_model_version(name, reg.version)
    assert f"Model card: runs:/{rec['run_id']}/model_card/model_card.html" in mv.description
    files = {Path(f.path).name for f in c.list_artifacts(rec["run_id"], "model_card")}
    assert files == {"model_card.md", "model_card.html"}
    folder = Path(c.download_artifacts(rec["run_id"], "model_card", str(tmp_path)))
    md = (folder / "model_card.md").read_text()
    assert md.startswith(f"# Model card: {name} v{reg.version}\n\n"
                         "**PASSED the gate: promoted to champion**")  # fmt: skip
    assert f"| training data DVC hash | {data_version(params.paths.window_train)} |" in md
    assert "| training rows | 300 |" in md and "| evaluation rows | " in md
    assert "| training window | the reference data + 1 accepted batch(es): 2026-02-28 |" in md
    sizes = adult_reference.tail(200)["sex"].value_counts()
    for group, n in sizes.items():  # every group of the evaluation rows, with its size
        assert f"| {group} | {n:,} |" in md
    assert "- check skipped: group size: sex: 3 rows" in md
    assert "## Feature importance\n\nNot computed for this version." in md
    html = (folder / "model_card.html").read_text()
    assert "PASSED the gate: promoted to champion" in html

    rec, reg = judged["bad"]
    mv = c.get_model_version(name, reg.version)
    link = (f"{UI}/#/experiments/{rec['experiment_id']}/runs/{rec['run_id']}/artifacts/"
            "model_card/model_card.html")  # fmt: skip
    assert link in mv.description
    folder = Path(c.download_artifacts(rec["run_id"], "model_card", str(tmp_path / "bad")))
    assert (
        "**REJECTED by the gate: roc_auc 0.60 [0.55, 0.65] below 0.80**"
        in (folder / "model_card.md").read_text()
    )
