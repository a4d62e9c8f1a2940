"""`rnnlab forecast export` and `rnnlab translate export`: saved models to ONNX from the command
line; the graphs reproduce `forecast predict` and greedy `translate run`; bad targets are one
line and exit 2."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnlab.forecast.estimator.model import Forecaster
from rnnlab.translate import Translator

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "onnx_translate.py")


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_forecast_export_reproduces_predict(tmp_path):
    y = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(3).standard_normal(150)))
    f = Forecaster(window=6, hidden_size=4, epochs=2, ensemble=2, target="logreturn").fit(y)
    f.save(tmp_path / "model")
    res = cli(
        "forecast",
        "export",
        "--model",
        str(tmp_path / "model"),
        "--out",
        str(tmp_path / "f.onnx"),
        "--steps",
        "5",
    )
    assert res.returncode == 0, res.stderr
    assert "input  history  (M, 7) float64" in res.stdout
    session = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"history": y[None, -7:]})[0][0]
    np.testing.assert_allclose(got, f.predict(y, 5), rtol=1e-6)


def test_translate_export_reproduces_greedy_run(tmp_path):
    words = "le chat chien voit mange petit".split()
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(200):
        s = list(rng.choice(words, rng.integers(2, 5)))
        pairs.append((" ".join(s).capitalize(), " ".join(s[::-1]).capitalize()))  # cased: truecased
    tr = Translator(hidden_size=16, embedding_size=8, epochs=6, lr=3e-3, min_freq=1, seed=0).fit(pairs)
    tr.save(tmp_path / "model")
    out = tmp_path / "onnx"
    res = cli("translate", "export", "--model", str(tmp_path / "model"), "--out", str(out))
    assert res.returncode == 0, res.stderr
    spec = importlib.util.spec_from_file_location("onnx_translate", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert tr.truecaser_.capitalize
    test = ["Le chat voit", "petit chien mange le chat"]
    run = cli("translate", "run", "--model", str(tmp_path / "model"), *test)
    assert run.returncode == 0, run.stderr
    want = run.stdout.splitlines()
    assert len(want) == len(test) and all(w[:1].isupper() for w in want)  # cased, one line a sentence
    assert mod.translate(str(out), test) == want
    # a folder holding other files is refused (exit 2, one line), unless --overwrite
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    res = cli("translate", "export", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "busy"))
    assert res.returncode == 2 and "notes.txt" in res.stderr and "Traceback" not in res.stderr
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "args,message",
    [
        (["forecast", "export", "--model", "m", "--out", "x.txt"], "must name a .onnx file"),
        (["forecast", "export", "--model", "nothere", "--out", "f.onnx"], "does not exist"),
        (["forecast", "export", "--model", "m", "--out", "f.onnx", "--steps", "0"], "--steps"),
        (["translate", "export", "--model", "nothere", "--out", "o"], "nothere"),
    ],
)
def test_bad_export_arguments_are_one_line(args, message, tmp_path):
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []
