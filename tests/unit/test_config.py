"""params.yaml parsing: one clear error naming the key for every kind of mistake."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipelines.config import ConfigError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(path: str, value, delete: bool = False) -> dict:
    raw = copy.deepcopy(RAW)
    *parents, leaf = path.split(".")
    node = raw
    for p in parents:
        node = node[p]
    if delete:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


def test_project_params_load_frozen(params):
    assert params.dataset.target == "income"
    assert params.validate.suite == "adult"
    assert set(params.dataset.sensitive) == {"sex", "race"}
    with pytest.raises(ValidationError):
        params.train.seed = 1  # frozen


@pytest.mark.parametrize(
    "path,value,expected",
    [
        ("train.sed", 1, "unknown key 'train.sed'"),
        ("bogus", 1, "unknown key 'bogus'"),
        ("train.seed", "forty-two", "key 'train.seed'"),
        ("evaluate.bootstrap_samples", 3, "key 'evaluate.bootstrap_samples'"),
        ("evaluate.confidence", 1.5, "key 'evaluate.confidence'"),
        ("train.classifier", "xgboost", "key 'train.classifier'"),
        ("drift.numeric_method", "magic", "key 'drift.numeric_method'"),
        (
            "gate.metrics",
            {"roc_auc": {"minimum": 0.8}},
            "unknown key 'gate.metrics.roc_auc.minimum'",
        ),
        ("gate.metrics", {"auc": {"min": 0.8}}, "gate.metrics.auc"),
        ("validate.suite", "../escape", "key 'validate.suite'"),
        ("dataset.description", ["a", "list"], "key 'dataset.description'"),
        ("dataset.description", "x" * 2001, "key 'dataset.description'"),
        ("deploy.canary.method", "peek", "key 'deploy.canary.method'"),
        ("deploy.replicas", 0, "key 'deploy.replicas': Input should be greater than or equal"),
        ("deploy.replicas", 17, "key 'deploy.replicas': Input should be less than or equal"),
        ("deploy.replicas", "2", "key 'deploy.replicas': Input should be a valid integer"),
        ("deploy.replicas", 1.5, "key 'deploy.replicas'"),
        ("monitor.estimated.max_drop", -0.1, "key 'monitor.estimated.max_drop'"),
        ("monitor.estimated.draws", 10, "key 'monitor.estimated.draws'"),
        ("monitor.estimated.retrain", "sometimes", "key 'monitor.estimated.retrain'"),
        ("monitor.estimated.max_dorp", 0.1, "unknown key 'monitor.estimated.max_dorp'"),
    ],
)
def test_bad_key_is_named(path, value, expected):
    with pytest.raises(ConfigError) as err:
        parse_params(with_change(path, value), source="params.yaml")
    assert expected in str(err.value)
    assert "params.yaml" in str(err.value)


def test_missing_required_section_is_named():
    with pytest.raises(ConfigError, match="missing key 'mlflow'"):
        parse_params(with_change("mlflow", None, delete=True))


def test_unknown_hyperparameter_names_it():
    raw = with_change("train.hyperparameters", {"max_itre": 10})
    with pytest.raises(ConfigError, match="max_itre"):
        parse_params(raw)


def test_feature_not_in_columns_is_named():
    raw = copy.deepcopy(RAW)
    raw["dataset"]["features"]["numeric"].append("salary")
    with pytest.raises(ConfigError, match="salary"):
        parse_params(raw)


def test_target_as_feature_rejected():
    raw = copy.deepcopy(RAW)
    raw["dataset"]["features"]["categorical"].append("income")
    with pytest.raises(ConfigError, match="target 'income' is also listed as a feature"):
        parse_params(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(bad)


def test_relative_paths_resolve_against_params_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # it would win over the file
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(RAW))
    params = load_params(p)
    assert params.paths.data == tmp_path / "data"
    assert params.paths.suite == tmp_path / "expectations" / "adult.json"
    assert params.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"


def test_env_overrides_tracking_uri(monkeypatch, params):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert params.tracking_uri == "http://127.0.0.1:5000"


def test_pointing_mlflow_at_a_workspace_leaves_the_environment_alone(tmp_path, monkeypatch):
    """Two workspaces in one process: the first one's tracking URI must not become an
    environment override for the second (mlflow.set_tracking_uri exports the variable)."""
    from pipelines.edges.tracking import point_at

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    point_at(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    p = tmp_path / "b" / "params.yaml"
    p.parent.mkdir()
    p.write_text(yaml.safe_dump(RAW))
    assert load_params(p).tracking_uri == f"sqlite:///{tmp_path / 'b'}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    point_at("sqlite:///elsewhere.db")
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://tracking:5000"


@pytest.mark.parametrize(
    "path,value,expected",
    [
        (
            "gate.metrics",
            {"roc_auc": {"min": 1.5}},
            "key 'gate.metrics.roc_auc.min': 1.5 is outside",
        ),
        ("gate.metrics", {"ece": {"max": -0.1}}, "key 'gate.metrics.ece.max'"),
        ("gate.metrics", {"log_loss": {"max": -1}}, "key 'gate.metrics.log_loss.max'"),
        (
            "gate.fairness",
            {"demographic_parity_difference": {"max": 3.0}},
            "key 'gate.fairness.demographic_parity_difference.max': 3 is outside",
        ),
        (
            "gate.fairness",
            {"disparate_impact_ratio": {"min": -0.2}},
            "key 'gate.fairness.disparate_impact_ratio.min'",
        ),
        (
            "gate.metrics",
            {"f1": {"min": 0.9, "max": 0.8}},
            "key 'gate.metrics.f1.min': 0.9 is greater than max 0.8",
        ),
        ("dataset.sensitive", ["sex", "income"], "key 'dataset.sensitive': 'income' is the target"),
        ("dataset.sensitive", ["sex", "sex"], "key 'dataset.sensitive': listed twice: ['sex']"),
    ],
)
def test_impossible_setting_is_refused_in_one_line_naming_the_key(path, value, expected):
    with pytest.raises(ConfigError) as err:
        parse_params(with_change(path, value), source="params.yaml")
    assert expected in str(err.value)
    assert str(err.value).count("\n") == 0


def test_feature_listed_twice_is_named():
    raw = copy.deepcopy(RAW)
    raw["dataset"]["features"]["numeric"].append("age")
    with pytest.raises(ConfigError, match=r"key 'dataset.features.numeric': listed twice"):
        parse_params(raw)


def test_bounds_inside_their_range_are_accepted():
    raw = with_change("gate.metrics", {"roc_auc": {"min": 0.0, "max": 1.0}, "log_loss": {"max": 9}})
    raw["gate"]["fairness"] = {"disparate_impact_ratio": {"min": 0.8}}
    gate = parse_params(raw).gate
    assert gate.metrics["roc_auc"].max == 1.0 and gate.fairness["disparate_impact_ratio"].min == 0.8
