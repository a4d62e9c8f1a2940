"""Corpus BLEU and chrF with sacrebleu, several references per sentence.

``corpus_scores``: hypotheses and references are space-joined normalised tokens (the
yardstick's protocol, comparable with ``nmt_torch_reference.py``: lower-cased by ``evaluate``
for every model, so the number compares with earlier rounds). ``detokenized_bleu``: the
standard way and the headline, detokenised cased hypotheses (``detokenize``: sacremoses) against
the raw reference sentences, sacrebleu's own tokenisation (13a unless told), its signature
reported next to the score.
sacrebleu wants reference *streams* of equal length: a sentence with fewer translations
than the most-translated one repeats its first reference (as the yardstick does), which
leaves BLEU's max-count clipping and closest-length choice unchanged.
"""

from __future__ import annotations

import functools

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacremoses import MosesDetokenizer


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


@functools.lru_cache(maxsize=16)
def _detokenizer(lang: str) -> MosesDetokenizer:
    return MosesDetokenizer(lang=lang)


def detokenize(tokens: list[str], lang: str | None = None) -> str:
    """Normalised tokens back to text people can paste, by sacremoses' Moses detokeniser with
    the rules of ``lang`` (an ISO 639-1 code; None: English's): no space before . , ! ? ) or
    after ( ¿ ¡, quotes paired, and French's space before ? ! : ; kept."""
    return _detokenizer(lang or "en").detokenize(list(tokens))


def detokenized_bleu(hyps: list[str], refs: list[list[str]], lowercase: bool, tokenize: str = "13a") -> dict:
    """``{"bleu", "chrf", "signature", "chrf_signature"}``: sacrebleu on detokenised hypotheses
    (plain text) and raw references, cased unless the model was trained lower-cased."""
    streams = reference_streams(refs)
    bleu = BLEU(lowercase=lowercase, tokenize=tokenize)
    chrf = CHRF(lowercase=lowercase)
    return {
        "bleu": round(float(bleu.corpus_score(hyps, streams).score), 4),
        "chrf": round(float(chrf.corpus_score(hyps, streams).score), 4),
        "signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
