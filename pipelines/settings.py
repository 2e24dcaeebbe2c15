"""Every environment setting (``RETRAIN_*`` and ``MLFLOW_TRACKING_URI``), read in one place.

:data:`SETTINGS` is the one table of them: name, type, default and what it does; the
documentation's table is made from it (``docs/operations.md#settings``, checked by a test).
:func:`settings` reads the environment into a typed, frozen :class:`Settings`; a value of the
wrong type is a :class:`SettingsError` that names the variable. Secrets are kept out of
``repr``.

Standard library only: the serving image (which has no pydantic) and the DAG files at parse
time read it too. Everything a user tunes for the pipeline itself lives in ``params.yaml``;
these are what a deployment sets around it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """An environment variable with a value of the wrong type; the message names it."""


@dataclass(frozen=True)
class Setting:
    env: str
    kind: type  # str, int, float or Path
    default: Any
    doc: str
    secret: bool = False


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in (
        Setting("RETRAIN_PARAMS", Path, None, "the params file (and so the workspace); "
                "default `./params.yaml`. In Airflow also a Variable of that name"),
        Setting("MLFLOW_TRACKING_URI", str, None, "the tracking server, over "
                "`mlflow.tracking_uri`"),
        Setting("RETRAIN_MLFLOW_UI_URL", str, None, "the MLflow UI as a user's browser reaches "
                "it, for the links the project prints and writes; default the tracking URI when "
                "it is `http(s)://`, else the `mlflow ui` command to open one"),
        Setting("RETRAIN_DATASET_MIRROR", Path, None, "the dataset's local folder, over "
                "`dataset.mirror`"),
        Setting("RETRAIN_PREDICTION_LOG", str, None, "a folder or a `postgresql://` URL, over "
                "`serve.prediction_log`"),
        Setting("RETRAIN_NOTIFICATIONS", Path, None, "the notifications file; default "
                "`<reports>/notifications.jsonl`"),
        Setting("RETRAIN_PUSHGATEWAY", str, None, "host:port of a Prometheus Pushgateway, over "
                "`monitor.pushgateway`"),
        Setting("RETRAIN_ACTOR", str, None, "who acts on the registry (the audit trail); "
                "default the user. The night sets it for its stages (the DAG run)"),
        Setting("RETRAIN_APPROVAL", str, None, "one night's `deploy.approval` (`required` or "
                "`none`), over params: the nightly DAG's form sets it for its `register` stage"),
        Setting("RETRAIN_SIGNING_KEY", Path, None, "the model signing key (Ed25519, PEM, mode "
                "600; made on first use), its public half beside it as `.pub`; default "
                "`<workspace>/.keys/model-signing.key`"),
        Setting("RETRAIN_SERVE_TOKEN", str, None, "set: `POST /predict` and `/feedback` need "
                "`Authorization: Bearer <token>`", secret=True),
        Setting("RETRAIN_IMAGE_TAG", str, "local", "the serving image's tag, shown by `/version`"),
        Setting("RETRAIN_SERVE_MAX_HEADER_BYTES", int, 65536, "`retrain serve`: a request whose "
                "request line and headers are longer is answered 431 and the connection closed"),
        Setting("RETRAIN_SERVE_BODY_SECONDS", float, 30.0, "`retrain serve`: a body not all "
                "received this long after the headers is answered 408 and the connection closed"),
        Setting("RETRAIN_FEEDBACK_TOKEN", str, None, "set: `POST /feedback` needs this bearer "
                "token instead of the serving one", secret=True),
        Setting("RETRAIN_DEAD_LETTER", Path, None, "where the prediction log's writer puts rows "
                "its store refused (JSON lines); default `dead-letter/` in the log folder "
                "(`<paths.data>/live/` for a `postgresql://` log)"),
        Setting("RETRAIN_BASE_IMAGE", str, None, "the serving image's base; default "
                "`python:3.11-slim`, or one made offline when no registry answers"),
        Setting("RETRAIN_SCHEDULE", str, "0 2 * * *", "cron (UTC) of `retrain_nightly`"),
        Setting("RETRAIN_MONITOR_SCHEDULE", str, "@hourly", "schedule of `retrain_monitor`"),
        Setting("RETRAIN_RETRIES", int, 2, "retries per task of `retrain_nightly` (back-off "
                "2 min, x2, at most 30 min)"),
        Setting("RETRAIN_APPROVAL_WINDOW_HOURS", float, 24.0, "room for a human's answer in a "
                "night's `dagrun_timeout` (6 h + this); a longer "
                "`deploy.approval_timeout_minutes` is cut to fit"),
        Setting("RETRAIN_TEST_SEAMS", Path, None, "tests only: a file whose `at()`/`adjust()` "
                "run at the named points of `pipelines.seams`"),
        Setting("RETRAIN_PROGRESS_SECONDS", float, 10.0, "`train`: seconds between the progress "
                "lines of a fit (iterations done, elapsed, expected); 0: none"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Settings:
    params: Path | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_ui_url: str | None = None
    dataset_mirror: Path | None = None
    prediction_log: str | None = None
    notifications: Path | None = None
    pushgateway: str | None = None
    actor: str | None = None
    approval: str | None = None
    signing_key: Path | None = None
    serve_token: str | None = field(default=None, repr=False)
    image_tag: str = "local"
    serve_max_header_bytes: int = 65536
    serve_body_seconds: float = 30.0
    feedback_token: str | None = field(default=None, repr=False)
    dead_letter: Path | None = None
    base_image: str | None = None
    schedule: str = "0 2 * * *"
    monitor_schedule: str = "@hourly"
    retries: int = 2
    approval_window_hours: float = 24.0
    test_seams: Path | None = None
    progress_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return cls(**{f.name: setting(_env_name(f.name), env) for f in fields(cls)})


def setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """One variable of :data:`SETTINGS`, typed (its default when unset): for a hot path that
    needs one value, not the whole table (the serving app's test seam, on every request)."""
    s = SETTINGS[name]
    raw = (os.environ if env is None else env).get(s.env, "").strip()
    return _parse(s, raw) if raw else s.default


def _env_name(attr: str) -> str:
    return "MLFLOW_TRACKING_URI" if attr == "mlflow_tracking_uri" else f"RETRAIN_{attr.upper()}"


def _parse(s: Setting, raw: str) -> Any:
    try:
        value = s.kind(raw)
    except ValueError:
        shown = "(hidden)" if s.secret else repr(raw)
        raise SettingsError(f"{s.env}={shown}: not a valid {s.kind.__name__}") from None
    if s.kind is Path:
        return value.expanduser()
    if s.kind in (int, float) and value < 0:
        raise SettingsError(f"{s.env}={raw!r}: must not be negative")
    return value


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """The environment's settings now (read on every call: a test or a task may change them)."""
    return Settings.from_env(env)


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")
_SECRET_QUERY = re.compile(r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key)=[^&\s]*")


def mask_url(text: str | None) -> str | None:
    """A URL or connection string fit to show: ``user:***@host``, secret query values ``***``.
    Every place that prints, logs or serves a location goes through it."""
    if not text:
        return text
    text = _USERINFO.sub(r"\g<scheme>\g<user>:***@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", text)


class MaskSecrets(logging.Filter):
    """A logging filter: every record's message (arguments and traceback included) through
    :func:`mask_url`, for handlers whose lines leave the process."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_url(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_url(text)
        return True


def markdown_table() -> str:
    """The settings as the documentation's table."""
    rows = ["| variable | type | default | what it does |", "|---|---|---|---|"]
    for s in SETTINGS.values():
        default = "-" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{s.env}` | {s.kind.__name__} | {default} | {s.doc} |")
    return "\n".join(rows)
