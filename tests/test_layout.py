"""The habits that keep the code readable, checked: no library file over 450 lines, no function
over 60, the math (rnnlab.nn) knows no application, and only the benchmark and
to_torch import torch (lazily)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "rnnlab"
FILES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_file_and_function_sizes(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 450, f"{path.name}: {len(text.splitlines())} lines > 450"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, f"{path.name}: functions over 60 lines: {long}"


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


# the benchmark (torch is its yardstick) and the interop module's to_torch, both importing it
# inside a function, never at import time
TORCH_ALLOWED = ("bench.py", "bench_limits.py", "interop.py")


def test_the_arrows_between_the_parts():
    """cli -> {forecast, translate, experiments} -> {nn, optim}; optim -> nn only; nn knows no
    application (docs/ARCHITECTURE.md)."""
    apps = ("rnnlab.forecast", "rnnlab.translate", "rnnlab.experiments", "rnnlab.cli")
    for path in FILES:
        part = path.relative_to(ROOT).parts[0]
        mods = list(_imports(path))
        if part in ("nn", "optim"):
            bad = [m for m in mods if m.startswith(apps) or (part == "nn" and m.startswith("rnnlab.optim"))]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
        top = [n for n in ast.parse(path.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        top_mods = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        top_mods += [n.module for n in top if isinstance(n, ast.ImportFrom) and n.module]
        assert not any(m == "torch" or m.startswith("torch.") for m in top_mods), (
            f"{path.relative_to(ROOT)} imports torch at import time"
        )
        if path.name not in TORCH_ALLOWED:
            assert not any(m == "torch" or m.startswith("torch.") for m in mods), (
                f"{path.relative_to(ROOT)} imports torch (only {', '.join(TORCH_ALLOWED)} may, lazily)"
            )


def test_the_applications_and_export_point_one_way():
    """Each application owns its ONNX graph (built on rnnlab.export.onnx_graph), so export/
    imports no application; the applications import neither each other nor the command line
    (docs/ARCHITECTURE.md)."""
    apps = {
        "export": (),
        "forecast": ("forecast",),
        "translate": ("translate",),
        "experiments": ("experiments",),
    }
    parts = ("forecast", "translate", "experiments")
    for path in FILES:
        part = path.relative_to(ROOT).parts[0]
        if part not in apps:
            continue
        banned = [f"rnnlab.{p}" for p in parts if p not in apps[part]] + ["rnnlab.cli"]
        bad = [m for m in _imports(path) if any(m == b or m.startswith(b + ".") for b in banned)]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
