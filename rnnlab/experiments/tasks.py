"""The two long-memory benchmarks of the LSTM paper, as seeded batch generators.

Adding problem (Hochreiter & Schmidhuber 1997, experiment 4; the variant of Le et al. 2015
and Arjovsky et al. 2016)::

    x_t = (v_t, m_t)     v_t ~ U[0, 1),  m_t = 1 at exactly two steps, else 0
    y   = v_a + v_b      a ~ U{0 .. T/2 - 1},  b ~ U{T/2 .. T - 1}

The first marked number lies in the first half, so the model must carry it at least
T/2 steps. Predicting the constant 1 gives ``E[(v_a + v_b - 1)^2] = Var(v_a + v_b) = 2/12 = 1/6``:
``ADDING_BASELINE_MSE``, the line a model must clearly beat.

Copy (memory) task (Hochreiter & Schmidhuber 1997, experiment 2; Arjovsky et al. 2016)::

    input   s_1 .. s_K   blank x T   go   blank x (K-1)       length K + T + K
    target  (nothing for the first K + T steps)      s_1 .. s_K   on the last K steps

``s_k`` are drawn uniformly from an alphabet of A symbols, so guessing scores ``1 / A``
per symbol (``copy_chance``). Inputs are one-hot: channels ``0 .. A-1`` the symbols,
``A`` the blank, ``A + 1`` the go marker.

Everything is time-major like the layers: T time, N batch, I input, K recalled symbols.
"""

from __future__ import annotations

import numpy as np

ADDING_BASELINE_MSE = 1.0 / 6.0  # MSE of the constant prediction y_hat = 1


def _check_int(name, value, low):
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def adding_problem(n, length, rng, dtype=np.float32):
    """A batch of the adding problem.

    Returns ``x (T, N, 2)`` with channels (value, marker) and ``y (N, 1)``, the sum of the
    two marked values. ``rng`` is a ``np.random.Generator`` (or a seed).
    """
    n, T = _check_int("n", n, 1), _check_int("length", length, 2)
    rng = np.random.default_rng(rng)
    values = rng.random((T, n))  # (T, N)  v_t ~ U[0, 1)
    first = rng.integers(0, T // 2, n)  # (N,)    a in the first half
    second = rng.integers(T // 2, T, n)  # (N,)    b in the second half
    cols = np.arange(n)
    marks = np.zeros((T, n))  # (T, N)  m_t
    marks[first, cols] = 1.0
    marks[second, cols] = 1.0
    x = np.stack([values, marks], axis=2).astype(dtype)  # (T, N, 2)
    y = (values[first, cols] + values[second, cols])[:, None].astype(dtype)  # (N, 1)
    return x, y


def copy_problem(n, delay, rng, n_symbols=8, n_recall=5, dtype=np.float32):
    """A batch of the copy task.

    Returns ``x (K + T + K, N, A + 2)`` one-hot inputs and ``y (K, N)`` integer targets,
    the symbols to reproduce on the last K steps (K = ``n_recall``, T = ``delay``,
    A = ``n_symbols``).
    """
    n, T = _check_int("n", n, 1), _check_int("delay", delay, 0)
    A, K = _check_int("n_symbols", n_symbols, 2), _check_int("n_recall", n_recall, 1)
    rng = np.random.default_rng(rng)
    symbols = rng.integers(0, A, (K, n))  # (K, N)  s_1 .. s_K
    blank, go = A, A + 1
    codes = np.full((K + T + K, n), blank)  # (K+T+K, N) channel per step
    codes[:K] = symbols
    codes[K + T] = go  # "now reproduce"
    x = np.eye(A + 2, dtype=dtype)[codes]  # (K+T+K, N, A+2) one-hot
    return x, symbols.astype(np.int64)


def copy_chance(n_symbols):
    """Per-symbol accuracy of guessing: 1 / A."""
    return 1.0 / n_symbols
