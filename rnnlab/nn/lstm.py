"""LSTM cell: the chapter's equations (docs/EQUATIONS.md sections 1-2), forward and backward.

Forward, for one step (gate order i, f, g, o as PyTorch stores them)::

    a   = U x_t + b_ih + W h_{t-1} + b_hh          (N, 4H)  pre-activations
    i_t = sigma(a_i)        input gate
    f_t = sigma(a_f)        forget gate
    g_t = tanh(a_g)         candidate state
    o_t = sigma(a_o)        output gate
    c_t = f_t * c_{t-1} + i_t * g_t                 cell state, the memory
    h_t = o_t * tanh(c_t)                           hidden state

Backward (exact BPTT; dh, dc already hold the gradient from step t+1)::

    do   = dh * tanh(c_t)
    dc  += dh * o_t * (1 - tanh(c_t)^2)
    di   = dc * g_t      df = dc * c_{t-1}      dg = dc * i_t
    da_{i,f,o} = d{i,f,o} * s * (1 - s)         da_g = dg * (1 - g_t^2)
    dh_{t-1} = W^T da    dc_{t-1} = dc * f_t
    dU = sum_t da_t x_t^T   dW = sum_t da_t h_{t-1}^T   db = sum_t da_t   (one GEMM each,
    done by the time loop in ``recurrent.py`` after the loop)

Shapes: N batch, H hidden, I input. ``U = weight_ih (4H, I)``, ``W = weight_hh (4H, H)``.
Source: Hochreiter & Schmidhuber (1997); Gers et al. (2000) for the forget gate.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnlab.nn.functional import sigmoid

N_GATES = 4
N_STATES = 2  # (h, c)


class LSTMStepCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    gates: np.ndarray  # (N, 4H) activated i, f, g, o
    tanh_c: np.ndarray  # (N, H)


def lstm_step_forward(xg, h_prev, c_prev, W, b_hh):
    """One LSTM step. ``xg (N, 4H) = U x_t + b_ih`` (the time loop computes it for all steps at
    once); ``W (4H, H)``, ``b_hh (4H,)``. Returns ``h (N, H), c (N, H), cache``."""
    H = h_prev.shape[1]
    a = xg + h_prev @ W.T + b_hh  # (N, 4H)  a = U x_t + b_ih + W h_{t-1} + b_hh
    s = sigmoid(a)  # (N, 4H)  sigma of every gate's a; i, f and o use theirs
    i, f, o = s[:, :H], s[:, H : 2 * H], s[:, 3 * H :]  # i = sigma(a_i), f = sigma(a_f), o = sigma(a_o)
    g = np.tanh(a[:, 2 * H : 3 * H])  # (N, H)  g = tanh(a_g)
    c = f * c_prev + i * g  # (N, H)  c_t = f * c_{t-1} + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c  # (N, H)  h_t = o * tanh(c_t)
    gates = np.concatenate([i, f, g, o], axis=1)  # (N, 4H) kept for backward
    return h, c, LSTMStepCache(h_prev, c_prev, gates, tanh_c)


def lstm_step_backward(dh, dc, cache: LSTMStepCache, W):
    """Invert one step. ``dh, dc (N, H)`` hold all gradient reaching h_t and c_t.

    Returns ``da (N, 4H)`` (the gradient of the pre-activations, for dU, dW, db and dx),
    ``dh_prev (N, H)`` and ``dc_prev (N, H)``.
    """
    H = dh.shape[1]
    gates, tanh_c = cache.gates, cache.tanh_c
    i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    do = dh * tanh_c  # h = o * tanh(c)
    dc = dc + dh * o * (1 - tanh_c**2)  #   and through tanh(c)
    di = dc * g  # c = f * c_prev + i * g
    df = dc * cache.c_prev
    dg = dc * i
    da_i = di * i * (1 - i)  # i = sigma(a_i)
    da_f = df * f * (1 - f)  # f = sigma(a_f)
    da_g = dg * (1 - g**2)  # g = tanh(a_g)
    da_o = do * o * (1 - o)  # o = sigma(a_o)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (N, 4H)
    dh_prev = da @ W  # (N, H)  a = ... + W h_{t-1}
    dc_prev = dc * f  # (N, H)  c = f * c_{t-1} + ...
    return da, dh_prev, dc_prev
