"""Tampered model directories of every kind (issue 34, item 1), loaded through the command line:
a forecast model (one series, a combination, a panel of each), a translator model directory
and a translate run directory (its checkpoint too), each edited by ``tampering.tamper`` (JSON
values and types, truncated or re-headed safetensors, files from a twin model of the same kind,
symbolic links out of the directory). Every case: exit 0 with a well-formed answer or exit 2
with one line, never a traceback, and nothing written anywhere but the output asked for."""

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pytest
from fuzz_helpers import random_walk, run_cli, write_csv
from hypothesis import given
from hypothesis import strategies as st
from tampering import tamper

from rnnlab.cli import main
from rnnlab.translate import Translator

FAST = ["--epochs", "1", "--ensemble", "1", "--test-size", "10", "--baselines", "simple"]
FAST += ["--quiet", "--no-plot", "--window", "4", "--no-refit", "--samples", "100"]
# each kind and its twin: a model of the same kind with other sizes, target or cell
FORECAST = {"single": "single5", "single5": "single", "comb": "panel", "panel": "comb", "panel1": "single"}
TRANSLATE = {"run": "run6", "run6": "run", "model": "model6", "model6": "model"}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Every kind of model directory, tiny (about 5 s in all on an idle machine), made once."""
    root = tmp_path_factory.mktemp("zoo")
    csv = write_csv(root / "s.csv", random_walk(120))
    rng = np.random.default_rng(0)
    days = pd.date_range("2021-01-01", periods=60, freq="D")
    rows = [f"id{k},{d:%Y-%m-%d},{100 + rng.normal():.3f}" for k in range(3) for d in days]
    (root / "p.csv").write_text("id,ds,y\n" + "\n".join(rows) + "\n")
    panel = ["--csv", root / "p.csv", "--id-column", "id", "--column", "y", "--date-column", "ds"]
    saves = {
        "single": ["--csv", csv, "--hidden", "3", "--target", "diff"],
        "single5": ["--csv", csv, "--hidden", "5", "--target", "level", "--window", "6"],
        "comb": ["--csv", csv, "--hidden", "3"],  # --target auto: a combination of members
        "panel": [*panel, "--hidden", "3"],
        "panel1": [*panel, "--hidden", "3", "--target", "diff"],
    }
    for name, argv in saves.items():
        _made(["forecast", *FAST, *argv, "--save", root / name])
    (root / "pairs.tsv").write_text("".join(f"a b {i % 4} .\tB A {i % 4} .\n" for i in range(60)))
    tiny = ["--pairs", root / "pairs.tsv", "--emb", "4", "--min-freq", "1", "--epochs", "1", "--quiet"]
    _made(["translate", "train", "--out", root / "run", *tiny, "--hidden", "4"])
    more = ["--hidden", "6", "--cell", "lstm", "--vocab", "word"]
    _made(["translate", "train", "--out", root / "run6", *tiny, *more])
    Translator.load(root / "run").save(root / "model")
    Translator.load(root / "run6").save(root / "model6")
    return root


def _made(argv) -> None:
    """``rnnlab argv`` for a fixture: exit 0, however long a busy machine takes (run_cli's
    time limit is for the cases)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    assert code == 0, (argv, err.getvalue())


def tree(folder) -> dict:
    """Everything under ``folder`` as it is (links not followed, a FIFO never opened): relative
    path -> bytes, ``("link", target)`` or the file type."""
    seen = {}
    for root, dirs, names in os.walk(folder):
        for n in dirs + names:
            p = os.path.join(root, n)
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                seen[os.path.relpath(p, folder)] = ("link", os.readlink(p))
            elif stat.S_ISREG(mode):
                with open(p, "rb") as fh:
                    seen[os.path.relpath(p, folder)] = fh.read()
            else:
                seen[os.path.relpath(p, folder)] = stat.S_IFMT(mode)
    return seen


def _layout(zoo, kind: str, twin: str, tmp: str):
    """``tmp/m`` (the model to tamper), ``tmp/twin`` and ``tmp/outside`` (a FIFO, a file): what
    a link may point at, all of it checked afterwards."""
    d, other, outside = (os.path.join(tmp, n) for n in ("m", "twin", "outside"))
    shutil.copytree(zoo / kind, d)
    shutil.copytree(zoo / twin, other)
    os.makedirs(outside)
    os.mkfifo(os.path.join(outside, "fifo"))
    with open(os.path.join(outside, "notes.txt"), "w") as fh:
        fh.write("the user's notes\n")
    os.makedirs(os.path.join(tmp, "out"))
    return d, other, outside


def _without(files: dict, *prefixes) -> dict:
    return {k: v for k, v in files.items() if not k.startswith(prefixes)}


@given(st.data())
def test_a_tampered_forecast_model_forecasts_or_says_why(zoo, data):
    kind = data.draw(st.sampled_from(sorted(FORECAST)))
    export = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as tmp:
        d, twin, outside = _layout(zoo, kind, FORECAST[kind], tmp)
        done = tamper(data, d, twin, outside)
        before = tree(tmp)
        out = os.path.join(tmp, "out", "f.onnx" if export else "f.csv")
        if export:
            argv = ["forecast", "export", "--model", d, "--out", out]
        else:
            argv = ["forecast", "predict", "--model", d, "--steps", "3", "--out", out]
        code, _, err = run_cli(argv)
        after = tree(tmp)
        assert _without(after, "out") == _without(before, "out"), (done, err)  # nothing else written
        assert set(after) - set(before) <= ({"out/" + os.path.basename(out)} if code == 0 else set()), done
        if code == 0 and not export:
            rows = pd.read_csv(out)
            assert len(rows) == 3 * rows["unique_id"].nunique() and len(rows), (done, rows)
            values = rows.drop(columns=["unique_id", "ds"]).to_numpy(float)
            assert np.isfinite(values).all(), (done, rows)
        elif code == 0:
            import onnx

            onnx.checker.check_model(onnx.load(out))


