"""GRU cell in both of its real forms (docs/EQUATIONS.md section 3), forward and backward.

Gate order r, z, n as PyTorch stores them. ``U = weight_ih (3H, I)``, ``W = weight_hh (3H, H)``.
``xg = U x_t + b_ih`` is computed for all steps at once by the time loop.

reset_after=True (cuDNN / PyTorch / Keras default)::

    hg  = W h_{t-1} + b_hh                                  (N, 3H)
    r_t = sigma(xg_r + hg_r)                                reset gate
    z_t = sigma(xg_z + hg_z)                                update gate
    n_t = tanh(xg_n + r_t * hg_n)                           candidate (reset AFTER W_n)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    backward:  dn = dh (1 - z)     dz = dh (h_{t-1} - n)     da_n = dn (1 - n^2)
               dr = da_n * hg_n    da_r = dr r (1 - r)       da_z = dz z (1 - z)
               dxg = [da_r, da_z, da_n]     dhg = [da_r, da_z, r * da_n]
               dh_{t-1} = dh z + W^T dhg    dW = sum_t dhg h_{t-1}^T

reset_after=False (the chapter's form; Cho et al. 2014)::

    r_t = sigma(xg_r + W_r h_{t-1} + b_hr)
    z_t = sigma(xg_z + W_z h_{t-1} + b_hz)
    c_t = tanh(xg_n + W_n (r_t * h_{t-1}) + b_hn)          content (reset BEFORE W_n)
    h_t = z_t * h_{t-1} + (1 - z_t) * c_t     (the chapter's z; PyTorch's n = c)

    backward:  da_c = dh (1 - z) (1 - c^2)     d(rh) = W_n^T da_c
               dr = d(rh) * h_{t-1}            dh_{t-1} = dh z + d(rh) r + W_{rz}^T [da_r, da_z]
               dW_{rz} = sum_t [da_r, da_z] h_{t-1}^T    dW_n = sum_t da_c (r h_{t-1})^T

Shapes: N batch, H hidden.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnlab.nn.functional import sigmoid

N_GATES = 3
N_STATES = 1


class GRUStepCache(NamedTuple):
    h_prev: np.ndarray  # (N, H)
    gates: np.ndarray  # (N, 3H) activated r, z, n
    hn: np.ndarray  # (N, H) reset_after: W_n h + b_hn;  reset_before: r * h_{t-1}


def gru_step_forward(xg, h_prev, W, b_hh, reset_after=True):
    """One GRU step. ``xg (N, 3H) = U x_t + b_ih`` (the time loop computes it for all steps at
    once); ``W (3H, H)``, ``b_hh (3H,)``. Returns ``h (N, H), cache``."""
    H = h_prev.shape[1]
    if reset_after:
        hg = h_prev @ W.T + b_hh  # (N, 3H)  hg = W h_{t-1} + b_hh
        rz = sigmoid(xg[:, : 2 * H] + hg[:, : 2 * H])  # (N, 2H)  [r, z] = sigma(xg_rz + hg_rz)
        r, z = rz[:, :H], rz[:, H:]  # reset gate, update gate
        hn = hg[:, 2 * H :]  # W_n h_{t-1} + b_hn, kept for backward
        n = np.tanh(xg[:, 2 * H :] + r * hn)  # n = tanh(xg_n + r * hg_n)
    else:
        hg = h_prev @ W[: 2 * H].T + b_hh[: 2 * H]  # (N, 2H)  W_rz h_{t-1} + b_rz
        rz = sigmoid(xg[:, : 2 * H] + hg)  # (N, 2H)  [r, z] = sigma(xg_rz + W_rz h_{t-1} + b_rz)
        r, z = rz[:, :H], rz[:, H:]  # reset gate, update gate
        hn = r * h_prev  # r * h_{t-1}, kept for backward
        n = np.tanh(xg[:, 2 * H :] + hn @ W[2 * H :].T + b_hh[2 * H :])  # c = tanh(xg_n + W_n (r h) + b_hn)
    h = (1 - z) * n + z * h_prev  # (N, H)  h_t = (1 - z) * n + z * h_{t-1}
    gates = np.concatenate([r, z, n], axis=1)  # (N, 3H) kept for backward
    return h, GRUStepCache(h_prev, gates, hn)


def gru_step_backward(dh, cache: GRUStepCache, W, reset_after=True):
    """Invert one step. Returns ``dxg (N, 3H), dhg (N, 3H), dh_prev (N, H)``.

    ``dxg`` is the gradient of ``U x + b_ih``; ``dhg`` is what multiplies the operand of
    ``W`` (``h_{t-1}``, or ``r * h_{t-1}`` for the n block when reset_after=False).
    """
    H = dh.shape[1]
    g, h_prev = cache.gates, cache.h_prev
    r, z, n = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
    dn = dh * (1 - z)  # h = (1 - z) * n + z * h_prev
    dz = dh * (h_prev - n)
    dh_prev = dh * z  #   the direct path h_prev -> h
    da_n = dn * (1 - n**2)  # n = tanh(a_n)
    da_z = dz * z * (1 - z)  # z = sigma(a_z)
    if reset_after:
        dr = da_n * cache.hn  # a_n = xg_n + r * hn
        da_r = dr * r * (1 - r)  # r = sigma(a_r)
        dxg = np.concatenate([da_r, da_z, da_n], axis=1)  # (N, 3H)
        dhg = np.concatenate([da_r, da_z, r * da_n], axis=1)  # (N, 3H)  d(W h + b_hh)
        dh_prev = dh_prev + dhg @ W  # hg = W h_{t-1} + b_hh
    else:
        drh = da_n @ W[2 * H :]  # (N, H)  a_n = xg_n + W_n (r h_{t-1}) + b_hn
        da_r = drh * h_prev * r * (1 - r)  # r h_{t-1}, r = sigma(a_r)
        dxg = np.concatenate([da_r, da_z, da_n], axis=1)  # (N, 3H)
        dhg = dxg  # b_hh is additive: the same gradient
        dh_prev = dh_prev + drh * r + dxg[:, : 2 * H] @ W[: 2 * H]  # r h_{t-1} and W_rz h_{t-1}
    return dxg, dhg, dh_prev
