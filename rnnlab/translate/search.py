"""Greedy and beam search, batched, stopping at <eos>, with a maximum length.

A decoder is two functions (``Seq2Seq.step`` and ``reorder_state`` for the model)::

    step(tokens (B,), state) -> log p (B, V), new state, attention weights (B, S) or None
    reorder(state, idx (B',)) -> the state of rows idx      (drop finished rows, follow beams)

Greedy (the chapter's decoder)::   y_t = argmax_w log p(w | y_<t, x), until <eos> or max_len.

Beam search keeps, for every sentence, the K best partial hypotheses by their summed log p.
Each step scores the K*V one-word extensions and takes the best 2K: an extension ending in
<eos> that ranks within the best K is finished, with the length-normalised score of
Wu et al. (2016), Eq. 14::

    score(Y) = log p(Y | x) / lp(Y),   lp(Y) = ((5 + |Y|) / 6) ** alpha   (|Y| counts <eos>)

and the best K extensions that do not end in <eos> stay live. A sentence is done when it has
K finished hypotheses, or when no live one can still beat its best finished one: log p only
falls as words are added and lp only grows up to lp(max_len), so a live hypothesis' best
possible score is ``log p / lp(max_len)`` (exact for alpha >= 0). At max_len the live
hypotheses are finished as they stand. With K = 1 this is greedy search, word for word.
"""

from __future__ import annotations

import numpy as np

from rnnlab.translate.model import EOS, SOS


def greedy_search(step, reorder, state, batch_size, max_len, sos=SOS, eos=EOS, return_attention=False):
    """Returns ``hyps`` (list of token lists, <eos> removed) and, if asked, for each sentence
    the attention weights of every emitted word, an array (len + 1, S) (<eos> row included)."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    B = batch_size
    out = np.full((B, max_len), eos, np.int64)
    alive = np.arange(B)  # sentences still decoding
    tokens = np.full(B, sos, np.int64)
    weights: list[list[np.ndarray]] = [[] for _ in range(B)]
    for t in range(max_len):
        logp, state, w = step(tokens, state)  # (B_alive, V)
        tok = logp.argmax(axis=1)  # y_t = argmax log p
        out[alive, t] = tok
        if return_attention and w is not None:
            for j, b in enumerate(alive):
                weights[b].append(w[j])
        keep = tok != eos
        if not keep.all():  # drop the rows that just finished
            if not keep.any():
                break
            alive, tok = alive[keep], tok[keep]
            state = reorder(state, np.flatnonzero(keep))
        tokens = tok
    hyps = []
    for b in range(B):
        row = out[b].tolist()
        hyps.append(row[: row.index(eos)] if eos in row else row)
    if return_attention:
        return hyps, [np.array(w) for w in weights]
    return hyps


def length_penalty(n, alpha):
    """lp(n) = ((5 + n) / 6) ** alpha  (Wu et al. 2016)."""
    return ((5.0 + n) / 6.0) ** alpha


def _best_candidates(cand, K, V):
    """The best C = min(2K, K*V) of every row of ``cand`` (n, K*V), best first: C and the
    scores, beams and words, each (n, C)."""
    C = min(2 * K, K * V)
    top = np.argpartition(-cand, C - 1, axis=1)[:, :C]  # the best 2K, unordered
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(cand, top, 1), axis=1), 1)
    top_scores = np.take_along_axis(cand, top, 1)  # (n, 2K) best first
    return C, top_scores, top // V, top % V


def _done(finished, sent, new_scores, K, lp_max):
    """(n,) bool: the sentences with K finished hypotheses, or whose best finished score is at
    least the best live score over lp(max_len), the most a live beam can still reach."""
    best_fin = np.array([max((f[0] for f in finished[s]), default=-np.inf) for s in sent])
    n_fin = np.array([len(finished[s]) for s in sent])
    return (n_fin >= K) | (best_fin >= new_scores.max(axis=1) / lp_max)


def beam_search(step, reorder, state, batch_size, beam_size, max_len, alpha=1.0, sos=SOS, eos=EOS, n_best=0):
    """Returns the best hypothesis of every sentence (token lists, <eos> removed); with
    ``n_best`` K > 0, the K best of every sentence instead, as ``(score, tokens)`` best first
    (score = log p / lp, the length-normalised log-probability the search ranks by)."""
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be >= 1, got {beam_size} and {max_len}")
    if alpha < 0:
        raise ValueError(f"length penalty alpha must be >= 0, got {alpha}")
    N, K = batch_size, beam_size
    state = reorder(state, np.repeat(np.arange(N), K))  # K copies of every sentence
    sent = np.arange(N)  # sentences still searching
    scores = np.full((N, K), -np.inf)  # summed log p of the live beams
    scores[:, 0] = 0.0  # at first one beam: <sos>
    hist = np.zeros((N, K, 0), np.int64)  # the words so far
    tokens = np.full(N * K, sos, np.int64)
    finished: list[list[tuple]] = [[] for _ in range(N)]  # (score / lp, words)
    lp_max = length_penalty(max_len, alpha)
    for t in range(max_len):
        logp, state, _ = step(tokens, state)  # (n*K, V)
        n, V = len(sent), logp.shape[1]
        cand = (scores.reshape(n * K, 1) + logp).reshape(n, K * V)  # (n, K*V)
        C, top_scores, beam, word = _best_candidates(cand, K, V)  # each (n, 2K) best first
        new_scores = np.full((n, K), -np.inf)
        new_beam = np.zeros((n, K), np.int64)
        new_word = np.full((n, K), eos, np.int64)
        last = t == max_len - 1
        for i in range(n):
            b_fin, live = finished[sent[i]], 0
            for rank in range(C):
                s = top_scores[i, rank]
                if not np.isfinite(s):
                    break
                words = hist[i, beam[i, rank]]
                if word[i, rank] == eos:
                    if rank < K:  # only a top-K <eos> finishes
                        b_fin.append((s / length_penalty(t + 1, alpha), words.tolist()))
                elif live < K:
                    new_scores[i, live], new_beam[i, live], new_word[i, live] = (
                        s,
                        beam[i, rank],
                        word[i, rank],
                    )
                    live += 1
                    if last:  # out of room: finish as it stands
                        b_fin.append((s / lp_max, words.tolist() + [int(word[i, rank])]))
        hist = np.concatenate(
            [np.take_along_axis(hist, new_beam[:, :, None], 1), new_word[:, :, None]], axis=2
        )
        if last:
            break
        keep = np.flatnonzero(~_done(finished, sent, new_scores, K, lp_max))
        if len(keep) == 0:
            break
        rows = (keep[:, None] * K + new_beam[keep]).reshape(-1)  # parent rows, (n'*K,)
        state = reorder(state, rows)
        sent, scores, hist = sent[keep], new_scores[keep], hist[keep]
        tokens = new_word[keep].reshape(-1)
    if n_best:
        return [sorted(f, key=lambda x: -x[0])[:n_best] for f in finished]
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]
