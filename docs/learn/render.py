"""Execute the notebooks of docs/learn/ and render them, outputs included, to Markdown.

    python docs/learn/render.py            # all six, full size (minutes each), -> docs/learn/rendered/
    python docs/learn/render.py --quick    # RNNLAB_LEARN_QUICK=1: less training (what CI runs)
    python docs/learn/render.py 03         # the notebooks whose name starts with 03

The committed notebooks hold no outputs (clean diffs); the rendered Markdown, with its plots as
PNG files in NAME_files/ (committed: .gitignore lets them through), is for reading without
Jupyter. Needs ``pip install -e ".[learn]"``.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def notebooks(prefixes=()):
    paths = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.ipynb")))
    return [p for p in paths if not prefixes or os.path.basename(p).startswith(tuple(prefixes))]


def execute(path, quick: bool, timeout: int = 1800):
    """The executed notebook (``nbformat.NotebookNode``) and its wall time in seconds."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["RNNLAB_LEARN_QUICK"] = "1" if quick else "0"  # the kernel inherits it
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": HERE}}
    ).execute()
    return nb, time.perf_counter() - t0


def render(nb, name: str, out_dir: str) -> str:
    """Write ``name.md`` and its images into ``out_dir``; returns the Markdown's path."""
    from nbconvert import MarkdownExporter

    from rnnlab.io import atomic_write

    body, resources = MarkdownExporter().from_notebook_node(
        nb, resources={"output_files_dir": f"{name}_files"}
    )
    os.makedirs(out_dir, exist_ok=True)
    shutil.rmtree(os.path.join(out_dir, f"{name}_files"), ignore_errors=True)  # no stale figures
    for rel, data in resources.get("outputs", {}).items():
        target = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
    md = os.path.join(out_dir, f"{name}.md")

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)

    return atomic_write(md, write)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prefixes", nargs="*", help="only the notebooks whose name starts with these")
    ap.add_argument("--quick", action="store_true", help="less training (RNNLAB_LEARN_QUICK=1)")
    ap.add_argument("--out", default=os.path.join(HERE, "rendered"), help="folder for the Markdown")
    args = ap.parse_args(argv)
    for path in notebooks(args.prefixes):
        name = os.path.splitext(os.path.basename(path))[0]
        nb, seconds = execute(path, args.quick)
        print(f"{name}: ran in {seconds:.0f} s -> {render(nb, name, args.out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
