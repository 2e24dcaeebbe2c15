"""Faults the tests inject into real processes through ``pipelines.seams``.

Installed with ``RETRAIN_TEST_SEAMS=<this file>``; what to do is read from the environment of
the process it runs in, so one test can crash a DVC stage and another shift a server's answers:

- ``RETRAIN_CRASH_AT=<point>``: die at that point like a killed process (exit 137, no cleanup);
  points: ``registry.registration`` (a version registered, not yet promoted or rejected) and
  ``registry.promotion`` (the intent written and ``previous`` moved, ``champion`` not yet).
- ``RETRAIN_SERVE_FAULT=shift``: the server answers probabilities shifted by 0.01, so a smoke
  check against a running server has something real to catch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve()


def at(name: str) -> None:
    if os.environ.get("RETRAIN_CRASH_AT") == name:
        os._exit(137)


def adjust(name: str, value: Any) -> Any:
    if name == "serve.proba" and os.environ.get("RETRAIN_SERVE_FAULT") == "shift":
        return value + 0.01
    return value


def env(**settings: str) -> dict[str, str]:
    """Environment for a process with these faults installed, e.g. ``env(RETRAIN_CRASH_AT=...)``."""
    return {"RETRAIN_TEST_SEAMS": str(PATH), **settings}
