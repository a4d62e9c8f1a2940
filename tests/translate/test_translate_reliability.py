"""The defects of issue 20 in `rnnlab translate`, each pinned (docs/RELIABILITY.md)."""

import io
import json
import os
import sys

import numpy as np
import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli

from rnnlab.io import read_tensors, write_tensors
from rnnlab.translate import storage

TINY = ["--hidden", "8", "--emb", "4", "--batch-size", "32", "--min-freq", "1", "--quiet"]


run = run_cli


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = "le chat chien voit mange".split()
    lines = [
        " ".join(s) + f" {i % 5} .\t" + " ".join(w.upper() for w in s[::-1]) + " ."
        for i, s in enumerate(list(rng.choice(words, rng.integers(2, 4))) for i in range(300))
    ]
    path = tmp_path_factory.mktemp("data") / "toy.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def model_dir(corpus_file, tmp_path, capsys):
    out = tmp_path / "m"
    code, _, err = run(
        ["translate", "train", "--out", str(out), "--pairs", str(corpus_file), "--epochs", "1", *TINY], capsys
    )
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (
            ["translate", "run", "--model", "{tmp}", "hi", "--attention-plot", "{tmp}/no/a.png"],
            "--attention-plot",
        ),
        (["translate", "run", "--model", "{tmp}", "hi", "--attention-plot", "{tmp}/a.pdf"], ".png"),
        (["translate", "eval", "--model", "{tmp}", "--report", "{tmp}/no/r.json"], "--report"),
        (["translate", "train", "--out", "/dev/null/m", "--hidden", "8"], "--out"),  # a file in the way
        (["translate", "train", "--out", "{tmp}/m", "--hidden", "200000"], "--hidden"),
        (["translate", "train", "--out", "{tmp}/m", "--lr", "nan"], "--lr"),
        (["translate", "run", "--model", "{tmp}", "hi", "--beam", "1000000"], "--beam"),
        (["bench", "--json", "{tmp}/no/b.json"], "--json"),
        (["experiment", "adding", "--report", "{tmp}/no/r.json"], "--report"),
    ],
)
def test_bad_values_are_one_line_at_parse_time(argv, needle, tmp_path, capsys):
    code, _, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    one_line(code, err, needle)


@pytest.mark.parametrize("stdin", ["", "\n", "  \n\n"])
@pytest.mark.parametrize("plot", [False, True])
def test_blank_stdin_is_refused_like_an_empty_argument(model_dir, tmp_path, capsys, monkeypatch, stdin, plot):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    extra = ["--attention-plot", str(tmp_path / "a.png")] if plot else []
    code, out, err = run(["translate", "run", "--model", str(model_dir), *extra], capsys)
    one_line(code, err, "no text")
    assert not (tmp_path / "a.png").exists()


def test_the_command_line_refuses_a_learning_rate_that_overflows(corpus_file, tmp_path, capsys):
    argv = ["translate", "train", "--out", str(tmp_path / "m"), "--pairs", str(corpus_file), *TINY]
    code, _, err = run([*argv, "--lr", "1e40"], capsys)
    one_line(code, err, "a learning rate in (0, 10]")


@pytest.mark.parametrize("batch", [512, 32])  # one batch an epoch (the weights), or several (the loss)
def test_a_diverging_training_says_so(batch):
    """Past the command line's bound the weights overflow: a UserError naming the cure, raised
    before a checkpoint or a model is written (the writers refuse NaN: a ValueError)."""
    import warnings

    from rnnlab.errors import UserError
    from rnnlab.translate import Translator

    pairs = [(f"a b {i % 5} .", f"B A {i % 5} .") for i in range(200)]
    tr = Translator(hidden_size=8, embedding_size=4, epochs=2, batch_size=batch, min_freq=1, lr=1e40)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match="training diverged"):
            tr.fit(pairs)


def test_train_refuses_a_directory_that_is_not_a_translator(model_dir, corpus_file, tmp_path, capsys):
    other = tmp_path / "forecast-model"
    other.mkdir()
    (other / "config.json").write_text('{"format": "rnnlab-forecaster"}')
    (other / "model.safetensors").write_bytes(b"weights")
    argv = ["translate", "train", "--out", str(other), "--pairs", str(corpus_file), "--epochs", "1", *TINY]
    code, _, err = run(argv, capsys)
    one_line(code, err, "--overwrite")
    assert (other / "model.safetensors").read_bytes() == b"weights"
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((other / "translator.json").read_text())["format"] == "rnnlab-translator"
    assert (other / "model.safetensors").read_bytes() != b"weights" and (
        other / "checkpoint" / "state.json"
    ).is_file()


