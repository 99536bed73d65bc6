"""How the package hangs together: no import cycles (imports inside functions included), the
schema independent of regression/, and a pytest plugin that costs nothing until it is used."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "diagnostics"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PKG.parent / rel).with_suffix(".py").exists() or (PKG.parent / rel / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, at any depth of the file (functions included)."""
    graph: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                # `from pkg import sub` imports the submodule; `from mod import name` the module
                targets = [f"{src}.{a.name}" if _is_module(f"{src}.{a.name}") else src for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t == "diagnostics" or t.startswith("diagnostics."))
        edges.discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def reachable(graph, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        v = todo.pop()
        for w in graph.get(v, ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_the_graph_sees_imports_inside_functions():
    g = import_graph()
    assert "diagnostics.spec" in g["diagnostics.regression.plugin"]      # imported inside a method
    assert "diagnostics.probing" in g["diagnostics"]                      # the lazy package exports


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_schema_does_not_depend_on_regression():
    g = import_graph()
    for start in ("diagnostics.schema", "diagnostics.spec"):
        assert not {m for m in reachable(g, start) if m.startswith("diagnostics.regression")}, start


def test_plugin_imports_no_numerics():
    """The pytest11 entry point loads in every pytest session of the environment: importing it
    must not pull numpy, scipy, pydantic or matplotlib (they load when the fixture is used)."""
    code = ("import sys, diagnostics.regression.plugin; "
            "print(sorted(m for m in ('numpy', 'scipy', 'pydantic', 'matplotlib', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
