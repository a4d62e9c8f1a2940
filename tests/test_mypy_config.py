"""``mypy`` with no arguments (what CI runs) checks every module of the package (issue 33: it
covered 40 of 106 files, so the applications' type errors went unseen)."""

import os
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")


def test_mypy_files_cover_the_whole_package():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        cfg = tomllib.load(f)["tool"]["mypy"]
    covered = [os.path.normpath(p) for p in cfg["files"]]
    modules = [
        os.path.relpath(os.path.join(d, n), ROOT)
        for d, _, names in os.walk(os.path.join(ROOT, "rnnlab"))
        for n in names
        if n.endswith(".py")
    ]
    left = [m for m in modules if not any(m == p or m.startswith(p + os.sep) for p in covered)]
    assert modules and not left, f"mypy does not check {left}"
    assert not cfg.get("exclude"), "no module is excluded from the check"
