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


def gru_step_forward(xg, h_prev, W_T, b_hh, reset_after=True, *, gates=None, hn=None, h=None, hg=None):
    """One GRU step. xg: (N, 3H) = U x_t + b_ih; W_T: (H, 3H) = ``W.T`` (contiguous is faster).

    Returns ``h (N, H), cache``.
    """
    H = h_prev.shape[1]
    if gates is None:
        gates = np.empty_like(xg)
    if hn is None:
        hn = np.empty_like(h_prev)
    rz = gates[:, : 2 * H]
    if reset_after:
        hg = np.matmul(h_prev, W_T, out=hg)  # (N, 3H)  hg = W h + b_hh
        hg += b_hh
        np.add(xg[:, : 2 * H], hg[:, : 2 * H], out=rz)
        sigmoid(rz, out=rz)  # r, z = sigma(xg + hg)
        r, z = gates[:, :H], gates[:, H : 2 * H]
        hn[...] = hg[:, 2 * H :]  # keep W_n h + b_hn for backward
        n = np.multiply(r, hn, out=gates[:, 2 * H :])  # r * (W_n h + b_hn)
    else:
        np.matmul(h_prev, W_T[:, : 2 * H], out=rz)  # (N, 2H)  W_rz h
        rz += xg[:, : 2 * H]
        rz += b_hh[: 2 * H]
        sigmoid(rz, out=rz)
        r, z = gates[:, :H], gates[:, H : 2 * H]
        np.multiply(r, h_prev, out=hn)  # r * h_{t-1}
        n = np.matmul(hn, W_T[:, 2 * H :], out=gates[:, 2 * H :])  # W_n (r * h)
        n += b_hh[2 * H :]
    n += xg[:, 2 * H :]
    np.tanh(n, out=n)  # n = tanh(...)
    # h = (1 - z) n + z h_prev = n + z (h_prev - n)
    h = np.subtract(h_prev, n, out=h)
    h *= z
    h += n
    return h, GRUStepCache(h_prev, gates, hn)


def gru_step_backward(dh, cache: GRUStepCache, W, reset_after=True, *, dxg=None, dhg=None):
    """Invert one step. Returns ``dxg (N, 3H), dhg (N, 3H), dh_prev (N, H)``.

    ``dxg`` is the gradient of ``U x + b_ih``; ``dhg`` is what multiplies the operand of
    ``W`` (``h_{t-1}``, or ``r * h_{t-1}`` for the n block when reset_after=False).
    """
    H = dh.shape[1]
    g = cache.gates
    r, z, n = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
    if dxg is None:
        dxg = np.empty_like(g)
    da_r, da_z, da_n = dxg[:, :H], dxg[:, H : 2 * H], dxg[:, 2 * H :]
    # h = n + z (h_prev - n):  dz = dh (h_prev - n),  dn = dh (1 - z)
    np.subtract(cache.h_prev, n, out=da_z)
    da_z *= dh
    da_z *= z
    da_z *= 1.0 - z  # da_z = dz z (1 - z)
    np.multiply(n, n, out=da_n)
    np.subtract(1.0, da_n, out=da_n)
    da_n *= dh
    da_n *= 1.0 - z  # da_n = dh (1 - z)(1 - n^2)
    dh_prev = dh * z  # direct path h_prev -> h
    if reset_after:
        if dhg is None:
            dhg = np.empty_like(g)
        # n = tanh(xg_n + r * hn):  dr = da_n * hn,  d(hn) = da_n * r
        np.multiply(da_n, cache.hn, out=da_r)
        da_r *= r
        da_r *= 1.0 - r  # da_r = dr r (1 - r)
        dhg[:, : 2 * H] = dxg[:, : 2 * H]
        np.multiply(da_n, r, out=dhg[:, 2 * H :])
        dh_prev += dhg @ W  # W^T dhg
    else:
        dhg = dxg  # b_hn is additive: same gradient
        drh = da_n @ W[2 * H :]  # d(r h) = W_n^T da_c
        np.multiply(drh, cache.h_prev, out=da_r)
        da_r *= r
        da_r *= 1.0 - r  # da_r = d(rh) h r (1 - r)
        drh *= r
        dh_prev += drh  # d(rh) * r
        dh_prev += dxg[:, : 2 * H] @ W[: 2 * H]  # W_rz^T [da_r, da_z]
    return dxg, dhg, dh_prev
