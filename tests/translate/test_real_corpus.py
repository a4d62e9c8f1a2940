"""End to end on the bundled Tatoeba corpus (slow, ~2 CPU minutes): train through the CLI on the
pairs of at most 6 tokens, validation BLEU rises between epochs, test BLEU and chrF from eval
(greedy and beam), a translation through `run`. Measured: valid BLEU 5.0 -> 13.6, test 15.1."""

import json

import pytest

from rnnlab.cli import main


@pytest.mark.slow
def test_train_eval_run_on_the_bundled_corpus(tmp_path, capsys):
    out = tmp_path / "fr"
    assert (
        main(
            [
                "translate",
                "train",
                "--out",
                str(out),
                "--bidirectional",
                "--hidden",
                "128",
                "--emb",
                "128",
                "--max-len",
                "6",
                "--epochs",
                "2",
                "--lr",
                "3e-3",
                "--threads",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    hist = json.loads((out / "translator.json").read_text())["fitted"]["history"]
    assert hist[1]["valid_bleu"] > hist[0]["valid_bleu"] + 3
    assert main(["translate", "eval", "--model", str(out), "--report", str(tmp_path / "g.json")]) == 0
    assert (
        main(["translate", "eval", "--model", str(out), "--beam", "3", "--report", str(tmp_path / "b.json")])
        == 0
    )
    greedy, beam = (json.loads((tmp_path / f).read_text()) for f in ("g.json", "b.json"))
    assert greedy["n_sentences"] == beam["n_sentences"] > 300
    assert greedy["bleu"] > 10 and beam["bleu"] > 10 and greedy["chrf"] > 25
    capsys.readouterr()
    assert main(["translate", "run", "--model", str(out), "Thank you."]) == 0
    assert capsys.readouterr().out.strip()
