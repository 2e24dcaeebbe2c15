"""What a project module imports of ``pipelines``, read from its source (nothing imported)."""

from __future__ import annotations

import ast
from pathlib import Path


def pipelines_imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every ``pipelines`` module (and ``module.name``) the file imports; with
    ``top_level_only``, only what importing the module runs (not imports inside functions)."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipelines"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("pipelines"))
    return out
