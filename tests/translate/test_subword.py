"""Subword vocabularies (SentencePiece BPE and unigram): round trips, no <unk>, a translator
that learns with them, save/load, resume, corrupt files, and the detokenised sacreBLEU."""

import json

import numpy as np
import pytest
from test_translator import toy_pairs

from rnnlab.errors import UserError
from rnnlab.translate import Translator, corpus
from rnnlab.translate.subword import SubwordVocab, build_vocabs, train


def tokenised(pairs):
    return corpus.tokenize_pairs(pairs, None, lower=False)[0]


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_pieces_round_trip_and_unseen_characters_fall_back_to_bytes(kind):
    pairs = tokenised(toy_pairs(300))
    vocab = train([p[1] for p in pairs], kind, 320)
    assert isinstance(vocab, SubwordVocab) and 4 + 256 < len(vocab) <= 320
    assert vocab.itos[:4] == ["<pad>", "<unk>", "<sos>", "<eos>"]
    for _, tgt in pairs[:50]:
        ids = vocab.encode(tgt)
        assert vocab.decode(ids + [3, 7, 7]) == tgt  # stops at <eos>
        assert "".join(vocab.units(tgt)).replace("\u2581", " ").split() == tgt
    unseen = ["naïve", "日本語", "☃", "ÉTÉ"]
    ids = vocab.encode(unseen)
    assert 1 not in ids  # no <unk>: bytes instead
    assert vocab.decode(ids) == unseen


def test_joint_vocabulary_is_one_model_for_both_sides():
    pairs = tokenised(toy_pairs(200))
    src, tgt = build_vocabs(pairs, "bpe", 330, joint=True)
    assert src is tgt
    s2, t2 = build_vocabs(pairs, "bpe", 330, joint=False)
    assert s2 != t2 and s2 == train([p[0] for p in pairs], "bpe", 330)  # deterministic
    with pytest.raises(ValueError, match="vocab must be one of"):
        build_vocabs(pairs, "chars")


def test_vocabulary_size_limits():
    small = train([["a", "b"], ["b", "a"]], "bpe", 5000)  # a soft limit: the pieces there are
    assert len(small) < 300
    with pytest.raises(
        UserError, match="cannot learn a bpe vocabulary of 10 pieces: Vocabulary size is smaller"
    ):
        train([["a", "b"], ["b", "a"]], "bpe", 10)  # fewer than the specials and 256 bytes


EN = "the cat dog sees eats small big a mouse house".split()
FR = "le chat chien voit mange petit grand un souris maison".split()


