"""A vocabulary: ``<pad> <unk> <sos> <eos>`` then the training words seen ``min_freq`` times,
sorted (so the ids do not depend on the order of the corpus). Unknown words map to ``<unk>``."""

from __future__ import annotations

from collections import Counter

from rnnlab.translate.model import EOS, PAD, SOS, UNK

SPECIALS = ("<pad>", "<unk>", "<sos>", "<eos>")


class Vocab:
    def __init__(self, itos):
        itos = list(itos)
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {itos[:4]}")
        if len(set(itos)) != len(itos):
            raise ValueError("a vocabulary may not repeat a word")
        self.itos = itos
        self.stoi = {w: i for i, w in enumerate(itos)}

    @classmethod
    def build(cls, sentences, min_freq: int = 2) -> Vocab:
        """From tokenised training sentences (an iterable of token lists)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts = Counter(w for s in sentences for w in s)
        words = sorted(w for w, n in counts.items() if n >= min_freq and w not in SPECIALS)
        return cls(list(SPECIALS) + words)

    def __len__(self):
        return len(self.itos)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.itos == other.itos

    def encode(self, tokens) -> list[int]:
        """Token ids, ``<unk>`` for words not in the vocabulary."""
        return [self.stoi.get(w, UNK) for w in tokens]

    def units(self, tokens) -> list[str]:
        """What the model reads for ``tokens``: the words themselves (attention labels)."""
        return list(tokens)

    def labels(self, ids) -> list[str]:
        """The words of output ids (attention rows), ``<eos>`` not included."""
        return self.decode(ids)

    def decode(self, ids) -> list[str]:
        """Words of ``ids``, stopping at ``<eos>`` and skipping ``<pad>``/``<sos>``."""
        return [self.itos[i] for i in content_ids(ids)]


def content_ids(ids) -> list[int]:
    """``ids`` up to the first ``<eos>``, without ``<pad>`` and ``<sos>``."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS:
            break
        if i not in (PAD, SOS):
            out.append(i)
    return out
