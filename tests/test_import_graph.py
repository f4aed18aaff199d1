"""Imports point one way (issue 20): foundations -> world/health -> model -> experiment ->
batch -> analysis -> studies -> report -> api -> cli. The test walks every import in the
package, at module level and inside functions, and fails on an import that points up a
layer, on a cycle between subpackages, and on an import inside a function that is there
only to break a cycle (its target imports the importer back at module level)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hhsim"
#: Layers, lowest first; a module may import its own layer and those below.
LAYERS = (("core",), ("world",), ("health",), ("interventions",), ("model",), ("experiment",),
          ("batch",), ("analysis",), ("studies",), ("report",), ("api",), ("cli", "__main__"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if top in names), -1)  # -1: hhsim itself


def _target(module: str, node: ast.ImportFrom | ast.Import, name: str) -> str | None:
    if isinstance(node, ast.Import):
        base = name
    else:
        here = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        prefix = here[:len(here) - node.level + 1] if node.level else []
        base = ".".join(prefix + ([node.module] if node.module else []))
        if f"{base}.{name}" in MODULES:
            return f"{base}.{name}"
    while base and base not in MODULES:
        base = base.rpartition(".")[0]
    return base if base.startswith("hhsim") else None


@cache
def imports(module: str) -> tuple[tuple[str, bool], ...]:
    """(imported hhsim module, inside a function?) for every import of ``module`` (not those
    under ``if TYPE_CHECKING``, which never run)."""
    tree = ast.parse(MODULES[module].read_text())
    skip, inner = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inner |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
            for alias in node.names:
                target = _target(module, node, alias.name)
                if target and target != module:
                    out.append((target, id(node) in inner))
    return tuple(out)


@cache
def loads_at_import(module: str) -> frozenset[str]:
    """Every hhsim module that ``module`` imports at module level, directly or through
    others (a package's ``__init__`` that imports its own modules runs first, not in the
    middle of them, so it is not followed from a module of the package)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        for t in (t for t, inner in imports(m) if not inner):
            if t not in seen and t in MODULES:
                seen.add(t)
                todo.append(t)
    return frozenset(seen)


def test_the_walk_sees_the_package():
    assert len(MODULES) > 100 and ("hhsim.experiment.schema", False) in imports("hhsim.experiment.plan")


def test_every_import_points_down_the_layers():
    up = [f"{m} -> {t}" for m in MODULES for t, _ in imports(m)
          if layer(t) > layer(m) and layer(m) >= 0]
    assert not up, "imports up a layer:\n" + "\n".join(up)


def test_no_cycle_between_subpackages():
    def package(m: str) -> str:
        return m.split(".")[1] if m.count(".") else m

    edges = {(package(m), package(t)) for m in MODULES for t, _ in imports(m) if package(m) != package(t)}
    back = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert not back, "subpackages import each other: " + ", ".join(back)


def test_no_import_inside_a_function_only_to_break_a_cycle():
    breakers = [f"{m} -> {t}" for m in MODULES for t, inner in imports(m)
                if inner and m in loads_at_import(t)]
    assert not breakers, "imports inside functions that hide a cycle:\n" + "\n".join(breakers)
