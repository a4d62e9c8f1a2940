"""Subword vocabularies (``--vocab bpe|unigram``): a SentencePiece model trained on the training
part only, behind the interface of the word ``Vocab`` (``itos``, ``encode``, ``decode``, ``units``).

The text is normalised first exactly as for words (``corpus.normalize``: the yardstick's
protocol), so a subword model's output decodes to the same space-joined tokens that BLEU has
always been computed on::

    tokens  --" ".join-->  text  --SentencePiece-->  pieces / ids  --decode-->  text  --split-->  tokens

SentencePiece is told the ids of ``<pad> <unk> <sos> <eos>`` (0-3, as the model expects), not
to normalise again (``identity``: the protocol already did), and to fall back to the UTF-8
bytes of a character it never saw (``byte_fallback``): a subword model never emits ``<unk>``.
The trained model (a protobuf, not a pickle) is saved with the translator.
"""

from __future__ import annotations

import io

from rnnlab.errors import UserError
from rnnlab.translate.model import EOS, PAD, SOS
from rnnlab.translate.vocab import SPECIALS, Vocab, content_ids

KINDS = ("word", "bpe", "unigram")


def _spm():
    try:
        import sentencepiece
    except ImportError:  # pragma: no cover - a dependency of rnnlab
        raise UserError("--vocab bpe/unigram needs sentencepiece: pip install sentencepiece") from None
    return sentencepiece


class SubwordVocab:
    """A trained SentencePiece model as a vocabulary; ``kind`` is "bpe" or "unigram"."""

    def __init__(self, proto: bytes, kind: str):
        self.proto, self.kind = bytes(proto), kind
        self.sp = _spm().SentencePieceProcessor(model_proto=self.proto)
        self.itos = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        if tuple(self.itos[:4]) != SPECIALS:
            raise ValueError(f"a subword model must start with {SPECIALS}, got {self.itos[:4]}")

    def __len__(self):
        return len(self.itos)

    def __eq__(self, other):
        return isinstance(other, SubwordVocab) and self.proto == other.proto

    def encode(self, tokens) -> list[int]:
        """Piece ids of normalised tokens."""
        return self.sp.encode(" ".join(tokens), out_type=int)

    def units(self, tokens) -> list[str]:
        """The pieces the model reads for ``tokens`` (what attention weights are over)."""
        return self.sp.encode(" ".join(tokens), out_type=str)

    def decode(self, ids) -> list[str]:
        """Normalised tokens of piece ids, stopping at ``<eos>``, skipping ``<pad>``/``<sos>``."""
        return self.sp.decode(content_ids(ids)).split()

    def labels(self, ids) -> list[str]:
        """The pieces of output ids (attention rows), ``<eos>`` not included."""
        return [self.itos[i] for i in content_ids(ids)]


def train(sentences, kind: str, vocab_size: int) -> SubwordVocab:
    """A ``kind`` SentencePiece model of at most ``vocab_size`` pieces on normalised token lists
    (the count includes the four specials and the 256 byte pieces)."""
    if kind not in ("bpe", "unigram"):
        raise ValueError(f"subword kind must be bpe or unigram, got {kind!r}")
    text = [" ".join(s) for s in sentences if s]
    if not text:
        raise UserError("no training sentences to learn a subword vocabulary from")
    model = io.BytesIO()
    try:
        _spm().SentencePieceTrainer.train(
            sentence_iterator=iter(text),
            model_writer=model,
            model_type=kind,
            vocab_size=int(vocab_size),
            hard_vocab_limit=False,  # a small corpus gets the pieces it has
            pad_id=PAD,
            unk_id=1,
            bos_id=SOS,
            eos_id=EOS,
            pad_piece=SPECIALS[0],
            unk_piece=SPECIALS[1],
            bos_piece=SPECIALS[2],
            eos_piece=SPECIALS[3],
            byte_fallback=True,
            character_coverage=1.0,
            normalization_rule_name="identity",
            num_threads=1,  # the same model on every run and every MPI rank
            minloglevel=2,
        )
    except RuntimeError as e:  # e.g. --vocab-size too large for a BPE on little data
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        msg = msg.rsplit("] ", 1)[-1]  # sentencepiece's source location and check, left out
        raise UserError(f"cannot learn a {kind} vocabulary of {vocab_size} pieces: {msg}") from None
    return SubwordVocab(model.getvalue(), kind)


def build_vocabs(train_pairs, kind="word", vocab_size=8000, joint=False, min_freq=2):
    """Source and target vocabularies of tokenised training pairs: words seen ``min_freq``
    times, or SentencePiece models (one shared by both sides with ``joint``)."""
    if kind not in KINDS:
        raise ValueError(f"vocab must be one of {KINDS}, got {kind!r}")
    src = [p[0] for p in train_pairs]
    tgt = [p[1] for p in train_pairs]
    if kind == "word":
        return Vocab.build(src, min_freq), Vocab.build(tgt, min_freq)
    if joint:
        both = train(src + tgt, kind, vocab_size)
        return both, both
    return train(src, kind, vocab_size), train(tgt, kind, vocab_size)
