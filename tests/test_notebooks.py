"""docs/learn/: every notebook runs top to bottom (RNNLAB_LEARN_QUICK=1: the same code, less
training) and is committed without outputs; its rendered Markdown shows every figure it refers
to (issue 33: four of six showed broken images, ``.gitignore`` dropped their PNG files). The
notebook tests need the ``learn`` extra (nbclient, ipykernel), which CI installs."""

import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "docs", "learn"))
import render  # noqa: E402

NOTEBOOKS = render.notebooks()
RENDERED = sorted(glob.glob(os.path.join(ROOT, "docs", "learn", "rendered", "*.md")))
PAGES = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)|<img\b[^>]*\bsrc=[\"']([^\"']+)")
learn = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("nbformat", "nbclient", "ipykernel")),
    reason="needs the learn extra (nbformat, nbclient, ipykernel)",
)


def broken_images(md: str) -> list[str]:
    """The images ``md`` refers to that a clone would not have: missing, or ignored by git."""
    refs = [a or b for a, b in IMAGE.findall(open(md, encoding="utf-8").read())]
    local = [r for r in refs if not r.startswith(("http://", "https://", "data:"))]
    paths = [os.path.normpath(os.path.join(os.path.dirname(md), r)) for r in local]
    broken = [r for r, p in zip(local, paths) if not os.path.isfile(p)]
    if shutil.which("git") and paths:
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", *paths],
            cwd=os.path.dirname(md),
            capture_output=True,
            text=True,
        ).stdout.split()
        broken += [r for r, p in zip(local, paths) if p in map(os.path.normpath, ignored)]
    return broken


def test_every_rendered_figure_is_there():
    assert len(RENDERED) == len(NOTEBOOKS) == 6
    assert any(IMAGE.search(open(md, encoding="utf-8").read()) for md in RENDERED)  # the regex finds them
    broken = {os.path.basename(md): b for md in RENDERED if (b := broken_images(md))}
    assert not broken, f"rendered notebooks refer to images a clone lacks: {broken}"


def test_every_figure_of_the_pages_is_there():
    """The README and docs/ too (a page moved to docs/ keeps its figures' paths right)."""
    broken = {os.path.basename(md): b for md in PAGES if (b := broken_images(md))}
    assert not broken, f"pages refer to images a clone lacks: {broken}"


def test_a_broken_image_is_found(tmp_path):
    """The check above can fail: a missing file and one that ``.gitignore`` drops are both named."""
    (tmp_path / "nb_files").mkdir()
    (tmp_path / "nb_files" / "ok.png").write_bytes(b"png")
    (tmp_path / "nb_files" / "dropped.png").write_bytes(b"png")
    (tmp_path / ".gitignore").write_text("dropped.png\n")
    md = tmp_path / "nb.md"
    md.write_text(
        "![png](nb_files/ok.png)\n![png](nb_files/gone.png)\n<img src='nb_files/dropped.png'>\n"
        "![remote](https://example.org/a.png)\n"
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=False, capture_output=True)
    expected = ["nb_files/gone.png", "nb_files/dropped.png"] if shutil.which("git") else ["nb_files/gone.png"]
    assert broken_images(str(md)) == expected


@learn
def test_six_notebooks_committed_without_outputs():
    import nbformat

    assert [os.path.basename(p)[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path
        assert "RNNLAB_LEARN_QUICK" in code[0].source  # the parameter cell comes first


@learn
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
    assert not broken_images(md)  # every figure written beside the Markdown
