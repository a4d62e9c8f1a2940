"""Truecasing (rnnlab/translate/truecase.py): each word in its most frequent case, the output's
first word capitalised; the vocabulary of a lower-cased model, cased text out."""

import json

import numpy as np
import pytest
from sacremoses import MosesTruecaser

from rnnlab.errors import UserError
from rnnlab.translate import Translator, corpus
from rnnlab.translate.truecase import Truecaser

SUBJECTS = [("Tom", "Tom"), ("the cat", "le chat"), ("the dog", "le chien"), ("Mary", "Marie")]
VERBS = [("sees", "voit"), ("eats", "mange"), ("likes", "aime")]


def cased_pairs(n, seed=0):
    """Sentences as people type them: a capital first word, names capitalised everywhere."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        (se, sf), (ve, vf), (oe, of) = (
            SUBJECTS[rng.integers(4)],
            VERBS[rng.integers(3)],
            SUBJECTS[rng.integers(4)],
        )
        en, fr = f"{se} {ve} {oe} .", f"{sf} {vf} {of} ."
        out.append((en[0].upper() + en[1:], fr[0].upper() + fr[1:]))
    return out


def tokens(pairs):
    return [(corpus.normalize(a, False), corpus.normalize(b, False)) for a, b in pairs]


def test_best_forms_and_the_rule_are_moses_own():
    pairs = tokens(cased_pairs(300))
    tc = Truecaser.fit(pairs)
    assert tc.tgt["tom"] == "Tom" and tc.tgt["le"] == "le" and tc.tgt["marie"] == "Marie"
    assert tc.src["the"] == "the" and tc.capitalize
    moses = MosesTruecaser()
    moses.train([t for _, t in pairs], processes=1)
    for _, t in pairs[:50] + [(None, ["Le", "Zorg", "voit", "TOM", "."])]:
        assert tc.target(t) == moses.truecase(" ".join(t))  # sacremoses' truecase, word for word
    assert tc.output(["le", "chat", "voit", "Tom", "."]) == ["Le", "chat", "voit", "Tom", "."]
    lower = Truecaser.fit([(s, [w.lower() for w in t]) for s, t in pairs])
    assert not lower.capitalize and lower.output(["le", "chat"]) == ["le", "chat"]  # a lower-case corpus


@pytest.fixture(scope="module")
def pair_models():
    kw = dict(hidden_size=16, embedding_size=8, epochs=3, min_freq=1, batch_size=32, seed=0)
    data = cased_pairs(400)
    return Translator(**kw).fit(data), Translator(truecase=False, **kw).fit(data)


def test_a_truecased_model_has_one_word_per_word_and_writes_cased_text(pair_models):
    tc, typed = pair_models
    assert "le" in tc.tgt_vocab_.itos and "Le" not in tc.tgt_vocab_.itos and "Tom" in tc.tgt_vocab_.itos
    assert {"le", "Le"} <= set(typed.tgt_vocab_.itos)  # as typed: the first word is a word of its own
    assert len(tc.tgt_vocab_) < len(typed.tgt_vocab_)
    out = tc.translate(["The cat sees Tom.", "Mary eats the dog.", "the dog likes Mary ."])
    assert all(o and o[0].isupper() for o in out), out
    (e,) = tc.explain(["The cat sees Tom."])
    assert e["target"][:-1] == e["translation"].replace(".", " .").split()
    assert tc.translate(["the cat sees tom ."]) == tc.translate(["The Cat sees Tom ."])  # read truecased


def test_the_truecaser_saves_loads_and_is_checked(pair_models, tmp_path):
    tc, typed = pair_models
    tc.save(tmp_path / "m")
    back = Translator.load(tmp_path / "m")
    assert back.truecaser_ == tc.truecaser_
    texts = ["The cat sees Tom.", "Mary likes the dog."]
    assert back.translate(texts) == tc.translate(texts)
    meta_file = tmp_path / "m" / "translator.json"
    good = json.loads(meta_file.read_text())
    assert good["truecase"]["capitalize"] is True and "Tom" in good["truecase"]["tgt"]
    for edit in (
        lambda m: m["truecase"]["tgt"].append("TOM"),  # two forms of one word
        lambda m: m["truecase"].update(capitalize="yes"),
        lambda m: m["truecase"].pop("src"),
        lambda m: m["truecase"].update(tgt=[1, 2]),
        lambda m: m.pop("truecase"),  # params say truecased, the file holds no truecaser
    ):
        meta = json.loads(json.dumps(good))
        edit(meta)
        meta_file.write_text(json.dumps(meta))
        with pytest.raises(UserError, match="corrupt model directory.*truecase"):
            Translator.load(tmp_path / "m")
    typed.save(tmp_path / "t")
    meta = json.loads((tmp_path / "t" / "translator.json").read_text())
    assert "truecase" not in meta
    del meta["params"]["truecase"]  # a cased model of the release before truecasing
    (tmp_path / "t" / "translator.json").write_text(json.dumps(meta))
    old = Translator.load(tmp_path / "t")
    assert old.truecase is False and old.truecaser_ is None
    assert old.translate(texts) == typed.translate(texts)
