"""Corpus protocol: normalisation, the split by English sentence, references, vocabularies."""

import gzip
import hashlib
import random
import re
import unicodedata

import pytest

from rnnlab.errors import UserError
from rnnlab.translate import corpus
from rnnlab.translate.model import UNK
from rnnlab.translate.vocab import Vocab


def reference_norm(s):
    """The yardstick's ``norm`` (shared/reference/nmt_torch_reference.py), written out again."""
    s = unicodedata.normalize("NFC", s.lower().replace("\u202f", " ").replace("\xa0", " "))
    return re.sub(r'([.!?,;:"«»()¿¡])', r" \1 ", s).split()


@pytest.fixture(scope="module")
def bundled():
    pairs = corpus.read_pairs()
    return pairs, corpus.split_pairs(pairs)


def test_normalize_examples():
    assert corpus.normalize("Run!") == ["run", "!"]
    assert corpus.normalize("Cours\u202f!") == ["cours", "!"]  # narrow no-break space
    assert corpus.normalize("«\xa0Oui\xa0», dit-il.") == ["«", "oui", "»", ",", "dit-il", "."]
    assert corpus.normalize("Cafe\u0301 ?") == ["café", "?"]  # NFC composes e + acute
    assert corpus.normalize("I'm OK.", lower=False) == ["I'm", "OK", "."]
    assert corpus.normalize("   \t ") == []


def test_normalize_matches_the_yardstick_on_the_corpus(bundled):
    pairs, _ = bundled
    for en, fr in pairs[::50]:
        assert corpus.normalize(en) == reference_norm(en)
        assert corpus.normalize(fr) == reference_norm(fr)


def test_split_is_by_english_sentence_and_deterministic(bundled):
    pairs, split = bundled
    where = {}
    for name, part in split.items():
        for en, _ in part:
            assert where.setdefault(en, name) == name, f"{en!r} is in {where[en]} and {name}"
    assert sum(len(p) for p in split.values()) == len(pairs)
    shuffled = pairs[:]
    random.Random(0).shuffle(shuffled)
    again = corpus.split_pairs(shuffled)
    for name in split:
        assert sorted(again[name]) == sorted(split[name])
    # the bucket rule itself
    for en, _ in split["test"][:50]:
        assert int(hashlib.sha1(en.encode()).hexdigest(), 16) % 100 == 0


def test_normalized_protocol_keeps_normalised_sentences_together():
    pairs = [("Go.", "Va !"), ("go.", "Vas-y."), ("GO .", "Bouge !")] + [(f"s{i}.", "x") for i in range(300)]
    split = corpus.split_pairs(pairs, protocol="sha1-normalized")
    names = {n for n, part in split.items() for en, _ in part if corpus.normalize(en) == ["go", "."]}
    assert len(names) == 1
    with pytest.raises(ValueError, match="protocol"):
        corpus.split_of("x", protocol="md5")


@pytest.mark.slow
def test_bundled_corpus_reproduces_the_yardstick_counts(bundled):
    """shared/reference/README.md: 137,792 training pairs, vocab 8,486 / 15,167, 1,009 test sources."""
    _, split = bundled
    train, _ = corpus.tokenize_pairs(split["train"], 10)
    assert len(train) == 137_792
    assert len(Vocab.build(p[0] for p in train)) == 8_486
    assert len(Vocab.build(p[1] for p in train)) == 15_167
    test = corpus.group_references(corpus.tokenize_pairs(split["test"], 10)[0])
    assert len(test) == 1_009
    assert max(len(r) for r in test.values()) > 1  # several references for some


def test_group_references_and_length_filter():
    pairs = [("Hi.", "Salut."), ("Hi.", "Salut !"), ("Hi!", "Salut !"), ("a b c d", "x")]
    kept, dropped = corpus.tokenize_pairs(pairs, max_len=3)
    assert dropped == 1
    refs = corpus.group_references(kept)
    assert refs == {"hi .": ["salut .", "salut !"], "hi !": ["salut !"]}
    assert corpus.tokenize_pairs([(" ", "x")], 10) == ([], 1)  # an empty side is dropped


def test_read_pairs_files_and_errors(tmp_path):
    plain = tmp_path / "p.tsv"
    plain.write_text("Hi.\tSalut.\n\nGo.\tVa !\tCC-BY attribution\n", encoding="utf-8")
    assert corpus.read_pairs(plain) == [("Hi.", "Salut."), ("Go.", "Va !")]
    gz = tmp_path / "p.tsv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert corpus.read_pairs(gz) == corpus.read_pairs(plain)
    bad = tmp_path / "bad.tsv"
    bad.write_text("Hi.\tSalut.\nno tab here\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.tsv:2: expected 'source<TAB>target'"):
        corpus.read_pairs(bad)
    with pytest.raises(UserError, match="not found"):
        corpus.read_pairs(tmp_path / "missing.tsv")
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("Café\tcafé\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        corpus.read_pairs(latin)
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError, match="no sentence pairs"):
        corpus.read_pairs(empty)


def test_vocab_specials_min_freq_unknown_words():
    v = Vocab.build([["b", "a", "a"], ["c", "a", "b"]], min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "<sos>", "<eos>", "a", "b"]
    assert v.encode(["a", "zebra", "b"]) == [4, UNK, 5]
    assert v.decode([4, 1, 5, 3, 4]) == ["a", "<unk>", "b"]
    assert Vocab.build([["b", "a"]], 1) == Vocab.build([["a", "b"]], 1)  # order-free
    with pytest.raises(ValueError):
        Vocab(["a", "b"])
