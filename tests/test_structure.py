"""Guards on the shape of the code (issue 10): no import cycle inside ``rnnkit``, no function
over 60 lines in ``src/``, no module reading another object's underscore attributes, and the
data flowing one way (read -> pipelines -> model -> train -> evaluate -> runs -> cli).

Read from the source with ``ast``, so the guard costs no import and no training.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LIMIT = 60

# Layers in the order the data flows; a module may import from its own layer and earlier ones.
LAYERS = [
    ("errors", "config", "persist", "run_format", "lock", "data"),
    ("models",),
    ("train",),
    ("inference", "streaming"),
    ("evaluate",),
    ("kinds",),
    ("runs", "plots", "run_plots", "html_report", "analysis", "export", "export_graphs",
     "export_covariates"),
    ("api", "demos", "cli", "datasets", "__main__", "serving", "refits"),
]


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted((SRC / "rnnkit").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        out[name] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


MODULES = _modules()


def _imports(name: str, tree: ast.Module) -> set[str]:
    """rnnkit modules ``name`` imports, at the top or inside a function alike."""
    found = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for t in targets:
            # a package's own submodules importing it (for a name) is not an edge back up
            if t in MODULES and t != name and not name.startswith(t + "."):
                found.add(t)
    return found


def _cycles() -> list[list[str]]:
    graph = {m: _imports(m, tree) for m, (_, tree) in MODULES.items()}
    cycles, done = [], set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            cycles.append([*path[path.index(m):], m])
            return
        if m in done:
            return
        for n in sorted(graph[m]):
            visit(n, [*path, m])
        done.add(m)

    for m in graph:
        visit(m, [])
    return cycles


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if top in names), -1)


def test_no_import_cycle_inside_rnnkit():
    assert _cycles() == []


def test_imports_follow_the_data_flow():
    backwards = []
    for m, (_, tree) in MODULES.items():
        for target in _imports(m, tree):
            if _layer(m) >= 0 and _layer(target) > _layer(m):
                backwards.append(f"{m} imports {target}")
    assert backwards == []


def test_every_module_has_a_layer():
    assert [m for m in MODULES if m != "rnnkit" and _layer(m) < 0] == []


def test_no_function_over_60_lines():
    long = [f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in MODULES.values() for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > LIMIT]
    assert long == []


def test_no_private_attribute_read_from_another_object():
    reach = []
    for path, tree in MODULES.values():
        imported = {(a.asname or a.name).split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import | ast.ImportFrom) for a in node.names}
        reach += [f"{path.name}:{node.lineno} {node.value.id}.{node.attr}"
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                  and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                  and node.value.id not in ("self", "cls") and node.value.id not in imported]
    assert reach == []


def test_the_guard_sees_what_it_guards():
    # a guard that found no modules would pass for the wrong reason
    assert {"rnnkit.api", "rnnkit.runs", "rnnkit.data.pipeline", "rnnkit.kinds"} <= set(MODULES)
    assert "rnnkit.runs" in _imports("rnnkit.api", MODULES["rnnkit.api"][1])
