"""The layering the README's architecture section draws, checked on every module's imports.

Every ``import`` and ``from ... import`` is walked with :mod:`ast`, including imports inside
functions and under ``TYPE_CHECKING``: an import hidden in a function is still a dependency.
A package may import itself and the packages below it; anything else, or any cycle between
modules, fails with the offending lines named.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import tippingpoint

ROOT = Path(tippingpoint.__file__).parent

LAYERS: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "profiles": frozenset({"core"}),
    "calculator": frozenset({"profiles", "core"}),
    "backends": frozenset({"core"}),
    "models": frozenset({"backends", "core"}),
    "harness": frozenset({"models", "backends", "core"}),
    "server": frozenset({"harness", "models", "backends", "core"}),
    "reports": frozenset({"harness", "calculator", "profiles", "models", "backends", "core"}),
    # campaign runs cells through the harness on the nodes of a cluster; cli drives it
    "campaign": frozenset({"harness", "models", "backends", "core"}),
    "cli": frozenset(
        {
            "campaign",
            "reports",
            "server",
            "harness",
            "calculator",
            "profiles",
            "models",
            "backends",
            "core",
        }
    ),
}
"""Each top-level package and the packages it may import (besides itself)."""
TOP_MODULES: dict[str, frozenset[str]] = {
    "tippingpoint": frozenset(),
    "tippingpoint.__main__": frozenset({"cli"}),
}


def _module_name(path: Path) -> str:
    parts = ("tippingpoint", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of a tippingpoint module in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from pkg import mod` imports pkg.mod when mod is a module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if _is_module(sub):
                    found.append((node.lineno, sub))
                else:
                    found.append((node.lineno, target))
    return sorted({(ln, m) for ln, m in found if m.split(".")[0] == "tippingpoint"})


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else module


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS), "add new packages to LAYERS and the README's architecture"
    loose = {m for m in _modules() if _package(m) not in LAYERS}
    assert loose == set(TOP_MODULES), (
        f"modules outside any package: {sorted(loose - set(TOP_MODULES))}"
    )


def test_imports_point_down_the_layers() -> None:
    wrong: list[str] = []
    for name, path in _modules().items():
        src = _package(name)
        allowed = TOP_MODULES.get(name) if name in TOP_MODULES else LAYERS[src] | {src}
        assert allowed is not None
        for line, target in _imports(path):
            dst = _package(target)
            if dst == "tippingpoint":  # `from tippingpoint import __version__`
                continue
            if dst not in allowed:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line}: {src} -> {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    modules = _modules()
    for name, path in modules.items():
        for _, target in _imports(path):
            # importing a submodule runs its package's __init__ too, but that edge is the
            # package's own business; cycles are judged between the modules named
            if target in modules and target != name:
                graph[name].add(target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(modules):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_core_imports_nothing_of_the_project_but_itself() -> None:
    for name, path in _modules().items():
        if _package(name) == "core":
            outside = [t for _, t in _imports(path) if _package(t) != "core"]
            assert not outside, f"{name} imports {outside}"
