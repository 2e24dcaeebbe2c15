"""The registered model's aliases, read cheaply: for `retrain status`, which must answer at once.

Starting an MLflow client costs seconds (its import, then its store's start-up checks). The
aliases are one small read, made here without it:

- ``sqlite:`` (the local default): one read-only query of the store's alias table; the file
  is never created or migrated, and a store whose tables are not as expected falls back;
- ``http(s):`` (a tracking server): one ``GET`` of the registered model from MLflow's REST API,
  with the credentials MLflow's own client takes from the environment
  (``MLFLOW_TRACKING_TOKEN``, or ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``);
- any other store: the MLflow client (:mod:`pipelines.edges.registry`), the slow path.

Standard library only at import time.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pipelines.settings import mask_url

SQLITE = "sqlite:///"


class AliasesUnavailable(RuntimeError):
    """The registry could not be read; the message says why (no secret in it)."""


def read_aliases(tracking_uri: str, model: str, timeout: float = 3.0) -> dict[str, str]:
    """``alias -> version`` of ``model`` (empty: no such model, or no registry yet)."""
    if tracking_uri.startswith(SQLITE):
        found = _sqlite_aliases(Path(tracking_uri[len(SQLITE) :]), model)
        if found is not None:
            return found
    elif tracking_uri.startswith(("http://", "https://")):
        return _rest_aliases(tracking_uri, model, timeout)
    return _client_aliases(tracking_uri, model)


def _sqlite_aliases(db: Path, model: str) -> dict[str, str] | None:
    """The alias table's rows for ``model``; ``{}`` when there is no store yet; None when the
    store is not as expected (another MLflow schema): the caller asks MLflow."""
    if not db.is_file():
        return {}
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=2) as con:
            rows = con.execute(
                "SELECT alias, version FROM registered_model_aliases WHERE name = ?", (model,)
            ).fetchall()
    except sqlite3.Error:
        return None
    return {str(alias): str(version) for alias, version in rows}


def _auth_header() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


def _rest_aliases(base: str, model: str, timeout: float) -> dict[str, str]:
    query = urllib.parse.urlencode({"name": model})
    url = f"{base.rstrip('/')}/api/2.0/mlflow/registered-models/get?{query}"
    req = urllib.request.Request(url, headers={"Accept": "application/json", **_auth_header()})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only
            body = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        if err.code == 404 and "RESOURCE_DOES_NOT_EXIST" in detail:
            return {}
        raise AliasesUnavailable(f"{mask_url(base)} answered {err.code} {err.reason}") from None
    except (OSError, ValueError) as err:
        raise AliasesUnavailable(f"{mask_url(base)} not reachable: {err}") from None
    aliases = (body.get("registered_model") or {}).get("aliases") or []
    return {str(a["alias"]): str(a["version"]) for a in aliases}


def _client_aliases(tracking_uri: str, model: str) -> dict[str, str]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        found = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        return {k: str(v) for k, v in found.get_registered_model(model).aliases.items()}
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise AliasesUnavailable(f"{mask_url(tracking_uri)}: {err.message}") from None
