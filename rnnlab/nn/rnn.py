"""Plain (Elman) RNN cell: the chapter's starting point, forward and backward.

Forward::

    a   = U x_t + b_ih + W h_{t-1} + b_hh        (N, H)
    h_t = tanh(a)      or relu(a)

Backward::

    da = dh * (1 - h_t^2)     (tanh)   |   dh * [a > 0]   (relu)
    dh_{t-1} = W^T da         dU = sum_t da x_t^T    dW = sum_t da h_{t-1}^T

The repeated product of ``W^T diag(1 - h^2)`` over many steps is what makes the
gradient vanish (or explode): see ``RNNBase.hidden_grad_norms``.
Shapes: N batch, H hidden; ``U = weight_ih (H, I)``, ``W = weight_hh (H, H)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

N_GATES = 1
N_STATES = 1


class RNNStepCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    h: np.ndarray  # (N, H) h_t, which is all backward needs


def rnn_step_forward(xg, h_prev, W_T, b_hh=None, nonlinearity="tanh", *, h=None):
    """One step. xg: (N, H) = U x_t + b_ih (b_hh may be folded in); W_T: (H, H) = ``W.T``.

    Returns ``h, cache``.
    """
    a = np.matmul(h_prev, W_T, out=h)  # W h_{t-1}
    a += xg
    if b_hh is not None:
        a += b_hh
    if nonlinearity == "tanh":
        np.tanh(a, out=a)  # h = tanh(a)
    else:
        np.maximum(a, 0.0, out=a)  # h = relu(a)
    return a, RNNStepCache(h_prev, a)


def rnn_step_backward(dh, cache: RNNStepCache, W, nonlinearity="tanh", *, da=None):
    """Invert one step. Returns ``da (N, H)`` and ``dh_prev (N, H)``."""
    h = cache.h
    if nonlinearity == "tanh":
        da = np.multiply(h, h, out=da)
        np.subtract(1.0, da, out=da)
        da *= dh  # h = tanh(a): da = dh (1 - h^2)
    else:
        da = np.multiply(dh, h > 0, out=da)  # h = relu(a): da = dh [a > 0]
    return da, da @ W  # dh_{t-1} = W^T da
