"""``--report -`` writes the JSON report to standard output, and then nothing else goes there:
the table, the progress and the notes go to standard error (issue 33)."""

import json

import numpy as np
import pytest
from conftest import run_cli

from rnnlab.cli import main
from rnnlab.io import write_report

RUNS = {
    "experiment": [
        *("experiment", "adding", "--cell", "rnn", "--length", "5", "--hidden", "4"),
        *("--steps", "3", "--test-size", "8"),
    ],
    "forecast": [
        *("forecast", "--epochs", "2", "--hidden", "6", "--ensemble", "1", "--window", "5"),
        *("--test-size", "20", "--baselines", "simple", "--no-plot", "--no-refit"),
    ],
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_report_is_all_stdout_holds(capsys, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)  # any default output lands here
    code, out, err = run_cli([*RUNS[name], "--report", "-"], capsys)
    assert code == 0, err
    report = json.loads(out)  # the whole of stdout is one JSON document
    assert isinstance(report, dict) and report
    assert err.strip()  # what was printed went to stderr
    assert not (tmp_path / "-").exists()  # no file named '-'


@pytest.mark.parametrize("name", sorted(RUNS))
def test_without_dash_stdout_is_the_table_again(capsys, tmp_path, name):
    code, out, _ = run_cli([*RUNS[name], "--report", str(tmp_path / "r.json")], capsys)
    assert code == 0 and out.strip() and not out.lstrip().startswith("{")
    json.loads((tmp_path / "r.json").read_text())


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    """A tiny translator (one epoch on toy pairs) and the file it was trained on."""
    words = "le chat chien voit mange petit grand".split()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(300):
        s = list(rng.choice(words, rng.integers(2, 5)))
        lines.append(" ".join(s) + f" {i % 5} .\t" + " ".join(w.upper() for w in s[::-1]) + " .")
    root = tmp_path_factory.mktemp("translate")
    pairs = root / "toy.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tiny = ["--hidden", "8", "--emb", "4", "--vocab", "word", "--min-freq", "1", "--epochs", "1", "--quiet"]
    assert main(["translate", "train", "--out", str(root / "m"), "--pairs", str(pairs), *tiny]) == 0
    return root / "m", pairs


def test_translate_eval_report_is_all_stdout_holds(capsys, translator):
    model, pairs = translator
    capsys.readouterr()
    argv = ["translate", "eval", "--model", str(model), "--corpus", str(pairs), "--samples", "2"]
    code, out, err = run_cli([*argv, "--report", "-"], capsys)
    assert code == 0, err
    assert {"bleu", "chrf", "samples"} <= set(json.loads(out))
    assert "BLEU" in err  # the scores' lines went to stderr


def test_write_report_to_dash_is_strict_json(capsys):
    assert write_report("-", {"a": float("nan"), "b": [1, 2]}) == "-"
    out = capsys.readouterr().out
    assert json.loads(out) == {"a": None, "b": [1, 2], "nulls": {"a": "not a finite number (nan)"}}
