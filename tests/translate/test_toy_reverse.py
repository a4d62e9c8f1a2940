"""The seq2seq machinery proven on a toy task: reverse a sequence of letters (joeynmt's check).

Attention must learn the anti-diagonal alignment; >= 99% exact match on held-out sequences
in under a minute of CPU time on one core (13-16 s here; CPU time, so a busy CI machine does
not fail it). 20 epochs: 100% on seeds 0, 1, 2 with every GEMM library; 15 epochs reached it
with MKL's rounding but 98.5% with oneDNN's on seed 0 (measured, Zen 4 EPYC)."""

import contextlib
import time

import numpy as np

from rnnlab.translate import Translator


def reverse_pairs(rng, n, letters="abcdefghij"):
    pairs = []
    for _ in range(n):
        s = list(rng.choice(list(letters), rng.integers(3, 9)))
        pairs.append((" ".join(s), " ".join(s[::-1])))
    return pairs


@contextlib.contextmanager
def one_blas_thread():
    """One thread for every GEMM: rnnlab's own libraries (``runtime``; oneDNN's OpenMP threads
    are not a "blas" pool to threadpoolctl, and spinning they would count as CPU time) and
    NumPy's BLAS."""
    from rnnlab.nn import runtime

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    with runtime.override(threads=1):
        if threadpool_limits is None:
            yield
            return
        with threadpool_limits(1, user_api="blas"):
            yield


def test_reverse_task_learned_to_99_percent_in_under_a_minute():
    rng = np.random.default_rng(0)
    train, test = reverse_pairs(rng, 6000), reverse_pairs(rng, 300)
    seen = {s for s, _ in train}
    test = [p for p in test if p[0] not in seen]  # held-out sequences only
    t0 = time.process_time()
    with one_blas_thread():  # tiny GEMMs: threads only add overhead
        tr = Translator(
            cell="gru",
            attention="general",
            bidirectional=True,
            hidden_size=64,
            embedding_size=32,
            epochs=20,
            batch_size=32,
            lr=1e-3,
            min_freq=1,
            seed=0,
        ).fit(train)
        hyps = tr.translate([s for s, _ in test])
    seconds = time.process_time() - t0
    exact = np.mean([h == r for h, (_, r) in zip(hyps, test)])
    assert exact >= 0.99, f"exact match {exact:.3f}"
    assert seconds < 60, f"took {seconds:.0f} CPU seconds"
    # the attention of a reversal is (mostly) the anti-diagonal
    (_,), (w,) = tr.translate(["a b c d e f"], return_attention=True)
    assert w.shape == (7, 6)  # 6 words + <eos>, 6 source words
    assert np.mean(w[:6].argmax(1) == np.arange(5, -1, -1)) >= 5 / 6
