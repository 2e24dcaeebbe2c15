"""The layout is the architecture: one list of stages that dvc.yaml, the modules and the night
agree on; imports flow one way between the layers; no import cycles; modules stay readable."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from pipelines.stages import NIGHT_STAGES, STAGES
from tests.support.imports import pipelines_imports

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "pipelines"

# Lower layers never import higher ones (lazy imports inside functions included).
LAYERS = {
    "foundation": 0,  # config, paths, settings, records, files, data, formats, groups, ...
    "edges": 1,  # MLflow tracking and registry, DVC, lineage, notifications
    "stages": 2,  # the DVC stages: pure cores, main() edges
    "predlog": 1,  # the prediction log: the hot-path writer, its storage, the readers
    "serve": 1,  # the serving runtime (what the image carries); the gate scores with it
    "night": 4,  # the nightly cycle: ingest, assess, run, record
    "monitor": 4,  # live drift and performance from the prediction log
    "release": 4,  # the release plan, register, approval, canary/shadow, deploy
    "demo": 5,  # what simulates data and users: scenarios, the series, the live loop
    "app": 6,  # cli, reproduce, the Airflow adapter
}
FOUNDATION = {
    "config",
    "paths",
    "settings",
    "records",
    "files",
    "data",
    "formats",
    "groups",
    "scoring",
    "seams",
    "lock",
    "__init__",
}
APP = {"cli", "reproduce", "airflow_adapter"}
# The domain: packages that never import Airflow (the adapter, pipelines.airflow_adapter, does).
DOMAIN = ("night", "monitor", "release", "stages", "serve", "edges", "demo")
# The one stage whose module is not under pipelines/stages/: where the pipeline hands the
# judged challenger to the release.
STAGE_MODULES = {"register": "pipelines/release/register.py"}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in FOUNDATION:
        return "foundation"
    if parts[1] in APP:
        return "app"
    return parts[1]


def _imports(path: Path) -> set[str]:
    return pipelines_imports(path)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The project module an imported name refers to (a module, or a name inside one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


GRAPH = {m: {r for i in _imports(p) if (r := _resolve(i)) and r != m} for m, p in MODULES.items()}


def test_stage_list_matches_dvc_yaml_and_the_modules():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert tuple(dvc) == STAGES, "pipelines.stages.STAGES and dvc.yaml list different stages"
    assert NIGHT_STAGES == STAGES[STAGES.index("window") :]
    for name, stage in dvc.items():
        if name in STAGE_MODULES:
            own = STAGE_MODULES[name]
            dotted = own.removesuffix(".py").replace("/", ".")
            assert (ROOT / own).is_file(), own
        else:
            module = PKG / "stages" / f"{name}.py"
            package = PKG / "stages" / name
            assert module.is_file() or (package / "__main__.py").is_file(), name
            own, dotted = f"pipelines/stages/{name}", f"pipelines.stages.{name}"
        assert stage["cmd"].startswith(f"python -m {dotted}"), stage["cmd"]
        assert any(str(d).startswith(own) for d in stage["deps"]), f"{name}: deps lack {own}"


def test_params_sections_are_named_after_their_stages():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in STAGES:
        if name not in ("prepare", "register"):  # prepare reads `dataset`, register `mlflow`
            assert name in raw, f"params.yaml has no section for stage {name!r}"


def test_imports_flow_one_way_between_layers():
    wrong = []
    for module, deps in GRAPH.items():
        for dep in deps:
            if LAYERS[_layer(dep)] > LAYERS[_layer(module)]:
                wrong.append(f"{module} ({_layer(module)}) imports {dep} ({_layer(dep)})")
    assert not wrong, "\n".join(wrong)


def test_stages_never_import_the_night_or_the_serving_app():
    # the gate scores with serving's compiled scorer (serve.model, serve.fastpath): allowed
    for module, deps in GRAPH.items():
        if _layer(module) == "stages":
            wrong = {d for d in deps if _layer(d) in ("night", "release", "demo", "app")}
            assert not wrong and "pipelines.serve.app" not in deps, (module, wrong)


def _package(module: str) -> str:
    """The top-level room a module lives in: ``pipelines.night.run`` -> ``night``; the
    foundation's modules are one room, as are the app's."""
    layer = _layer(module)
    return layer if layer in ("foundation", "app") else module.split(".")[1]


def test_no_import_cycles_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for m, deps in GRAPH.items():
        graph[_package(m)] |= {_package(d) for d in deps} - {_package(m)}
    for a in sorted(graph):
        for b in sorted(graph[a]):
            assert a not in _reach(graph, b), f"packages import each other: {a} <-> {b}"


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for d in graph[todo.pop()]:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def _imports_any(path: Path, roots: tuple[str, ...]) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        found += [n for n in names if n.split(".")[0] in roots]
    return found


def test_the_domain_imports_nothing_of_airflow():
    wrong = {
        str(path.relative_to(ROOT)): found
        for module, path in MODULES.items()
        if _package(module) in DOMAIN and (found := _imports_any(path, ("airflow",)))
    }
    assert not wrong, f"Airflow belongs in pipelines/airflow_adapter.py only: {wrong}"


def test_the_product_never_imports_the_demo():
    wrong = [
        f"{m} imports {d}"
        for m, deps in GRAPH.items()
        if _package(m) not in ("demo", "app")
        for d in deps
        if _package(d) == "demo"
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    # packages import their own submodules: judge cycles between modules, not package inits
    graph: dict[str, set[str]] = defaultdict(set)
    for m, deps in GRAPH.items():
        graph[m] |= {d for d in deps if not m.startswith(d + ".") and not d.startswith(m + ".")}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if seen.get(d) == 1:
                cycle = stack[stack.index(d) :] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in seen:
                visit(d)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable(module):
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    if lines > MAX_LINES:
        assert "over 400 lines" in doc, (
            f"{path.relative_to(ROOT)} has {lines} lines: split it, or say in its docstring "
            "why it is over 400 lines"
        )


def _workspace_paths(params) -> set[Path]:
    """Every path :class:`pipelines.paths.Paths` spells, stage outputs included."""
    paths = params.paths
    found: set[Path] = set()

    def collect(obj: object) -> None:
        for name in dir(type(obj)):
            attr = getattr(type(obj), name)
            if isinstance(attr, property) or name in ("root", "folder"):
                value = getattr(obj, name)
                if isinstance(value, Path):
                    found.add(value)
        for f in getattr(obj, "__dataclass_fields__", {}):
            value = getattr(obj, f)
            if isinstance(value, Path):
                found.add(value)

    collect(paths)
    outs = (paths.validate_out(), paths.drift_out(), paths.fairness_out(), paths.gate_out())
    for out in (*outs, paths.model_card()):
        collect(out)
    ev = paths.evaluate_out()
    collect(ev)
    found |= {ev.plot(n, s) for n in ("roc", "confusion", "calibration") for s in (".json", ".png")}
    return found


def test_every_workspace_path_in_dvc_yaml_is_spelled_by_paths():
    from pipelines.config import load_params

    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    values = {f"paths.{k}": v for k, v in raw["paths"].items()}
    values["validate.suite"] = raw["validate"]["suite"]

    def resolve(text: str) -> Path:
        for key, value in values.items():
            text = text.replace("${" + key + "}", str(value))
        assert "${" not in text, f"dvc.yaml: unresolved {text}"
        return params.path(text)

    known = _workspace_paths(params)
    unknown = []
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        for kind in ("deps", "outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                text = next(iter(entry)) if isinstance(entry, dict) else entry
                if text.startswith("pipelines/"):  # the stage's code
                    assert (ROOT / text).exists(), f"{name}: {kind} {text} does not exist"
                    continue
                if resolve(text) not in known:
                    unknown.append(f"{name}.{kind}: {text}")
    assert not unknown, "dvc.yaml paths that pipelines/paths.py does not spell:\n" + "\n".join(
        unknown
    )


def test_no_module_but_paths_spells_a_workspace_file_name():
    # the workspace's file names joined onto a folder: only pipelines/paths.py spells them
    names = ("metrics.json", "drift.html", "evaluation.json", "decision.json", "report.md",
             "registration.json", "summary.json", "validation.json", "fairness.json",
             "train.json", "landed.parquet", "mlartifacts", "nights", "verdict.json",
             "metrics.prom", "serve.log", "serve.pid", "validation_docs")  # fmt: skip
    wrong = {
        str(p.relative_to(ROOT)): [n for n in names if f'/ "{n}"' in p.read_text()]
        for m, p in MODULES.items()
        if m != "pipelines.paths"
    }
    wrong = {k: v for k, v in wrong.items() if v}
    assert not wrong, f"workspace file names outside pipelines/paths.py: {wrong}"


def test_no_test_file_imports_another_test_file():
    # shared helpers live in tests/support/, shared fixtures in a conftest.py
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for module in _imports_any(path, ("tests",)):
            if module.rpartition(".")[2].startswith("test_"):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, "\n".join(wrong)
