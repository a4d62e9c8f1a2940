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


def rnn_step_forward(xg, h_prev, W, b_hh, nonlinearity="tanh"):
    """One step. ``xg (N, H) = U x_t + b_ih``; ``W (H, H)``, ``b_hh (H,)``. Returns ``h, cache``."""
    a = xg + h_prev @ W.T + b_hh  # (N, H)  a = U x_t + b_ih + W h_{t-1} + b_hh
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)  # h = tanh(a)  or relu(a)
    return h, RNNStepCache(h_prev, h)


def rnn_step_backward(dh, cache: RNNStepCache, W, nonlinearity="tanh"):
    """Invert one step. Returns ``da (N, H)`` and ``dh_prev (N, H)``."""
    h = cache.h
    da = dh * (1 - h**2) if nonlinearity == "tanh" else dh * (h > 0)  # tanh: 1 - h^2;  relu: [a > 0]
    dh_prev = da @ W  # (N, H)  a = ... + W h_{t-1}
    return da, dh_prev