@given(st.data())
def test_a_tampered_translator_translates_or_says_why(zoo, data):
    kind = data.draw(st.sampled_from(sorted(TRANSLATE)))
    export = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as tmp:
        d, twin, outside = _layout(zoo, kind, TRANSLATE[kind], tmp)
        done = tamper(data, d, twin, outside)
        before = tree(tmp)
        out = os.path.join(tmp, "out", "x" if export else "x.txt")
        if export:
            argv = ["translate", "export", "--model", d, "--out", out]
        else:
            argv = ["translate", "run", "--model", d, "--quiet", "--output", out, "a b 1 .", "B"]
        code, _, err = run_cli(argv)
        after = tree(tmp)
        assert _without(after, "out") == _without(before, "out"), (done, err)
        if code == 0 and not export:
            with open(out, encoding="utf-8") as fh:
                assert len(fh.read().splitlines()) == 2, done
        elif code == 0:
            assert sorted(os.listdir(out)) == ["decoder_step.onnx", "encoder.onnx", "translator.json"]
        else:
            assert _without(after, "m") == _without(before, "m"), (done, err)  # nothing written


@given(st.data())
def test_a_tampered_run_resumes_or_says_why_and_is_left_as_it_was(zoo, data):
    """``translate train --resume`` reads the run's checkpoint (and its config.json's corpus,
    the one path rnnlab reads from a file it wrote): a refusal leaves the run as it was; a
    resumed run is a whole model with no temporary left; nothing outside the run changes."""
    kind = data.draw(st.sampled_from(["run", "run6"]))
    with tempfile.TemporaryDirectory() as tmp:
        d, twin, outside = _layout(zoo, kind, TRANSLATE[kind], tmp)
        done = tamper(data, d, twin, outside)
        before = tree(tmp)
        code, _, err = run_cli(["translate", "train", "--out", d, "--resume", "--epochs", "1", "--quiet"])
        after = tree(tmp)
        assert _without(after, "m/") == _without(before, "m/"), (done, err)  # outside the run
        if code == 2:
            assert after == before, (done, err)
        else:
            Translator.load(d)
            assert not [n for n in os.listdir(tmp) + os.listdir(d) if n.startswith(".rnnlab-")], done


@pytest.mark.parametrize(
    "spec",
    [
        {"past": [], "future": None, "calendar": None},
        {"past": ["temp"], "future": [], "calendar": None},
        {"past": [], "future": [], "calendar": "no-such-frequency"},
        {"past": [7], "future": [], "calendar": None},
    ],
    ids=["null-list", "a-column-it-does-not-read", "no-calendar", "a-number-for-a-name"],
)
def test_a_combinations_edited_covariate_names_are_one_line(zoo, tmp_path, spec):
    """Found by the fuzz above: a combination's ``covariate_spec`` was checked only as a dict,
    so ``"future": null`` ended in a TypeError traceback when predict read the names."""
    d = tmp_path / "m"
    shutil.copytree(zoo / "comb", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["covariate_spec"] = spec
    (d / "config.json").write_text(json.dumps(cfg))
    code, _, err = run_cli(["forecast", "predict", "--model", d, "--steps", "2"])
    assert code == 2 and "covariates['spec']" in err, err


def test_a_checkpoint_file_that_is_a_fifo_is_one_line_not_a_hang(zoo, tmp_path):
    """Found by the fuzz above: a checkpoint's safetensors file linked to a FIFO blocked
    `--resume` for ever (safetensors opens it blocking, holding the GIL; the JSON files were
    opened non-blocking already). In a process of its own, so that a hang fails the test."""
    d = tmp_path / "run"
    shutil.copytree(zoo / "run", d)
    os.mkfifo(tmp_path / "fifo")
    (d / "checkpoint" / "optimizer.safetensors").unlink()
    (d / "checkpoint" / "optimizer.safetensors").symlink_to(tmp_path / "fifo")
    before = tree(d)
    argv = [sys.executable, "-m", "rnnlab.cli", "translate", "train", "--out", d, "--resume", "--quiet"]
    try:
        res = subprocess.run([*map(str, argv)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("--resume blocked on a FIFO as checkpoint/optimizer.safetensors")
    assert res.returncode == 2 and "not a regular file" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and tree(d) == before, res.stderr


def test_a_checkpoint_linked_out_of_the_run_is_replaced_not_written_through(zoo, tmp_path):
    """A run whose checkpoint/ is a link to a (valid) checkpoint elsewhere resumes; the new
    checkpoint is written into the run, the linked one is left as it was, and the old link is
    not left behind under a temporary name (it was: ``.rnnlab-*.tmp -> elsewhere``)."""
    d, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    shutil.copytree(zoo / "run", d)
    (d / "checkpoint").rename(elsewhere)
    (d / "checkpoint").symlink_to(elsewhere)
    before = tree(elsewhere)
    assert run_cli(["translate", "train", "--out", d, "--resume", "--epochs", "2", "--quiet"])[0] == 0
    assert tree(elsewhere) == before and not (d / "checkpoint").is_symlink()
    assert sorted(n for n in os.listdir(d) if n.startswith(".")) == []
