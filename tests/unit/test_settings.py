"""The environment settings: one typed table, read in one place, documented from that table."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.settings import SETTINGS, Settings, SettingsError, markdown_table, settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_any_variable():
    s = settings({})
    assert s == Settings()
    assert (s.schedule, s.retries, s.approval_window_hours) == ("0 2 * * *", 2, 24.0)
    assert s.params is None and s.image_tag == "local"


def test_values_are_typed():
    s = settings(
        {
            "RETRAIN_PARAMS": "~/ws/params.yaml",
            "RETRAIN_RETRIES": "5",
            "RETRAIN_APPROVAL_WINDOW_HOURS": "1.5",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        }
    )
    assert s.params == Path.home() / "ws" / "params.yaml"
    assert (s.retries, s.approval_window_hours) == (5, 1.5)
    assert s.mlflow_tracking_uri == "http://mlflow:5000"


@pytest.mark.parametrize(
    "env,message",
    [
        ({"RETRAIN_RETRIES": "two"}, "RETRAIN_RETRIES='two': not a valid int"),
        ({"RETRAIN_APPROVAL_WINDOW_HOURS": "-1"}, "RETRAIN_APPROVAL_WINDOW_HOURS='-1': must not"),
    ],
)
def test_a_wrong_value_names_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        settings(env)


def test_the_serving_token_never_shows_in_a_repr():
    s = settings({"RETRAIN_SERVE_TOKEN": "s3cret-token"})
    assert s.serve_token == "s3cret-token" and "s3cret" not in repr(s)


def test_every_field_is_in_the_table_and_the_table_is_documented():
    names = {f"RETRAIN_{f.upper()}" for f in Settings.__dataclass_fields__} - {
        "RETRAIN_MLFLOW_TRACKING_URI"
    }
    assert names | {"MLFLOW_TRACKING_URI"} == set(SETTINGS)
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert markdown_table() in docs, "docs/operations.md#settings is not the table of settings.py"


def test_no_module_reads_a_setting_from_the_environment_itself():
    wrong = []
    for path in sorted((ROOT / "pipelines").rglob("*.py")) + sorted((ROOT / "dags").glob("*.py")):
        if path.name == "settings.py":
            continue
        # saving a variable to put it back (edges/tracking.py) is not reading a setting
        text = path.read_text().replace('before = os.environ.get("', "")
        for env in SETTINGS:
            if f'environ.get("{env}"' in text or f'getenv("{env}"' in text:
                wrong.append(f"{path.relative_to(ROOT)}: {env}")
    assert not wrong, wrong