def test_train_never_deletes_files_it_did_not_write(corpus_file, tmp_path, capsys):
    p = tmp_path / "p"
    p.mkdir()
    (p / "config.json").write_text('{"train": {}}')  # looks like a run's, but has no format marker
    (p / "results.csv").write_text("x")
    argv = ["translate", "train", "--out", str(p), "--pairs", str(corpus_file), "--epochs", "1", *TINY]
    code, _, err = run(argv, capsys)
    one_line(code, err, "--overwrite")
    assert sorted(os.listdir(p)) == ["config.json", "results.csv"]
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert (p / "results.csv").read_text() == "x"  # kept: rnnlab did not write it
    assert json.loads((p / "config.json").read_text())["format"] == storage.RUN_FORMAT
    # the run is ours now: a fresh run replaces its checkpoint and model, and keeps results.csv
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(p)) == [
        *("checkpoint", "config.json", "epochs", "model.safetensors", "results.csv", "translator.json")
    ]


def test_a_run_of_an_earlier_release_is_still_recognised(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    del cfg["format"]  # a run written before the marker: its checkpoint's state.json has one
    (model_dir / "config.json").write_text(json.dumps(cfg))
    os.remove(model_dir / "translator.json")
    assert storage.is_translator_dir(model_dir)
    (model_dir / "checkpoint" / "state.json").write_text('{"train": 1}')
    assert not storage.is_translator_dir(model_dir)


@pytest.mark.parametrize(
    "file,content,needle",
    [
        ("translator.json", "[]", "corrupt model directory"),
        ("translator.json", '{"format": "rnnlab-translator"}', "params"),
        ("translator.json", "{bad", "corrupt model directory"),
    ],
)
def test_crafted_model_directories_are_one_line(model_dir, capsys, file, content, needle):
    (model_dir / file).write_text(content)
    code, _, err = run(["translate", "run", "--model", str(model_dir), "hi"], capsys)
    one_line(code, err, needle)


def test_oversized_or_nan_models_are_refused(model_dir, capsys):
    meta = json.loads((model_dir / "translator.json").read_text())
    meta["params"]["hidden_size"] = 10**7
    (model_dir / "translator.json").write_text(json.dumps(meta))
    code, _, err = run(["translate", "run", "--model", str(model_dir), "hi"], capsys)
    one_line(code, err, "hidden_size")
    meta["params"]["hidden_size"] = 8
    meta["format"] = "rnnlab.translate/1"  # a model from before the marker's new name
    (model_dir / "translator.json").write_text(json.dumps(meta))
    assert run(["translate", "run", "--model", str(model_dir), "hi"], capsys)[0] == 0
    w = read_tensors(model_dir / "model.safetensors")
    name = sorted(w)[0]
    w[name] = np.full_like(w[name], np.nan)
    write_tensors(model_dir / "model.safetensors", w)
    code, _, err = run(["translate", "run", "--model", str(model_dir), "hi"], capsys)
    one_line(code, err, "NaN")


def test_a_checkpoint_without_params_cannot_resume(model_dir, capsys):
    state = json.loads((model_dir / "checkpoint" / "state.json").read_text())
    del state["params"]
    (model_dir / "checkpoint" / "state.json").write_text(json.dumps(state))
    code, _, err = run(
        ["translate", "train", "--out", str(model_dir), "--resume", "--epochs", "2", "--quiet"], capsys
    )
    one_line(code, err, "params")


def test_a_checkpoint_is_one_unit(model_dir, monkeypatch):
    """A failure while writing epoch 2's checkpoint leaves epoch 1's whole: weights and state
    of the same epoch, never a mix."""
    ckpt = model_dir / "checkpoint"
    before = {f: (ckpt / f).read_bytes() for f in os.listdir(ckpt)}

    def fail(path, obj, indent=1):
        raise OSError("killed")

    from rnnlab.translate import Translator

    tr = Translator.load(model_dir)
    monkeypatch.setattr(storage, "write_json", fail)  # the weights are written, the state is not
    with pytest.raises(OSError, match="killed"):
        storage.save_checkpoint(tr, ckpt, _FakeOpt(), {"epoch": 2, "best_epoch": 1}, None)
    assert {f: (ckpt / f).read_bytes() for f in os.listdir(ckpt)} == before
    assert not [p for p in os.listdir(model_dir) if p.startswith(".rnnlab")]


class _FakeOpt:
    def state_dict(self):
        return {"t": np.array(2)}