def mapped_pairs(n, seed, target_words, sep=" ", end=" .", longest=5):
    """English words -> ``target_words`` in the same order, joined by ``sep`` and ending in
    ``end`` (a task a small model learns fast)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        idx = rng.integers(0, len(EN), rng.integers(2, longest + 1))
        out.append((" ".join(EN[i] for i in idx) + " .", sep.join(target_words[i] for i in idx) + end))
    return out


def word_for_word(n, seed=0):
    """English -> French words."""
    return mapped_pairs(n, seed, FR)


@pytest.fixture(scope="module")
def bpe_model():
    """8 epochs: held-out BLEU 47 (0 untrained: it emits nothing); the ~260 pieces no sentence
    uses (bytes) slow a model this small, and a plateau would halve the rate, so lr_decay=1.

    On the NumPy loop with one thread: a model this small lands anywhere from BLEU 22 to 46 with
    the GEMM library the timing picks and the thread count earlier tests left (measured: oneDNN
    and MKL 36.9, OpenBLAS 46.3, 21.8 after the real-corpus tests), so the check would depend on
    the machine and the order of the suite; pinned, it is 46.1 whatever the library."""
    from rnnlab.nn import runtime

    with runtime.override(backend="numpy", threads=1):
        return _fit_bpe()


def _fit_bpe():
    return Translator(
        vocab="bpe",
        vocab_size=330,
        hidden_size=64,
        embedding_size=32,
        epochs=8,
        batch_size=16,
        lr=1e-2,
        lr_decay=1.0,
        early_stopping=20,
    ).fit(word_for_word(400), valid=word_for_word(40, seed=1))


def test_a_subword_translator_learns_and_never_emits_unk(bpe_model):
    res = bpe_model.evaluate(word_for_word(60, seed=2))
    assert res["bleu"] > 25, res["samples"]
    assert res["unk_share"] == 0.0
    assert res["vocab"] == "bpe"
    sig = res["sacrebleu"]["signature"]
    assert "tok:13a" in sig and "case:mixed" in sig and res["sacrebleu"]["bleu"] > 20  # cased by default
    (e,) = bpe_model.explain(["the cat sees a mouse ."])
    assert e["weights"].shape == (len(e["target"]), len(e["source"]))
    assert e["source"] == bpe_model.src_vocab_.units(corpus.normalize("the cat sees a mouse ."))
    np.testing.assert_allclose(e["weights"].sum(axis=1), 1.0, rtol=1e-5)


def test_subword_model_saves_and_loads_without_pickle(bpe_model, tmp_path):
    bpe_model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "translator.json").read_text())
    assert meta["subword"]["kind"] == "bpe" and meta["params"]["vocab"] == "bpe"
    back = Translator.load(tmp_path / "m")
    texts = ["the cat sees a mouse .", "a big dog eats ."]
    assert back.translate(texts) == bpe_model.translate(texts)
    assert back.translate(texts, beam_size=3) == bpe_model.translate(texts, beam_size=3)
    for bad, match in (
        (lambda m: m["subword"].update(src="!!not base64!!"), "corrupt"),
        (lambda m: m["subword"].update(kind="unigram"), "does not match"),
        (lambda m: m.pop("subword"), "no subword model"),
        (lambda m: m["subword"].update(src=meta["subword"]["tgt"]), "does not match src_vocab"),
    ):
        broken = json.loads(json.dumps(meta))
        bad(broken)
        (tmp_path / "m" / "translator.json").write_text(json.dumps(broken))
        with pytest.raises(UserError, match=match):
            Translator.load(tmp_path / "m")


def test_subword_resume_gives_the_same_model(tmp_path):
    train_pairs, valid = toy_pairs(120), toy_pairs(20, seed=1)
    kw = dict(vocab="unigram", vocab_size=320, hidden_size=16, embedding_size=8, batch_size=16)
    full = Translator(epochs=2, **kw).fit(train_pairs, valid, checkpoint_dir=tmp_path / "a")
    Translator(epochs=1, **kw).fit(train_pairs, valid, checkpoint_dir=tmp_path / "b")
    resumed = Translator(epochs=2, **kw).fit(train_pairs, valid, checkpoint_dir=tmp_path / "b", resume=True)
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    assert resumed.src_vocab_ == full.src_vocab_ and resumed.tgt_vocab_ == full.tgt_vocab_
    for k, v in full.model_.state_dict().items():
        np.testing.assert_array_equal(v, resumed.model_.state_dict()[k], err_msg=k)
    with pytest.raises(UserError, match="vocabularies differ"):
        Translator(epochs=3, **{**kw, "vocab": "bpe"}).fit(
            train_pairs, valid, checkpoint_dir=tmp_path / "b", resume=True
        )


def test_the_server_answers_with_pieces_for_a_subword_model(bpe_model):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from rnnlab.translate.serve import create_app

    client = TestClient(create_app(bpe_model))
    r = client.post("/translate", json={"text": ["the cat sees a mouse .", "  "], "attention": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["translations"][0] == bpe_model.translate(["the cat sees a mouse ."])[0]
    heat = body["attention"][0]
    assert heat["source"] == bpe_model.src_vocab_.units(["the", "cat", "sees", "a", "mouse", "."])
    assert heat["target"][-1] == "<eos>" and len(heat["weights"]) == len(heat["target"])
    assert body["translations"][1] == "" and body["attention"][1] is None
