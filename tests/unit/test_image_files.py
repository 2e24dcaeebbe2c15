"""The serving image carries pipelines/serve/ and RUNTIME_FILES: every project module those
import at module level must be among them, or the image fails at its first import."""

from __future__ import annotations

from pathlib import Path

from pipelines.release.containers import RUNTIME_FILES
from tests.support.imports import pipelines_imports

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def _module_file(name: str) -> str | None:
    parts = name.split(".")[1:]
    if not parts:
        return "__init__.py"
    rel = Path(*parts)
    for cand in (rel.with_suffix(".py"), rel / "__init__.py"):
        if (PIPELINES / cand).is_file():
            return cand.as_posix()
    return None


def _top_level_imports(path: Path) -> set[str]:
    """Project modules imported when the module is imported (not inside functions)."""
    return pipelines_imports(path, top_level_only=True)


def test_the_image_carries_every_module_the_runtime_imports() -> None:
    carried = {p.relative_to(PIPELINES).as_posix() for p in (PIPELINES / "serve").glob("*.py")}
    carried |= set(RUNTIME_FILES)
    todo = sorted(carried)
    seen: set[str] = set()
    missing: dict[str, str] = {}
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        for name in _top_level_imports(PIPELINES / rel):
            f = _module_file(name)
            if f is None:
                continue  # a name imported from a module, not a module
            if f not in carried:
                missing.setdefault(f, rel)
            todo.append(f)
    assert not missing, f"imported by the serving runtime but not in the image: {missing}"
