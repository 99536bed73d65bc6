"""How the package hangs together: first-level parts in a declared layer order that no import
runs up (imports inside functions included), so no two parts import each other; imports at
module top except where a measured cost says otherwise; and a pytest plugin that costs nothing
until it is used."""
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


# The first-level parts of the package, lowest first: a module may import only from its own
# part or a part listed before it. A new part must be placed here.
LAYERS = [
    # foundation: no numerics of their own
    "version", "errors", "optional", "numfmt", "io", "options", "tolerances", "yamlfile", "documents", "publish",
    "registry",
    # models: cells and the tasks they are trained on
    "cells", "tasks",
    # a user's pytest checking their cell as the built-in ones are (imports pytest)
    "testing",
    # numerics: the probe, the sensitivity, training, weights read from files and from PyTorch
    "probing", "sensitivity", "training", "weights", "interop",
    # one run, and what is drawn from its documents
    "report", "run",
    # comparing runs, many runs, the commands
    "regression", "sweep", "cli",
]

# Imports left inside functions, each for a measured cost (2 cores, 2026-12-06): the package's
# and the regression package's lazy exports (PEP 562: `import diagnostics` loads nothing); the
# pytest plugin, loaded by every pytest session of the environment; the commands, so that
# `diag --help` takes 0.29 s instead of ~2 s (the run layer loads pydantic, scipy and the cells:
# 0.6 s; the report matplotlib: 0.7 s; a sweep dask: 0.6 s); matplotlib for a run or sweep
# without a page and a comparison without overlays; dask's distributed outside a sweep; torch
# (optional) outside what reads .pt files.
LAZY = {
    "diagnostics": "lazy exports",
    "diagnostics.regression": "lazy exports",
    "diagnostics.regression.plugin": "loaded by every pytest session",
    "diagnostics.cli.main": "diag --help", "diagnostics.cli.check": "diag --help",
    "diagnostics.cli.sweep": "diag --help",
    "diagnostics.regression.baseline": "matplotlib", "diagnostics.run.runner": "matplotlib",
    "diagnostics.sweep.run": "matplotlib",
    "diagnostics.sweep.cluster": "distributed", "diagnostics.sweep.engine": "distributed",
    "diagnostics.weights.files": "torch",
}


def part(module: str) -> str | None:
    """The first-level part of a module name (None for the package itself)."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else None


def upward_imports(graph: dict[str, set[str]], layers: list[str]) -> list[str]:
    """Every import of a part placed after the importer's own, and every unplaced part."""
    out = []
    for mod, deps in sorted(graph.items()):
        pm = part(mod)
        if pm is None:
            continue
        if pm not in layers:
            out.append(f"{mod}: part {pm!r} is not in LAYERS")
            continue
        for dep in sorted(deps):
            pd = part(dep)
            if pd is not None and pd != pm and (pd not in layers or layers.index(pd) > layers.index(pm)):
                out.append(f"{mod} imports {dep}, a layer above it")
    return out


