"""What a night needs from a running Airflow task: the params file, the night's date, who
triggered it. Called inside tasks and callbacks only (a Variable lookup asks the API server)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

PARAMS_VARIABLE = "RETRAIN_PARAMS"  # Airflow Variable (AIRFLOW_VAR_RETRAIN_PARAMS) or plain env


def params_file(default: Path) -> Path:
    """The params file a task uses: Airflow Variable ``RETRAIN_PARAMS`` (from the environment
    as ``AIRFLOW_VAR_RETRAIN_PARAMS`` or from the metastore), else env ``RETRAIN_PARAMS``,
    else ``default``. Call it inside a task (a Variable lookup is a call to the API server)."""
    from airflow.sdk import Variable

    value = Variable.get(PARAMS_VARIABLE, default=None) or os.environ.get(PARAMS_VARIABLE)
    return Path(value).expanduser() if value else default


def night_date(context: Mapping[str, Any]) -> str:
    """The night a run is for: the ``date`` param when given, else the date (UTC) of the run's
    logical date, or of when it was due to run for a manual run without one."""
    value = (context.get("params") or {}).get("date")
    if value:
        return str(value)
    dag_run = context["dag_run"]
    when = dag_run.logical_date or dag_run.run_after
    return when.astimezone(UTC).date().isoformat()


def actor(context: Mapping[str, Any]) -> str:
    """Who acts for the registry: the DAG run, and the user who triggered it by hand."""
    dag_run = context["dag_run"]
    who = getattr(dag_run, "triggering_user_name", None)
    return f"airflow:{dag_run.dag_id}/{dag_run.run_id}" + (f" (triggered by {who})" if who else "")


def asked_by_monitor(context: Mapping[str, Any]) -> bool:
    """Whether the run was started by an asset event (``retrain_monitor`` asking for a retrain)."""
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(run_type, "value", run_type)) == "asset_triggered"
