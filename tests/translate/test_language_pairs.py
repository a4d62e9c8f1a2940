"""Any language pair: Unicode-aware tokenisation that is still exactly the yardstick's protocol
on the bundled pairs, the reverse direction (French -> English), a Spanish file, and a
synthetic pair written in a script without spaces or case (katakana), trained with subwords."""

import re
import unicodedata

import pytest
from conftest import run_cli
from test_subword import mapped_pairs

from rnnlab.translate import Translator, corpus

YARDSTICK = re.compile(r'([.!?,;:"«»()¿¡])')


def yardstick_tokens(text):
    """``nmt_torch_reference.py``'s normalisation, written out again for the comparison."""
    text = unicodedata.normalize("NFC", text.lower().replace("\u202f", " ").replace("\xa0", " "))
    return YARDSTICK.sub(r" \1 ", text).split()


def test_the_bundled_pairs_tokenise_exactly_as_the_yardstick_does():
    pairs = corpus.read_pairs()
    for en, fr in pairs:
        assert corpus.normalize(en) == yardstick_tokens(en), en
        assert corpus.normalize(fr) == yardstick_tokens(fr), fr


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("¿Dónde está la estación?", ["¿", "dónde", "está", "la", "estación", "?"]),
        ("¡Qué bien!", ["¡", "qué", "bien", "!"]),
        ("Dov'è la stazione?", ["dov'è", "la", "stazione", "?"]),
        ("私は学生です。「はい」", ["私は学生です", "。", "「", "はい", "」"]),
        ("你好！你呢？", ["你好", "！", "你呢", "？"]),
        ("هل أنت بخير؟ نعم، شكرا", ["هل", "أنت", "بخير", "؟", "نعم", "،", "شكرا"]),
        ("मैं ठीक हूँ।", ["मैं", "ठीक", "हूँ", "।"]),
        ("ΟΔΥΣΣΕΥΣ", ["οδυσσευς"]),  # Greek final sigma: str.lower knows it
        ("Москва, Россия.", ["москва", ",", "россия", "."]),
    ],
)
def test_unicode_aware_punctuation_and_case(text, tokens):
    assert corpus.normalize(text) == tokens


def test_scripts_without_case_are_left_as_they_are():
    for text in ("私は学生です", "你好", "안녕하세요", "สวัสดี"):
        assert corpus.normalize(text) == [text]
        assert corpus.normalize(text, lower=False) == [text]


def test_reverse_reads_the_second_column_as_the_source_and_splits_by_it():
    fwd, rev = corpus.read_pairs(), corpus.read_pairs(reverse=True)
    assert len(fwd) == len(rev) and rev[100] == fwd[100][::-1]
    split = corpus.split_pairs(rev)
    seen = {}
    for name, part in split.items():
        for fr, _ in part:
            assert seen.setdefault(fr, name) == name  # no French source in two splits
    assert 1000 < len(split["test"]) < 2500


KANA = "ザ キャット ドッグ ミル タベル チイサイ オオキイ ア ネズミ イエ".split()  # the, cat, dog ...


def kana_pairs(n, seed=0):
    """English -> a made-up language in katakana, no spaces between its words, ending in 。"""
    return mapped_pairs(n, seed, KANA, sep="", end="。", longest=4)


def test_a_pair_in_a_script_without_spaces_learns_with_subwords_and_chrf():
    tr = Translator(
        vocab="bpe",
        vocab_size=320,
        valid_metric="chrf",
        hidden_size=64,
        embedding_size=32,
        epochs=10,
        batch_size=16,
        lr=1e-2,
        lr_decay=1.0,
        early_stopping=20,
    ).fit(kana_pairs(400), valid=kana_pairs(40, seed=1))
    res = tr.evaluate(kana_pairs(60, seed=2), sacrebleu_tokenize="char")
    assert res["unk_share"] == 0.0
    assert "tok:char" in res["sacrebleu"]["signature"]
    assert res["chrf"] > 45 and res["sacrebleu"]["bleu"] > 45, res["samples"]  # 61 and 69 measured
    out = tr.translate(["the big cat eats a mouse ."])[0]
    # detokenised: the text gets its own form back, no space before its full stop
    assert out.endswith("。") and all(unicodedata.name(c).startswith("KATAKANA") for c in out[:-1])
    # characters no training sentence had: bytes for the subwords, <unk> for words, never a crash
    assert isinstance(tr.translate(["дом 家 ☃ naïve"])[0], str)
    words = Translator(hidden_size=16, embedding_size=8, epochs=1, min_freq=1).fit(kana_pairs(100))
    assert isinstance(words.translate(["дом 家 ☃ naïve"])[0], str)


SPANISH = """Where is the station?\t¿Dónde está la estación?
Where is the station?\t¿Dónde queda la estación?
I am very happy.\tEstoy muy feliz.
I am very tired.\tEstoy muy cansado.
I am tired.\tEstoy cansada.
What a day!\t¡Qué día!
What a house!\t¡Qué casa!
The house is big.\tLa casa es grande.
The house is small.\tLa casa es pequeña.
The dog is small.\tEl perro es pequeño.
The dog is big.\tEl perro es grande.
The cat is sleeping.\tEl gato está durmiendo.
The dog is sleeping.\tEl perro está durmiendo.
I like the cat.\tMe gusta el gato.
I like the dog.\tMe gusta el perro.
I like the house.\tMe gusta la casa.
Are you tired?\t¿Estás cansado?
Are you happy?\t¿Estás feliz?
Where is the dog?\t¿Dónde está el perro?
Where is the cat?\t¿Dónde está el gato?
"""


def test_a_spanish_file_trains_evaluates_and_translates_in_both_directions(tmp_path, capsys):
    path = tmp_path / "spa.tsv"
    path.write_text(SPANISH * 5, encoding="utf-8")
    common = ["--pairs", str(path), "--epochs", "2", "--hidden", "16", "--emb", "8", "--quiet"]
    for direction, extra, probe in (
        ("es", [], "Where is the cat?"),
        ("en", ["--reverse"], "¿Dónde está el gato?"),
    ):
        out = tmp_path / direction
        rc, text, err = run_cli(
            ["translate", "train", "--out", str(out), *common, *extra, "--min-freq", "1"], capsys
        )
        assert rc == 0, err
        rc, text, err = run_cli(
            ["translate", "eval", "--model", str(out), "--pairs", str(path), "--samples", "1"], capsys
        )
        assert rc == 0 and "sacreBLEU" in text and "nrefs:" in text, err
        sample = text.split("\n  ")[1].strip()  # the first sample's source sentence
        assert ("¿" in sample or "estás" in sample or "está" in sample) == (direction == "en"), text
        rc, text, err = run_cli(["translate", "run", "--model", str(out), probe], capsys)
        assert rc == 0 and text.strip(), err
