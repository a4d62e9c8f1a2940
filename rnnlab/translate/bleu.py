"""Corpus BLEU and chrF with sacrebleu, several references per sentence.

Hypotheses and references are space-joined normalised tokens (the yardstick's protocol).
sacrebleu wants reference *streams* of equal length: a sentence with fewer translations
than the most-translated one repeats its first reference (as the yardstick does), which
leaves BLEU's max-count clipping and closest-length choice unchanged.
"""

from __future__ import annotations

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
