"""`translate run` for pipelines (issue 31 item 2): --output, --format jsonl, --n-best with
scores, --quiet, standard input in batches."""

import io
import json

import numpy as np
import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli

from rnnlab.translate import Translator

WORDS = "le chat chien voit mange petit".split()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(300):
        s = list(rng.choice(WORDS, rng.integers(2, 5)))
        pairs.append((" ".join(s), " ".join(s[::-1])))
    tr = Translator(hidden_size=16, embedding_size=8, epochs=3, lr=3e-3, min_freq=1, seed=0).fit(pairs)
    path = tmp_path_factory.mktemp("run") / "model"
    tr.save(path)
    return tr, path


LINES = ["le chat voit", "", "petit chien mange le chat", "chien"]


def _stdin(monkeypatch, lines):
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(x + "\n" for x in lines)))


def test_stdin_in_batches_to_a_file_equals_translate(model, tmp_path, capsys, monkeypatch):
    tr, path = model
    _stdin(monkeypatch, LINES)
    out = tmp_path / "out.txt"
    code, stdout, err = run_cli(
        ["translate", "run", "--model", str(path), "--output", str(out), "--batch-lines", "3"], capsys
    )
    assert code == 0, err
    assert stdout == "" and "4 sentences in" in err and "sentences/s" in err
    assert out.read_text().splitlines() == tr.translate(LINES)


def test_jsonl_with_n_best_and_scores(model, tmp_path, capsys, monkeypatch):
    tr, path = model
    _stdin(monkeypatch, LINES)
    argv = ["translate", "run", "--model", str(path), "--format", "jsonl", "--beam", "4", "--n-best", "3"]
    code, stdout, err = run_cli([*argv, "--quiet"], capsys)
    assert code == 0, err
    assert "sentences/s" not in err  # --quiet: no speed line (the empty line's warning stays)
    rows = [json.loads(x) for x in stdout.splitlines()]
    assert [r["source"] for r in rows] == LINES
    best = tr.translate(LINES, beam_size=4)
    for r, want in zip(rows, best):
        assert r["translation"] == want
        if r["source"]:
            scores = [h["score"] for h in r["n_best"]]
            assert len(scores) == 3 and scores == sorted(scores, reverse=True) and r["score"] == scores[0]
            assert r["n_best"][0]["translation"] == want
        else:
            assert r["n_best"] == []


def test_moses_n_best_text(model, capsys, monkeypatch):
    _, path = model
    _stdin(monkeypatch, ["le chat voit", "chien"])
    code, stdout, err = run_cli(
        ["translate", "run", "--model", str(path), "--beam", "3", "--n-best", "2"], capsys
    )
    assert code == 0, err
    fields = [line.split(" ||| ") for line in stdout.splitlines()]
    assert [f[0] for f in fields] == ["0", "0", "1", "1"] and all(float(f[2]) <= 0 for f in fields)


def test_attention_in_jsonl(model, capsys):
    _, path = model
    code, stdout, err = run_cli(
        ["translate", "run", "--model", str(path), "--format", "jsonl", "--attention", "le chat voit"], capsys
    )
    assert code == 0, err
    row = json.loads(stdout)
    w = np.array(row["attention"]["weights"])
    assert w.shape == (len(row["attention"]["target"]), len(row["attention"]["source"]))
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--n-best", "5", "--beam", "3"], "--n-best"),
        (["--n-best", "2"], "--beam"),
        (["--attention"], "jsonl"),
        (["--output", "{tmp}/no/out.txt"], "--output"),
    ],
)
def test_bad_run_options_are_one_line_before_loading(model, tmp_path, capsys, argv, needle):
    _, path = model
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_cli(["translate", "run", "--model", str(path), *argv, "hi"], capsys)
    one_line(code, err, needle)
