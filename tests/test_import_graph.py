"""The import graph of rnnlab, checked: no import cycle (outside ``if TYPE_CHECKING:``), and no
import inside a function in rnnlab.nn (the math and the speed, docs/ARCHITECTURE.md).

An edge is any ``import`` / ``from ... import`` of an rnnlab module, at any depth of a file, and
any ``importlib.import_module("rnnlab...")`` with a literal name (how backend/optional.py loads
the modules that need numba), so a deferred import cannot hide a cycle. ``from rnnlab.nn import
backend`` is an edge to ``rnnlab.nn.backend`` (the submodule), not to the package's
``__init__``, whose import Python runs first for every submodule anyway.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "rnnlab"


def _name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name):
    """The rnnlab module ``name`` names (a module, or the module that defines the name)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree):
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _targets(node, module, is_package):
    """The dotted names an import node (or an ``importlib.import_module`` call) imports."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            pkg = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args:
        arg = node.args[0]
        return [arg.value] if isinstance(arg, ast.Constant) else ["<not a literal>"]
    return []


def _edges():
    """``{module: {rnnlab module it imports}}``, and ``[(module, line, text)]`` of the imports
    inside functions."""
    edges, local = {m: set() for m in MODULES}, []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_nodes(tree)
        in_function = {
            id(n)
            for f in ast.walk(tree)
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f)
            if n is not f
        }
        for node in ast.walk(tree):
            names = _targets(node, module, path.name == "__init__.py")
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) in in_function:
                local.append((module, node.lineno, ast.unparse(node)))
            if id(node) in skip:
                continue
            if names == ["<not a literal>"] and module.startswith("rnnlab.nn"):
                local.append((module, node.lineno, ast.unparse(node)))  # a name no test can follow
            for name in names:
                target = _resolve(name) if name.startswith("rnnlab") else None
                if target and target != module:
                    edges[module].add(target)
    return edges, local


def _cycles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


EDGES, LOCAL = _edges()
PACKAGES = sorted({m.split(".")[1] if m.count(".") else "rnnlab" for m in MODULES})
# packages with a known import cycle, xfail (strict: the day one is gone, this list must lose it);
# none since issue 33 item 3 (forecast, translate: their own rework)
KNOWN: set[str] = set()


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="issue 33 item 3")) if p in KNOWN else p
        for p in PACKAGES
    ],
)
def test_no_import_cycle(package):
    cycles = [c for c in _cycles(EDGES) if any(m.split(".")[1:2] == [package] or m == package for m in c)]
    assert not cycles, f"import cycles through rnnlab.{package}: {cycles}"


def test_no_import_inside_a_function_in_nn():
    """rnnlab.nn imports at the top of its files: what a module needs is visible there, and a
    cycle cannot hide behind a deferred import. (numba, optional and slow to import, is loaded
    by name in backend/optional.py, an edge the cycle test follows.)"""
    inside = [f"{m}:{line} {text}" for m, line, text in LOCAL if m.startswith("rnnlab.nn")]
    assert not inside, "imports inside functions in rnnlab.nn:\n" + "\n".join(inside)


def test_the_math_does_not_import_the_backends_internals():
    """The cells, the time loop and the layers reach the speed only through ``backend``'s
    interface (``select``) and the typed jobs of ``direction.py``; the backend never imports
    them back; runtime is a leaf of the engine."""
    math = [
        f"rnnlab.nn.{n}" for n in ("rnn", "lstm", "gru", "steps", "recurrent", "layers", "stepping", "cells")
    ]
    for name in math + ["rnnlab.nn.direction", "rnnlab.nn.functional"]:
        bad = [m for m in EDGES[name] if m.startswith("rnnlab.nn.backend.")]
        assert not bad, f"{name} imports the backend's internals {bad}"
    for m, targets in EDGES.items():
        if m.startswith("rnnlab.nn.backend"):
            back = sorted(targets & set(math))
            assert not back, f"{m} imports the math {back}"
    assert not [t for t in EDGES["rnnlab.nn.runtime"] if t.startswith("rnnlab.nn")], "runtime must be a leaf"
