"""Greedy and beam search: beam 1 is greedy word for word, beam finds a better hypothesis on a
constructed case, <eos> and max_len stop decoding, batches give the same result as one by one."""

import numpy as np
import pytest

from rnnlab.translate.model import EOS, SOS, Seq2Seq, reorder_state
from rnnlab.translate.search import beam_search, greedy_search, length_penalty


class Markov:
    """A decoder whose next-word distribution depends only on the previous word: P[prev]."""

    def __init__(self, P):
        self.logP = np.log(np.asarray(P, float) + 1e-300)

    def step(self, tokens, state):
        return self.logP[tokens], state[: len(tokens)], None

    @staticmethod
    def reorder(state, idx):
        return state[idx]


def seq_logp(m, words):
    prev, total = SOS, 0.0
    for w in words + [EOS]:
        total += m.logP[prev, w]
        prev = w
    return total


def trap():
    """<sos> -> A (0.6) or B (0.4); after A every word is unlikely; after B <eos> is certain."""
    V = 10
    P = np.full((V, V), 1e-9)
    A, B = 4, 5
    P[SOS, A], P[SOS, B] = 0.6, 0.4
    P[A, 6:] = 0.25  # A -> four words, 0.25 each
    P[6:, EOS] = 1.0
    P[B, EOS] = 1.0
    P /= P.sum(1, keepdims=True)
    return Markov(P), A, B


def test_beam_beats_greedy_on_a_constructed_case():
    m, A, B = trap()
    g = greedy_search(m.step, m.reorder, np.zeros(1), 1, 5)[0]
    b = beam_search(m.step, m.reorder, np.zeros(2), 1, 2, 5, alpha=0.0)[0]
    assert g[0] == A and b == [B]
    assert seq_logp(m, b) > seq_logp(m, g)


def test_beam_one_is_greedy_on_a_random_model():
    rng = np.random.default_rng(0)
    model = Seq2Seq(
        20,
        30,
        embedding_size=8,
        hidden_size=12,
        bidirectional=True,
        attention="additive",
        input_feed=True,
        seed=1,
    ).eval()
    model.out.params["weight"] *= 8.0  # peaked distributions and, with a
    model.out.params["bias"][:] = 0.0  # small <eos> bias, varied lengths
    model.out.params["bias"][EOS] = 0.5
    lengths = rng.integers(1, 7, 16)
    src = np.zeros((16, 6), np.int64)
    for n, L in enumerate(lengths):
        src[n, :L] = rng.integers(4, 20, L)
    g = greedy_search(model.step, reorder_state, model.start(src, lengths), 16, 12)
    b = beam_search(model.step, reorder_state, model.start(src, lengths), 16, 1, 12, alpha=0.7)
    assert g == b
    assert len({len(h) for h in g}) > 1  # not a degenerate all-same case
    # batched == one sentence at a time
    for n in range(0, 16, 5):
        one = beam_search(
            model.step, reorder_state, model.start(src[n : n + 1], lengths[n : n + 1]), 1, 3, 12
        )
        many = beam_search(model.step, reorder_state, model.start(src, lengths), 16, 3, 12)
        assert one[0] == many[n]


def test_beam_result_is_the_best_finished_hypothesis_by_exhaustive_search():
    """A small Markov chain with V=5: enumerate every sequence up to length 4."""
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(5) * 0.5, size=5)
    m = Markov(P)
    best_score = -np.inf
    import itertools

    for L in range(0, 4):
        for words in itertools.product([w for w in range(5) if w != EOS], repeat=L):
            s = seq_logp(m, list(words)) / length_penalty(L + 1, 0.5)
            if s > best_score:
                best_score = s
    b = beam_search(m.step, m.reorder, np.zeros(1), 1, 25, 4, alpha=0.5)[0]  # beam >= all paths
    assert seq_logp(m, b) / length_penalty(len(b) + 1, 0.5) == pytest.approx(best_score)


def test_stopping_at_eos_and_max_len():
    V = 6
    P = np.full((V, V), 0.01)
    P[:, 4] = 1.0  # always word 4, never <eos>
    m = Markov(P / P.sum(1, keepdims=True))
    assert greedy_search(m.step, m.reorder, np.zeros(2), 2, 7) == [[4] * 7, [4] * 7]
    assert beam_search(m.step, m.reorder, np.zeros(6), 2, 3, 7)[0] == [4] * 7
    P[4, EOS] = 100.0  # now 4 then <eos>
    m = Markov(P / P.sum(1, keepdims=True))
    assert greedy_search(m.step, m.reorder, np.zeros(1), 1, 7) == [[4]]
    with pytest.raises(ValueError):
        beam_search(m.step, m.reorder, np.zeros(1), 1, 0, 7)
