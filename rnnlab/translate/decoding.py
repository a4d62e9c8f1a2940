"""The decoding half of ``Translator``: text in, translations out (greedy or beam search, in
chunks of sentences sorted by length), the attention behind them (``explain``), and the scores
of a test set (``evaluate``: BLEU on normalised tokens, detokenised sacreBLEU with its
signature, chrF, the share of ``<unk>``). A mixin: ``Translator`` holds the fitted state
(``model_``, ``src_vocab_``, ``tgt_vocab_``) and its arguments.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from rnnlab.errors import UserError
from rnnlab.translate import corpus
from rnnlab.translate.batching import pad_sources
from rnnlab.translate.bleu import corpus_scores, detokenize, detokenized_bleu
from rnnlab.translate.ensemble import EnsembleModel
from rnnlab.translate.model import Seq2Seq, reorder_state
from rnnlab.translate.search import beam_search, greedy_search
from rnnlab.translate.subword import SubwordVocab
from rnnlab.translate.truecase import Truecaser
from rnnlab.translate.vocab import Vocab

CHUNK = 256  # sentences decoded together


class Decoding:
    """``translate``, ``explain`` and ``evaluate`` of a fitted translator."""

    # what ``Translator`` holds: the arguments read here ...
    attention: str
    beam_size: int
    length_penalty: float
    lower: bool
    target_lang: str | None
    max_len: int
    max_input_len: int | None
    max_output_len: int | None
    valid_metric: str
    vocab: str
    # ... and the fitted state (set by fit or load)
    model_: Seq2Seq | EnsembleModel
    src_vocab_: Vocab | SubwordVocab
    tgt_vocab_: Vocab | SubwordVocab
    truecaser_: Truecaser | None = None  # None: the text's case as typed, or lower-cased

    def _check_fitted(self) -> None:  # pragma: no cover - Translator's own
        raise NotImplementedError

    # -- translate ------------------------------------------------------------------------
    def _prepare(self, sentences):
        """Normalised token lists; empty ones become None, over-long ones are truncated (warned)."""
        limit = self.max_input_len or 2 * self.max_len
        toks: list[list[str] | None] = []
        empty = cut = 0
        for s in sentences:
            if not isinstance(s, str):
                raise TypeError(f"translate expects strings, got {type(s).__name__}")
            t = corpus.normalize(s, self.lower)
            if self.truecaser_ is not None:
                t = self.truecaser_.source(t)
            if not t:
                empty += 1
                toks.append(None)
                continue
            if len(t) > limit:
                cut += 1
                t = t[:limit]
            toks.append(t)
        if empty:
            warnings.warn(f"{empty} empty or whitespace-only sentence(s): translated as ''", stacklevel=3)
        if cut:
            warnings.warn(
                f"{cut} sentence(s) longer than {limit} tokens were truncated to {limit}", stacklevel=3
            )
        return toks

    def _translate_tokens(self, toks, beam_size=None, length_penalty=None, return_attention=False, n_best=0):
        """Token lists (None = empty) -> output token lists (and attention weights); with
        ``n_best`` K, each sentence's K best ``(tokens, score)`` instead (beam search)."""
        beam = self.beam_size if beam_size is None else int(beam_size)
        alpha = self.length_penalty if length_penalty is None else float(length_penalty)
        if beam < 1:
            raise ValueError(f"beam size must be >= 1, got {beam}")
        model = self.model_
        model.eval()
        reorder = getattr(model, "reorder", reorder_state)  # an ensemble reorders its members'
        out: list[list[str]] = [[] for _ in toks]
        attn: list[Any] = [None for _ in toks]  # (weights, output units) per sentence
        idx = sorted((i for i, t in enumerate(toks) if t), key=lambda i: len(toks[i]))
        for a in range(0, len(idx), CHUNK):
            chunk = idx[a : a + CHUNK]
            src, lengths = pad_sources([self.src_vocab_.encode(toks[i]) for i in chunk])
            per_word = 1 if self.vocab == "word" else 3  # pieces a word may take
            cap = self.max_output_len or max(per_word * self.max_len, int(lengths.max())) + 5
            state = model.start(src, lengths)
            if beam == 1:
                res = greedy_search(
                    model.step, reorder, state, len(chunk), cap, return_attention=return_attention
                )
                hyps, ws = res if return_attention else (res, None)
            else:
                hyps = beam_search(model.step, reorder, state, len(chunk), beam, cap, alpha, n_best=n_best)
                ws = None
            for j, i in enumerate(chunk):
                if n_best:
                    out[i] = [(self.tgt_vocab_.decode(h), float(s)) for s, h in hyps[j]]  # type: ignore[misc]
                    continue
                out[i] = self.tgt_vocab_.decode(hyps[j])
                if ws is not None:
                    attn[i] = (ws[j][:, : lengths[j]], self.tgt_vocab_.labels(hyps[j]))
        return (out, attn) if return_attention else out

    def _text(self, tokens, tokenized: bool) -> str:
        """Output tokens as text people paste (sacremoses, ``target_lang``'s rules) or, with
        ``tokenized``, space-joined as the model writes them (the yardstick's form); a truecased
        model's first word capitalised either way."""
        if self.truecaser_ is not None:
            tokens = self.truecaser_.output(tokens)
        return " ".join(tokens) if tokenized else detokenize(tokens, self.target_lang)

    def translate(
        self, sentences, beam_size=None, length_penalty=None, return_attention=False, tokenized=False
    ):
        """Translate raw strings; returns each sentence's translation as plain text, cased as
        the model was trained and detokenised (``tokenized=True``: the normalised tokens,
        space-joined), and, with ``return_attention``, each sentence's (output words + <eos>,
        source words) attention weights, greedy search only."""
        self._check_fitted()
        if isinstance(sentences, str):
            raise TypeError("translate expects a list of strings; wrap a single sentence in a list")
        toks = self._prepare(list(sentences))
        if return_attention:
            if (beam_size or self.beam_size) != 1:
                raise ValueError("attention weights are returned by greedy search (beam_size=1) only")
            out, attn = self._translate_tokens(toks, 1, return_attention=True)
            return [self._text(o, tokenized) for o in out], [None if a is None else a[0] for a in attn]
        return [self._text(o, tokenized) for o in self._translate_tokens(toks, beam_size, length_penalty)]

    def translate_nbest(self, sentences, n_best: int, beam_size=None, length_penalty=None, tokenized=False):
        """The ``n_best`` best translations of each sentence by beam search (``beam_size`` at least
        ``n_best``), best first: per sentence a list of ``(translation, score)``, score the
        length-normalised log-probability; an empty sentence gets ``[]``."""
        self._check_fitted()
        beam = self.beam_size if beam_size is None else int(beam_size)
        if not 1 <= n_best <= beam or beam < 2:
            raise ValueError(
                f"n_best {n_best} needs a beam search of at least 2 and n_best beams, got beam {beam}"
            )
        toks = self._prepare(list(sentences))
        out = self._translate_tokens(toks, beam, length_penalty, n_best=n_best)
        return [[(self._text(t, tokenized), s) for t, s in o] if o else [] for o in out]

    def explain(self, sentences) -> list[dict | None]:
        """Greedy translations with their attention, per sentence ``{"translation", "source",
        "target", "weights"}``: the units the model reads and writes (words, or subword pieces)
        with ``<eos>`` ending ``target``, and the (target, source) weights; None for an empty
        sentence."""
        self._check_fitted()
        if self.attention == "none":
            raise ValueError("this model has no attention (trained with attention='none')")
        toks = self._prepare(list(sentences))
        outs, attn = self._translate_tokens(toks, 1, return_attention=True)
        res: list[dict | None] = []
        for t, o, a in zip(toks, outs, attn):
            if a is None or t is None:
                res.append(None)
                continue
            w, lab = a
            if self.truecaser_ is not None and self.vocab == "word":
                lab = self.truecaser_.output(lab)  # the words of ``translation``, as it shows them
            src = self.src_vocab_.units(t)[: w.shape[1]]
            text = self._text(o, False)
            res.append({"translation": text, "source": src, "target": lab + ["<eos>"], "weights": w})
        return res

    def _valid_score(self, refs):
        srcs = list(refs)
        hyps = self._translate_tokens([s.split() for s in srcs], beam_size=1)
        return corpus_scores([" ".join(h) for h in hyps], [refs[s] for s in srcs])[self.valid_metric]

    def _test_set(self, pairs) -> dict:
        """The yardstick's test set of raw ``(source, target)`` pairs (those over ``max_len``
        tokens left out, as in training): per source sentence, grouped by its lower-cased
        normalised tokens so that a cased model is scored on the same sentences as every
        earlier one, ``[raw source, the tokens the model reads, lower-cased token
        references, raw references]``."""
        groups: dict[str, list] = {}
        for en, fr, se, sf in corpus.kept_pairs(pairs, self.max_len, self.lower):
            if self.truecaser_ is not None:
                se = self.truecaser_.source(se)
            lc_src = se if self.lower else corpus.normalize(en, True)
            lc_tgt = sf if self.lower else corpus.normalize(fr, True)
            g = groups.setdefault(" ".join(lc_src), [en.strip(), se, [], []])
            g[2].append(" ".join(lc_tgt))
            g[3].append(fr.strip())
        return groups

    def evaluate(self, pairs, beam_size=None, length_penalty=None, n_samples=5, sacrebleu_tokenize="13a"):
        """Corpus scores of raw ``(source, target)`` pairs, every target of a source its
        references (``_test_set``). The headline, ``sacrebleu``: BLEU and chrF of the
        detokenised output as the model writes it (cased unless trained lower-cased) against
        the raw references, with sacrebleu's signatures. Beside it, comparable with earlier
        rounds and ``nmt_torch_reference.py``: ``bleu`` and ``chrf`` on lower-cased normalised
        tokens (the yardstick's protocol), and ``unk_share``, the share of output tokens that
        are ``<unk>``."""
        self._check_fitted()
        groups = self._test_set(list(pairs))
        if not groups:
            raise UserError(f"no evaluation pair has 1..{self.max_len} tokens on both sides")
        rows = list(groups.values())
        t0 = time.time()
        outs = self._translate_tokens([g[1] for g in rows], beam_size, length_penalty)
        seconds = time.time() - t0
        res = corpus_scores([" ".join(h).lower() for h in outs], [g[2] for g in rows])
        texts = [self._text(h, False) for h in outs]
        res["sacrebleu"] = detokenized_bleu(texts, [g[3] for g in rows], self.lower, sacrebleu_tokenize)
        n_out = sum(len(h) for h in outs)
        res["unk_share"] = round(sum(h.count("<unk>") for h in outs) / max(n_out, 1), 5)
        res["vocab"] = self.vocab
        res["cased"] = not self.lower
        res["beam_size"] = self.beam_size if beam_size is None else int(beam_size)
        res["decode_seconds"] = round(seconds, 2)
        res["sentences_per_second"] = round(len(rows) / max(seconds, 1e-9), 1)
        res["samples"] = [
            {"source": g[0], "output": t, "references": g[3]} for g, t in list(zip(rows, texts))[:n_samples]
        ]
        return res
