"""`rnnlab translate train | eval | run` through rnnlab.cli.main: files written, reports, plots,
resume, and bad input answered with one clear line (exit 2) and no traceback."""

import io
import json
import sys

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.io import read_tensors

WORDS = "le chat chien voit mange petit grand un la souris".split()
TINY = ["--hidden", "16", "--emb", "8", "--batch-size", "16", "--vocab", "word", "--min-freq", "1", "--quiet"]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """Toy pairs 'x y z .' -> 'Z Y X .'; sentences made to land in all three sha1 buckets."""
    rng = np.random.default_rng(0)
    lines = []
    for i in range(1500):
        s = list(rng.choice(WORDS, rng.integers(2, 6)))
        lines.append(" ".join(s) + f" {i % 7} .\t" + " ".join(w.upper() for w in s[::-1]) + " .")
    path = tmp_path_factory.mktemp("data") / "toy.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "m"
    assert (
        main(
            [
                "translate",
                "train",
                "--out",
                str(out),
                "--pairs",
                str(corpus_file),
                "--epochs",
                "2",
                "--bidirectional",
                *TINY,
            ]
        )
        == 0
    )
    return out


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_writes_model_config_and_checkpoint(model_dir):
    for f in (
        "model.safetensors",
        "translator.json",
        "config.json",
        "checkpoint/state.json",
        "checkpoint/optimizer.safetensors",
    ):
        assert (model_dir / f).is_file(), f
    cfg = json.loads((model_dir / "config.json").read_text())["train"]
    assert cfg["bidirectional"] is True and cfg["hidden_size"] == 16 and cfg["attention"] == "general"
    hist = json.loads((model_dir / "translator.json").read_text())["fitted"]["history"]
    assert len(hist) == 2 and all("valid_bleu" in h for h in hist)


def test_eval_report_greedy_and_beam(model_dir, tmp_path, capsys):
    code, _, err = run(["translate", "eval", "--model", str(model_dir)], capsys)
    assert code == 2 and "--corpus" in err  # the path in config.json is not opened unasked
    corpus = ["--corpus", json.loads((model_dir / "config.json").read_text())["train"]["pairs"]]
    code, out, _ = run(
        ["translate", "eval", "--model", str(model_dir), *corpus, "--report", str(tmp_path / "r.json")],
        capsys,
    )
    assert code == 0 and "BLEU" in out and "chrF" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert {"bleu", "chrf", "n_sentences"} <= rep.keys() and rep["n_sentences"] > 0
    code, out, _ = run(
        ["translate", "eval", "--model", str(model_dir), *corpus, "--beam", "3", "--split", "valid"], capsys
    )
    assert code == 0 and "beam 3" in out


def test_run_arguments_stdin_and_attention_plot(model_dir, tmp_path, capsys, monkeypatch):
    png = tmp_path / "a.png"
    code, out, err = run(
        [
            "translate",
            "run",
            "--model",
            str(model_dir),
            "le chat voit la souris .",
            "un chien .",
            "--attention-plot",
            str(png),
        ],
        capsys,
    )
    assert code == 0 and len(out.splitlines()) == 2 and png.stat().st_size > 1000
    monkeypatch.setattr(sys, "stdin", io.StringIO("le chat .\n\nun petit chien .\n"))
    code, out, err = run(["translate", "run", "--model", str(model_dir)], capsys)
    assert code == 0 and len(out.splitlines()) == 3 and out.splitlines()[1] == ""
    assert "empty or whitespace-only" in err and "Traceback" not in err
    code, out, err = run(["translate", "run", "--model", str(model_dir), " ".join(["le"] * 40)], capsys)
    assert code == 0 and "truncated" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["translate", "run", "--model", "{tmp}/missing", "hi"], "model directory not found"),
        (["translate", "run", "--model", "{tmp}", "hi"], "translator.json is missing"),
        (["translate", "eval", "--model", "{tmp}/missing"], "model directory not found"),
        (["translate", "train", "--out", "{tmp}/o", "--pairs", "{tmp}/notab.tsv"], "notab.tsv:2: expected"),
        (["translate", "train", "--out", "{tmp}/o", "--pairs", "{tmp}/none.tsv"], "corpus file not found"),
        (["translate", "train", "--out", "{tmp}/o2", "--resume"], "cannot resume"),
        (
            ["translate", "train", "--out", "{tmp}/o", "--attention", "dot", "--bidirectional"],
            "needs equal sizes",
        ),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, tmp_path, capsys):
    (tmp_path / "notab.tsv").write_text("hi .\tsalut .\nno tab on this line\n", encoding="utf-8")
    code, out, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_empty_text_and_corrupt_model(model_dir, tmp_path, capsys):
    code, _, err = run(["translate", "run", "--model", str(model_dir), "  "], capsys)
    assert code == 2 and "empty" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "translator.json").write_text("{")
    (bad / "model.safetensors").write_bytes(b"\0" * 10)
    code, _, err = run(["translate", "run", "--model", str(bad), "hi"], capsys)
    assert code == 2 and "corrupt model directory" in err


def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(corpus_file, tmp_path, capsys):
    common = ["--pairs", str(corpus_file), *TINY, "--cell", "lstm", "--attention", "additive"]
    assert main(["translate", "train", "--out", str(tmp_path / "full"), "--epochs", "2", *common]) == 0
    assert main(["translate", "train", "--out", str(tmp_path / "cut"), "--epochs", "1", *common]) == 0
    code, _, err = run(
        ["translate", "train", "--out", str(tmp_path / "cut"), "--epochs", "2", *common], capsys
    )
    assert code == 2 and "--resume" in err  # no silent overwrite
    code, _, err = run(
        ["translate", "train", "--out", str(tmp_path / "cut"), "--resume", "--hidden", "32"], capsys
    )
    assert code == 2 and "--hidden" in err  # resume keeps the architecture
    assert (
        main(["translate", "train", "--out", str(tmp_path / "cut"), "--resume", "--epochs", "2", "--quiet"])
        == 0
    )
    a = read_tensors(tmp_path / "full" / "model.safetensors")
    b = read_tensors(tmp_path / "cut" / "model.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_run_saved_before_subwords_resumes_with_its_word_vocabulary(corpus_file, tmp_path, capsys):
    """config.json of an older release has no vocab/reverse keys: it was trained with words and
    resumes with them, although the default is now bpe."""
    out = tmp_path / "old"
    argv = ["translate", "train", "--out", str(out), "--pairs", str(corpus_file), *TINY]
    assert main([*argv, "--epochs", "1"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    for k in ("vocab", "vocab_size", "joint_vocab", "reverse", "valid_metric"):
        del cfg["train"][k]
    (out / "config.json").write_text(json.dumps(cfg))
    code, _, err = run(
        ["translate", "train", "--out", str(out), "--resume", "--epochs", "2", "--quiet"], capsys
    )
    assert code == 0, err
    meta = json.loads((out / "translator.json").read_text())
    assert meta["params"]["vocab"] == "word" and "subword" not in meta and meta["fitted"]["n_epochs"] == 2


def test_the_default_is_a_bidirectional_encoder_with_bpe_pieces(corpus_file, tmp_path):
    out = tmp_path / "d"
    argv = ["translate", "train", "--out", str(out), "--pairs", str(corpus_file), "--epochs", "1", "--quiet"]
    assert main([*argv, "--hidden", "16", "--emb", "8"]) == 0
    meta = json.loads((out / "translator.json").read_text())
    assert meta["params"]["vocab"] == "bpe" and meta["params"]["bidirectional"] is True
    assert meta["subword"]["kind"] == "bpe"
