"""Truecasing: the case of the text without the cost of it (Moses's recaser, via sacremoses).

A cased model that reads and writes words as typed learns two of every sentence-initial word
(``Je`` and ``je``, ``Il`` and ``il``) and half the statistics for each: on the bundled
English-French pairs at 25 minutes that cost 5.5 BLEU against a lower-cased model. Moses's
answer, the one this module takes:

    train     each word's *best* case is its most frequent form where its case is informative,
              i.e. not the first word of a sentence (sacremoses ``MosesTruecaser.train``):
              ``tom -> Tom``, ``je -> je``, ``paris -> Paris``
    truecase  every word of the training data and of the input becomes its best form (unknown
              words stay as typed): ``Je vois Tom .`` -> ``je vois Tom .``
    output    the model writes truecased words; the first word of each sentence is capitalised
              (sacremoses ``MosesDetruecaser``) where most training targets start with a capital
              (not, say, in a corpus written in lower case), then the text is detokenised

so the model's vocabulary is about the lower-cased one's (names keep their capital) and its
output is cased text. The fitted state is each side's list of best forms (a form's lower-case
is its key) and whether to capitalise, saved in ``translator.json``.
"""

from __future__ import annotations

from typing import Any

from sacremoses import MosesDetruecaser, MosesTruecaser

MAX_WORDS = 2_000_000  # a saved truecaser's size bound, each side (a model file is checked on load)
_DETRUECASER = MosesDetruecaser()


class Truecaser:
    """Each side's best case per word (``src``, ``tgt``: ``{lower-cased form: best form}``),
    and whether the output's first word is capitalised (``capitalize``)."""

    def __init__(self, src_forms, tgt_forms, capitalize: bool = True):
        self.src = self._table(src_forms, "src")
        self.tgt = self._table(tgt_forms, "tgt")
        if not isinstance(capitalize, bool):
            raise ValueError("truecase['capitalize'] must be true or false")
        self.capitalize = capitalize

    @staticmethod
    def _table(forms, side: str) -> dict[str, str]:
        forms = list(forms)
        if len(forms) > MAX_WORDS or not all(isinstance(w, str) and w for w in forms):
            raise ValueError(f"truecase[{side!r}] must be a list of at most {MAX_WORDS} words")
        table = {w.lower(): w for w in forms}
        if len(table) != len(forms):
            raise ValueError(f"truecase[{side!r}] holds two forms of one word")
        return table

    @classmethod
    def fit(cls, tok_pairs) -> Truecaser:
        """The best forms of both sides of normalised ``(source tokens, target tokens)`` pairs."""
        tok_pairs = list(tok_pairs)
        sides = []
        for k in (0, 1):
            model = MosesTruecaser().train([p[k] for p in tok_pairs], processes=1)
            sides.append(sorted(model["best"].values()))
        firsts = [next((w for w in t if any(c.isalpha() for c in w)), "") for _, t in tok_pairs]
        capitals = sum(w[:1].isupper() for w in firsts)
        return cls(sides[0], sides[1], capitalize=capitals > len(firsts) / 2)

    def forms(self) -> dict[str, Any]:
        """What ``translator.json`` keeps: each side's best forms, sorted, and ``capitalize``."""
        return {
            "src": sorted(self.src.values()),
            "tgt": sorted(self.tgt.values()),
            "capitalize": self.capitalize,
        }

    def __eq__(self, other) -> bool:
        return isinstance(other, Truecaser) and self.forms() == other.forms()

    @staticmethod
    def _apply(table: dict[str, str], tokens: list[str]) -> list[str]:
        return [table.get(t.lower(), t) for t in tokens]  # truecase.perl's rule: the best form, if known

    def source(self, tokens: list[str]) -> list[str]:
        return self._apply(self.src, tokens)

    def target(self, tokens: list[str]) -> list[str]:
        return self._apply(self.tgt, tokens)

    def output(self, tokens: list[str]) -> list[str]:
        """The output's case restored: the first word of each sentence capitalised where the
        training targets start so (``MosesDetruecaser``; the others are in their best form)."""
        return _DETRUECASER.detruecase(" ".join(tokens)) if tokens and self.capitalize else list(tokens)

    def pairs(self, tok_pairs):
        """``(source, target)`` token pairs, both sides truecased."""
        return [(self.source(s), self.target(t)) for s, t in tok_pairs]


def from_meta(meta: dict) -> Truecaser | None:
    """The truecaser a model file holds under ``"truecase"`` (None: the model was not truecased);
    ``ValueError`` if it is malformed."""
    forms = meta.get("truecase")
    if forms is None:
        return None
    if not isinstance(forms, dict) or set(forms) != {"src", "tgt", "capitalize"}:
        raise ValueError("truecase must be an object with 'src', 'tgt' and 'capitalize'")
    if not all(isinstance(forms[k], list) for k in ("src", "tgt")):
        raise ValueError("truecase['src'] and truecase['tgt'] must be lists")
    return Truecaser(forms["src"], forms["tgt"], forms["capitalize"])
