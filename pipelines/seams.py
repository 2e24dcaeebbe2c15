"""Named points where a test can step into a real process; nothing happens there otherwise.

Production code names the points (``seams.point("registry.promotion")``,
``seams.adjust("serve.proba", proba)``) and knows nothing of what a test does at them. A test
installs a plugin by pointing ``RETRAIN_TEST_SEAMS`` at a Python file (``tests/support/faults.py``)
that defines ``at(name)`` and/or ``adjust(name, value)``; the variable crosses into the
processes the test starts (``dvc repro`` stages, a serving container), so a crash between two
registry writes or a wrong answer from a running server is exercised in the real process.
Unset (always, outside tests), every point is one dictionary lookup.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType
from typing import Any, TypeVar

ENV = "RETRAIN_TEST_SEAMS"
T = TypeVar("T")


@cache
def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("retrain_test_seams", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{ENV}={path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plugin() -> ModuleType | None:
    from pipelines.settings import setting

    path = setting("RETRAIN_TEST_SEAMS")  # read on every call: serving calls adjust() per request
    return _load(str(path)) if path else None


def point(name: str) -> None:
    """A place where a test may stop the process (or do anything else)."""
    plugin = _plugin()
    if plugin is not None and hasattr(plugin, "at"):
        plugin.at(name)


def adjust(name: str, value: T) -> T:
    """A value a test may replace (a served answer, say); returned unchanged otherwise."""
    plugin = _plugin()
    if plugin is not None and hasattr(plugin, "adjust"):
        result: Any = plugin.adjust(name, value)
        return result  # type: ignore[no-any-return]
    return value
