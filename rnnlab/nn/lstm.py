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


def lstm_step_forward(xg, h_prev, c_prev, W_T, b_hh=None, *, gates=None, h=None, c=None, tanh_c=None):
    """One LSTM step.

    xg: (N, 4H) input projection ``U x_t + b_ih`` (hoisted out of the time loop);
    W_T: (H, 4H) ``W`` transposed (``W.T``; a contiguous copy makes the GEMM faster).
    ``b_hh`` may be None when the caller folded it into ``xg``.
    Returns ``h (N, H), c (N, H), cache``; the keyword arrays are optional output buffers.
    """
    H = h_prev.shape[1]
    a = np.matmul(h_prev, W_T, out=gates)  # (N, 4H)  W h_{t-1}
    a += xg  # a = U x_t + W h_{t-1} + b
    if b_hh is not None:
        a += b_hh
    sigmoid(a[:, : 2 * H], out=a[:, : 2 * H])  # i, f = sigma(a_i), sigma(a_f)
    np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])  # g = tanh(a_g)
    sigmoid(a[:, 3 * H :], out=a[:, 3 * H :])  # o = sigma(a_o)
    i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    c = np.multiply(f, c_prev, out=c)  # c = f * c_{t-1}
    c += i * g  #     + i * g
    tanh_c = np.tanh(c, out=tanh_c)
    h = np.multiply(o, tanh_c, out=h)  # h = o * tanh(c)
    return h, c, LSTMStepCache(h_prev, c_prev, a, tanh_c)


def lstm_step_backward(dh, dc, cache: LSTMStepCache, W, *, da=None, work=None):
    """Invert one step. ``dh, dc`` (N, H) hold all gradient reaching h_t and c_t.

    Returns ``da (N, 4H)`` (gradient of the pre-activations, for dU, dW, db and dx),
    ``dh_prev (N, H)`` and ``dc_prev (N, H)``. ``dc`` is not modified.
    """
    H = dh.shape[1]
    gates = cache.gates
    i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    if da is None:
        da = np.empty_like(gates)
    if work is None:
        work = np.empty_like(dh)
    dc_t = work
    # h = o * tanh(c)  ->  dc_t = dc + dh * o * (1 - tanh(c)^2)
    np.multiply(cache.tanh_c, cache.tanh_c, out=dc_t)
    np.subtract(1.0, dc_t, out=dc_t)
    dc_t *= o
    dc_t *= dh
    dc_t += dc
    # o: da_o = dh * tanh(c) * o * (1 - o)
    da_o = da[:, 3 * H :]
    np.multiply(dh, cache.tanh_c, out=da_o)
    da_o *= o
    da_o *= 1.0 - o
    # c = f * c_prev + i * g
    da_i, da_f, da_g = da[:, :H], da[:, H : 2 * H], da[:, 2 * H : 3 * H]
    np.multiply(dc_t, g, out=da_i)  # di = dc * g
    da_i *= i
    da_i *= 1.0 - i  # da_i = di * i (1 - i)
    np.multiply(dc_t, cache.c_prev, out=da_f)  # df = dc * c_{t-1}
    da_f *= f
    da_f *= 1.0 - f  # da_f = df * f (1 - f)
    np.multiply(g, g, out=da_g)
    np.subtract(1.0, da_g, out=da_g)
    da_g *= dc_t
    da_g *= i  # da_g = dc * i * (1 - g^2)
    dc_prev = dc_t * f  # dc_{t-1} = dc * f
    dh_prev = da @ W  # dh_{t-1} = W^T da      (N, H)
    return da, dh_prev, dc_prev
