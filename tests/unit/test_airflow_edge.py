"""The Airflow edge keeps task logs readable: a library's walk over every loaded module no
longer prints one of Airflow's DeprecatedImportWarnings per moved name, while a warning raised
from our own code still shows (``pipelines.airflow_adapter.quiet_library_deprecations``)."""

from __future__ import annotations

import warnings

import airflow.sdk  # noqa: F401  (a task process has Airflow loaded, its moved names too)
from airflow.utils.deprecation_tools import DeprecatedImportWarning

from pipelines.airflow_adapter import quiet_library_deprecations


def _deprecations(seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, DeprecatedImportWarning)]


class Nowhere:
    """An object that names no module (as some ufuncs do): found by looking in every one."""

    __module__ = None  # type: ignore[assignment]


def test_a_library_walking_the_loaded_modules_is_quiet_and_our_own_warnings_still_show():
    import airflow.utils.timezone  # noqa: F401  (one of Airflow's modules of moved names)
    from skops.io._utils import whichmodule  # how a model loader finds an object's module

    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        whichmodule(Nowhere(), "no_such_name_anywhere")
    assert len(_deprecations(before)) >= 3  # the noise: one per module of moved names, per look

    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        quiet_library_deprecations()
        whichmodule(Nowhere(), "no_such_name_anywhere")
        for module in ("pipelines.release.deploy", "unusual_prefix_0a1b_retrain_nightly"):
            warnings.warn_explicit("ours", DeprecatedImportWarning, "x.py", 1, module=module)
        warnings.warn("a library's other warning", FutureWarning, stacklevel=1)
    assert _deprecations(after) == ["ours", "ours"]  # ours and the DAG file's, nothing else
    assert any(w.category is FutureWarning for w in after)