def function_level_imports(path: Path) -> list[int]:
    """Line numbers of import statements inside functions."""
    lines = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines |= {n.lineno for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return sorted(lines)


def test_the_graph_sees_imports_inside_functions():
    g = import_graph()
    assert "diagnostics.run.spec" in g["diagnostics.regression.plugin"]     # imported inside a method
    assert "diagnostics.probing.core" in g["diagnostics"]                    # the lazy package exports


def test_no_import_runs_up_a_layer():
    assert upward_imports(import_graph(), LAYERS) == []


def test_the_layer_check_finds_an_upward_import_and_an_unplaced_part():
    g = {"diagnostics.cells.lstm": {"diagnostics.probing.core", "diagnostics.options"},
         "diagnostics.newpart.x": set()}
    assert upward_imports(g, LAYERS) == ["diagnostics.cells.lstm imports diagnostics.probing.core, a layer above it",
                                         "diagnostics.newpart.x: part 'newpart' is not in LAYERS"]


def test_no_two_first_level_parts_import_each_other():
    g = import_graph()
    parts: dict[str, set[str]] = {}
    for mod, deps in g.items():
        pm = part(mod)
        if pm is not None:
            parts.setdefault(pm, set()).update(p for d in deps if (p := part(d)) not in (None, pm))
    assert cycles(parts) == []


def test_imports_are_at_module_top_but_for_a_measured_cost():
    found = {}
    for path in PKG.rglob("*.py"):
        name = _module_name(path)
        if name not in LAZY and (lines := function_level_imports(path)):
            found[name] = lines
    assert found == {}, "imports inside functions (move them to the top, or give the cost in LAZY)"


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_schema_does_not_depend_on_regression():
    g = import_graph()
    for start in ("diagnostics.run.schema", "diagnostics.run.spec"):
        assert not {m for m in reachable(g, start) if m.startswith("diagnostics.regression")}, start


def test_plugin_imports_no_numerics():
    """The pytest11 entry point loads in every pytest session of the environment: importing it
    must not pull numpy, scipy, pydantic or matplotlib (they load when the fixture is used)."""
    code = ("import sys, diagnostics.regression.plugin; "
            "print(sorted(m for m in ('numpy', 'scipy', 'pydantic', 'matplotlib', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


# --- the tests themselves --------------------------------------------------------------------
TESTS = Path(__file__).resolve().parent


def imported_test_modules(source: str) -> list[str]:
    """The modules named test_* that a file imports, at any depth (`import test_x`, `from test_x
    import y`, `from tests.test_x import y`, `from . import test_x`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if any(p.startswith("test_") for p in a.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if any(p.startswith("test_") for p in module.split(".")):
                found.append(module)
            elif module in ("", "tests") or module.endswith(".tests"):   # a package of test modules
                found += [a.name for a in node.names if a.name.startswith("test_")]
    return found


def test_the_test_import_check_finds_each_form():
    source = ("import test_a\nimport tests.test_b as b\nfrom test_c import X\nfrom tests.test_d import Y\n"
              "from . import test_e\nfrom tests import test_f\n"
              "def f():\n    from test_schema import CONTRACT\n"
              "import cell_cases\nfrom sweep_helpers import write_sweep\nfrom diagnostics.testing import check\n")
    assert imported_test_modules(source) == ["test_a", "tests.test_b", "test_c", "tests.test_d", "test_e",
                                             "test_f", "test_schema"]


def test_no_test_module_imports_another():
    """Shared pieces are fixtures in conftest.py or helper modules without the test_ prefix: a
    test module imported by another runs its module-level code twice under two names, and ties
    the two files' contents together."""
    found = {p.name: imported_test_modules(p.read_text(encoding="utf-8")) for p in sorted(TESTS.glob("*.py"))}
    assert {name: mods for name, mods in found.items() if mods} == {}


# The package's private names that tests may reach, each with the reason no public name serves:
# white-box tests of a mechanism the public API deliberately hides. A new entry needs a reason.
WHITE_BOX = {
    ("test_probe_parallel.py", "_quiet"): "forced False: a process that runs other threads takes worker threads",
    ("test_probe_parallel.py", "_controller"): "replaced by a fake thread-pool view holding an OpenMP runtime",
    ("test_probe_parallel.py", "_die_with"): "run in a forked child whose parent is SIGKILLed",
    ("test_probe_parallel.py", "_PROCESS"): "its lock must be free while workers are forked",
    ("conftest.py", "_PROCESS"): "reset: the quiet_process fixture must not trust a view of the thread pools earlier tests left",
    ("test_probe.py", "_joint_view"): "the one-buffer view of paths a and c that the spectral tracker relies on",
    ("test_probe.py", "_Stacks"): "the stacked power iteration that view feeds",
    ("test_publish.py", "_exchange"): "made to fail or to be missing: the fallback swap and the crash between its renames",
    ("test_cli.py", "_exchange"): "made missing: the fallback swap a file system without renameat2 takes",
    ("test_strict_models.py", "_members"): "the same walk over annotations that the error messages use",
}


def private_names(source: str) -> set[str]:
    """The private names (`_x`, not dunders) a file takes from the package: imported from a
    diagnostics module, or read as an attribute of a name bound by importing from diagnostics."""
    tree = ast.parse(source)
    bound, found = set(), set()
    private = lambda n: n.startswith("_") and not n.startswith("__")   # noqa: E731
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "diagnostics":
            for a in node.names:
                (found.add(a.name) if private(a.name) else bound.add(a.asname or a.name))
        elif isinstance(node, ast.Import):
            bound |= {a.asname for a in node.names if a.asname and a.name.split(".")[0] == "diagnostics"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in bound:
            found.add(node.attr)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "setattr" and len(node.args) > 1 \
                and isinstance(node.args[0], ast.Name) and node.args[0].id in bound \
                and isinstance(node.args[1], ast.Constant) and private(str(node.args[1].value)):
            found.add(node.args[1].value)     # monkeypatch.setattr(module, "_name", ...)
    return found


def test_the_private_name_check_finds_each_form():
    source = ("from diagnostics.probing import parallel, probe\nimport diagnostics.probing.parallel as par\n"
              "from diagnostics.errors import _members\nimport numpy as np\n"
              "parallel._quiet(); par._controller(); probe.__doc__; np._core; self._cell\n"
              "monkeypatch.setattr(par, '_die_with', None); monkeypatch.setattr(np, '_x', None)\n")
    assert private_names(source) == {"_members", "_quiet", "_controller", "_die_with"}


def test_tests_and_benchmarks_use_public_names():
    """A test of the public behaviour survives a refactor of the internals; the few white-box
    tests say why they look inside (WHITE_BOX)."""
    files = sorted(TESTS.glob("*.py")) + sorted((TESTS.parent / "benchmarks").glob("*.py"))
    used = {(p.name, n) for p in files for n in private_names(p.read_text(encoding="utf-8"))}
    assert used - WHITE_BOX.keys() == set()
    assert WHITE_BOX.keys() - used == set(), "a white-box entry no test needs any more"
