"""Corpus BLEU and chrF with sacrebleu, several references per sentence.

``corpus_scores``: hypotheses and references are space-joined normalised tokens (the
yardstick's protocol, comparable with ``nmt_torch_reference.py``). ``detokenized_bleu``: the
standard way, detokenised hypotheses against the raw reference sentences, sacrebleu's own
tokenisation (13a unless told), its signature reported next to the score.
sacrebleu wants reference *streams* of equal length: a sentence with fewer translations
than the most-translated one repeats its first reference (as the yardstick does), which
leaves BLEU's max-count clipping and closest-length choice unchanged.
"""

from __future__ import annotations

import unicodedata

import sacrebleu


def reference_streams(refs: list[list[str]]) -> list[list[str]]:
    """Per-sentence reference lists -> sacrebleu's streams (R lists of len(refs) strings)."""
    if any(len(r) == 0 for r in refs):
        raise ValueError("every sentence needs at least one reference")
    R = max((len(r) for r in refs), default=1)
    return [[r[k] if k < len(r) else r[0] for r in refs] for k in range(R)]


def corpus_scores(hyps: list[str], refs: list[list[str]]) -> dict:
    """``{"bleu", "chrf", "n_sentences", "n_references", "bleu_detail"}`` of a test set."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} reference sets")
    if not hyps:
        raise ValueError("no sentences to score")
    streams = reference_streams(refs)
    bleu = sacrebleu.corpus_bleu(hyps, streams, force=True)  # tokenised on purpose: no warning
    chrf = sacrebleu.corpus_chrf(hyps, streams)
    return {
        "bleu": round(float(bleu.score), 4),
        "chrf": round(float(chrf.score), 4),
        "n_sentences": len(hyps),
        "n_references": sum(len(r) for r in refs),
        "bleu_detail": str(bleu),
    }


def _closes(tok: str) -> bool:
    return len(tok) == 1 and unicodedata.category(tok) in ("Pe", "Pf", "Po") and tok not in '"¿¡'


def _opens(tok: str) -> bool:
    return len(tok) == 1 and (unicodedata.category(tok) in ("Ps", "Pi") or tok in "¿¡")


def detokenize(tokens: list[str]) -> str:
    """Normalised tokens back to text: no space before closing punctuation (. , ! ? 。 」 » ...)
    or after opening (( ¿ 「 « ...); ``13a`` splits punctuation off again, so the score does not
    hang on typography, and text in scripts without spaces gets its own back."""
    out = ""
    for i, tok in enumerate(tokens):
        if i and not (_closes(tok) or _opens(tokens[i - 1])):
            out += " "
        out += tok
    return out


def detokenized_bleu(hyps: list[str], refs: list[list[str]], lowercase: bool, tokenize: str = "13a") -> dict:
    """``{"bleu", "signature"}``: sacrebleu on detokenised hypotheses (plain text) and raw
    references, case-insensitive when the model was trained lower-cased."""
    from sacrebleu.metrics import BLEU

    metric = BLEU(lowercase=lowercase, tokenize=tokenize)
    score = metric.corpus_score(hyps, reference_streams(refs))
    return {"bleu": round(float(score.score), 4), "signature": str(metric.get_signature())}
