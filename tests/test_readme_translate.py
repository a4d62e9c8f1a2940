"""The README's `rnnlab translate` block, run as written, line by line, in a fresh folder (so
`--out runs/fr` must make `runs/` itself, and `translate average runs/fr/epochs/*` must find the
epochs training kept).

Each line runs verbatim in bash, with one change made in the open: a `translate train` line gets
`--max-len 4 --hidden 16 --emb 16 --vocab-size 600 --epochs E` appended (argparse takes the last
value of an option), so that the 25-minute runs of the README take seconds; everything else about
the line (its options, the folders it writes, the files the next lines read) is the README's.
`en.txt` and `spa.txt`, which the README's lines read, are written here first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = "--max-len 4 --hidden 16 --emb 16 --vocab-size 600"
SPANISH = [("Go.", "Ve."), ("I run.", "Yo corro."), ("Tom is here.", "Tom está aquí."), ("Who?", "¿Quién?")]


def readme_translate_lines() -> list[str]:
    """The command lines of the README's translate block (comments and blank lines left out)."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("## `rnnlab translate`") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README's translate section has no bash block"
    lines = [ln.strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def shrunk(line: str, epochs: int) -> str:
    """A `translate train` line with the small sizes appended (its trailing comment dropped)."""
    command = line.split("  #")[0].rstrip()
    return f"{command} {SMALL} --epochs {epochs}"


@pytest.mark.slow
def test_every_readme_translate_command_runs_as_written(tmp_path):
    lines = readme_translate_lines()
    assert any("translate average" in ln for ln in lines) and any("--resume" in ln for ln in lines)
    (tmp_path / "en.txt").write_text("Where is the train station?\nI am cold.\n\nTom is busy.\n")
    pairs = SPANISH * 200
    (tmp_path / "spa.txt").write_text("".join(f"{en}\t{es}\n" for en, es in pairs), encoding="utf-8")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    env.update(RNNLAB_NUM_THREADS="1")
    for line in lines:
        run = shrunk(line, 3 if "--resume" in line else 2) if "translate train" in line else line
        res = subprocess.run(
            ["bash", "-c", "set -o pipefail; " + run], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, f"{run}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    assert sorted(os.listdir(tmp_path / "runs" / "fr" / "epochs")) == ["2", "3"]  # the last 2 kept
    for f in ("greedy.json", "beam5.json"):
        report = json.loads((tmp_path / f).read_text())
        assert "case:mixed" in report["sacrebleu"]["signature"] and report["cased"]
    assert len((tmp_path / "fr.txt").read_text().splitlines()) == 4  # the empty line stays a line
    rows = [json.loads(r) for r in (tmp_path / "fr.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all("translation" in r for r in rows)
    assert (tmp_path / "att.png").stat().st_size > 0
    for model in ("fr", "fr-word", "fr-avg", "es"):
        assert (tmp_path / "runs" / model / "translator.json").is_file(), model
    lower = json.loads((tmp_path / "runs" / "fr-word" / "config.json").read_text())["train"]
    assert lower["lower"] is True and lower["vocab"] == "word"
    es = json.loads((tmp_path / "runs" / "es" / "translator.json").read_text())["params"]
    assert es["target_lang"] == "es" and es["lower"] is False
