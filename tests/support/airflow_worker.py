"""Settings the Celery integration test gives its Airflow components, importable by them
(the repository root is on their PYTHONPATH).

- ``worker_hostname``: ``[core] hostname_callable`` for the workers. Two workers on one machine
  would both report this machine's name; each reports ``IT_WORKER_HOSTNAME`` instead, so a task
  instance's ``hostname`` says which worker ran it.
- ``task_policy``: a cluster policy (re-exported by ``airflow_local_settings.py`` in the test's
  AIRFLOW_HOME/config) that shortens every task's retry delay to ``IT_RETRY_DELAY_SECONDS``, so
  a retry after a lost worker is seen in seconds, not after the DAG's minutes of back-off.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

LOCAL_SETTINGS = f"from {__name__} import task_policy  # noqa: F401\n"
HOSTNAME_CALLABLE = f"{__name__}.worker_hostname"


def worker_hostname() -> str:
    return os.environ.get("IT_WORKER_HOSTNAME") or socket.getfqdn()


def task_policy(task: Any) -> None:
    seconds = os.environ.get("IT_RETRY_DELAY_SECONDS")
    if seconds:
        task.retry_delay = timedelta(seconds=float(seconds))
