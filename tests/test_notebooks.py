"""docs/learn/: every notebook runs top to bottom (RNNLAB_LEARN_QUICK=1: the same code, less
training) and is committed without outputs. Needs the ``learn`` extra (nbclient, ipykernel),
which CI installs."""

import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "learn"))
import render  # noqa: E402

NOTEBOOKS = render.notebooks()


def test_six_notebooks_committed_without_outputs():
    assert [os.path.basename(p)[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path
        assert "RNNLAB_LEARN_QUICK" in code[0].source  # the parameter cell comes first


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p)[:2] for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    """Every cell runs (a cell over 300 s fails: no hang), its claims are asserted in the
    notebook itself, and it renders to Markdown."""
    nb, _ = render.execute(path, quick=True, timeout=300)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert all(c.outputs for c in nb.cells if c.cell_type == "code" and "print(" in c.source)
    md = render.render(nb, "nb", str(tmp_path))
    assert os.path.getsize(md) > 1000
