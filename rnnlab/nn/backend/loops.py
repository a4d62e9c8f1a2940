"""The compiled time loops: one per cell, forward and backward, the GEMM passed in.

Each function is ``recurrent.py``'s time loop for one cell, with the step's gate math from
``kernels.py`` and the step's recurrent GEMM called from compiled code: one call per direction
instead of a few Python-level calls per step, whose overhead was most of a small layer's time.

The matrix product is a parameter: ``gemm = (compute, sgemm, dnnl)`` from ``gemm.py`` (MKL's
``cblas_sgemm_compute``, which also takes a packed B, a plain ``cblas_sgemm``, or oneDNN's
``dnnl_sgemm``; one is set, the others are None and numba compiles their calls away), and
each weight operand is ``(pointer, transb, ldb)`` (``gemm.Operand.operand``). ``active``
(T, N) is False past a sequence's length (forward: a (0, N) array when every sequence is full);
the state is then carried unchanged, as in ``recurrent.direction_forward``. ``r0, r1``: the
rows of the batch this call runs (row blocks: ``*_rows`` run several on their own threads).
Shapes: T time, N batch, H hidden.
"""

from __future__ import annotations

import numba
import numpy as np

from rnnlab.nn.backend.kernels import (
    gru_backward,
    gru_backward_r,
    gru_backward_zn,
    gru_forward,
    gru_forward_n,
    gru_forward_rz,
    jit,
    lstm_backward,
    lstm_cell,
    parallel,
)

_ROW_MAJOR, _NO_TRANS = 101, 111
_CHAR_N, _CHAR_T = np.int8(ord("N")), np.int8(ord("T"))
_ZERO, _ONE = np.float32(0.0), np.float32(1.0)
prange = numba.prange


@jit
def _gemm(compute, sgemm, dnnl, a, W, out, beta):
    """out (M, Nc) = a (M, K) @ B + beta out, rows of a and out unit-stride; ``W = (pointer,
    transb, ldb)`` of B. Of ``compute`` (MKL), ``sgemm`` (cblas) and ``dnnl`` (oneDNN) one is
    set; the calls of the others (None) are compiled away."""
    M, K = a.shape
    Nc = out.shape[1]
    A, C, lda, ldc = a.ctypes.data, out.ctypes.data, a.strides[0] // 4, out.strides[0] // 4
    if compute is not None:
        compute(_ROW_MAJOR, _NO_TRANS, W[1], M, Nc, K, A, lda, W[0], W[2], beta, C, ldc)
    if sgemm is not None:
        sgemm(_ROW_MAJOR, _NO_TRANS, W[1], M, Nc, K, _ONE, A, lda, W[0], W[2], beta, C, ldc)
    if dnnl is not None:
        tb = _CHAR_N if W[1] == _NO_TRANS else _CHAR_T
        dnnl(_CHAR_N, tb, M, Nc, K, _ONE, A, lda, W[0], W[2], beta, C, ldc)


@jit
def _carry_inactive(active, t, dst, src, r0):
    """Rows past their length keep the previous state: dst[n] = src[n] where not active
    (dst, src: rows r0, r0 + 1, ... of the batch)."""
    if active.shape[0] > 0:
        for n in range(dst.shape[0]):
            if not active[t, r0 + n]:
                dst[n, :] = src[n, :]


# ----------------------------------------------------------------------------- LSTM
@jit
def lstm_forward(gemm, Wp, XG, b, h, c, tanh_c, active, keep, r0, r1):
    """All T steps for the batch rows r0:r1: h, c (T+1, N, H) with h[0], c[0] set on entry;
    XG (T, N, 4H) holds U x_t (no biases) on entry. Each step's GEMM adds W h_{t-1} onto
    XG[t] in place (beta = 1: one buffer, one pass less over the gates), and ``lstm_cell``
    activates it. ``keep`` (training): XG ends as the activated gates of every step and
    tanh_c (T, N, H) is filled; else (inference_mode) only h and c are written.
    (Row ranges, not sliced 3-D arrays: ``a[t, r0:r1]`` stays C-contiguous for Numba, a 3-D
    slice would not, and the non-contiguous kernels run much slower.)"""
    for t in range(XG.shape[0]):
        a, k = XG[t, r0:r1], t if keep else 0
        _gemm(gemm[0], gemm[1], gemm[2], h[t, r0:r1], Wp, a, _ONE)  # U x_t + W h_{t-1}
        lstm_cell(a, b, c[t, r0:r1], h[t + 1, r0:r1], c[t + 1, r0:r1], tanh_c[k, r0:r1], keep)
        _carry_inactive(active, t, h[t + 1, r0:r1], h[t, r0:r1], r0)
        _carry_inactive(active, t, c[t + 1, r0:r1], c[t, r0:r1], r0)


@jit
def lstm_backward_loop(gemm, Wp, dh, dc, dh_prev, dout, gates, c, tanh_c, active, da, dh_sq, r0, r1):
    """All T steps of ``lstm_backward`` for the batch rows r0:r1, from t = T-1 down to 0
    (c: the (T+1, N, H) states). dh, dc hold dL/dh_T, dL/dc_T on entry; returns True when
    dL/dh_0 ended in dh (else in dh_prev: one swap per step) and leaves dL/dc_0 in dc."""
    dh, dh_prev, dc = dh[r0:r1], dh_prev[r0:r1], dc[r0:r1]
    for t in range(da.shape[0] - 1, -1, -1):
        d = da[t, r0:r1]
        lstm_backward(
            dh,
            dout[t, r0:r1],
            dc,
            gates[t, r0:r1],
            c[t, r0:r1],
            tanh_c[t, r0:r1],
            active[t, r0:r1],
            d,
            dh_sq[t, r0:r1],
        )
        _gemm(gemm[0], gemm[1], gemm[2], d, Wp, dh_prev, _ZERO)  # dh_{t-1} = W^T da
        _carry_inactive(active, t, dh_prev, dh, r0)  # past the length
        dh, dh_prev = dh_prev, dh
    return da.shape[0] % 2 == 0


# ----------------------------------------------------------------------------- row blocks
# The rows of a batch are independent recurrences: with several threads, instead of one
# threaded GEMM per step (the gate math serial, a fork/join every step), the batch is cut into
# ``blocks`` equal row blocks and each runs the loop above on its own thread (numba's OpenMP
# layer: the same libgomp pool as MKL's, and PyTorch's when it finds that libgomp loaded), one
# GEMM thread inside each (``local_threads``: where OpenMP allows nesting, the library may
# otherwise start a nested team inside ours, several times slower). ``Wp`` is packed for
# N // blocks rows. The same arithmetic row by row (a GEMM on fewer rows may round a last bit
# differently; tests/nn/test_backend.py compares with one block). A library without a
# thread-local count (``local_threads`` None) runs them with its global count set to 1.
@jit
def _one_thread(local_threads):
    if local_threads is not None:
        return local_threads(1)
    return 0


@jit
def _restore(local_threads, before):
    if local_threads is not None:
        local_threads(before)


@parallel
def lstm_forward_rows(gemm, Wp, XG, b, h, c, tanh_c, active, keep, blocks, local_threads):
    m = XG.shape[1] // blocks
    for k in prange(blocks):
        before = _one_thread(local_threads)
        lstm_forward(gemm, Wp, XG, b, h, c, tanh_c, active, keep, k * m, (k + 1) * m)
        _restore(local_threads, before)


@parallel
def lstm_backward_rows(
    gemm, Wp, dh, dc, dh_prev, dout, gates, c, tanh_c, active, da, dh_sq, blocks, local_threads
):
    m = dh.shape[0] // blocks
    for k in prange(blocks):
        before = _one_thread(local_threads)
        lstm_backward_loop(
            gemm, Wp, dh, dc, dh_prev, dout, gates, c, tanh_c, active, da, dh_sq, k * m, (k + 1) * m
        )
        _restore(local_threads, before)
    return da.shape[0] % 2 == 0


@parallel
def probe(a):
    """A trivial parallel loop: starts numba's thread pool (backend/compiled.py)."""
    for k in prange(a.shape[0]):
        a[k] += 1


# ----------------------------------------------------------------------------- GRU
@jit
def gru_forward_loop(gemm, W1, W2, XG, b_ih, b_hh, h, gates, hn, active, ts, reset_after):
    """All T steps: h (T+1, N, H), h[0] set; XG (T, N, 3H) = U x_t. reset_after: W1 is all of
    W (one GEMM, W h_{t-1}); else W1 = W_rz and W2 = W_n (two GEMMs: W_rz h_{t-1}, then
    W_n (r h_{t-1})). ``ts`` = 1: gates, hn are (T, ...) and keep every step; 0: one step's
    buffers, overwritten each step (inference_mode: nothing is kept for backward)."""
    H = h.shape[2]
    for t in range(XG.shape[0]):
        k = t * ts
        if reset_after:
            _gemm(gemm[0], gemm[1], gemm[2], h[t], W1, gates[k], _ZERO)  # W h_{t-1}
            gru_forward(gates[k], XG[t], b_ih, b_hh, h[t], hn[k], h[t + 1])
        else:
            _gemm(gemm[0], gemm[1], gemm[2], h[t], W1, gates[k][:, : 2 * H], _ZERO)  # W_rz h_{t-1}
            gru_forward_rz(gates[k], XG[t], b_ih, b_hh, h[t], hn[k])
            _gemm(gemm[0], gemm[1], gemm[2], hn[k], W2, gates[k][:, 2 * H :], _ZERO)  # W_n (r h_{t-1})
            gru_forward_n(gates[k], XG[t], b_ih, b_hh, h[t], h[t + 1])
        _carry_inactive(active, t, h[t + 1], h[t], 0)


@jit
def gru_backward_loop(gemm, W1, W2, dh, carry, drh, dout, gates, h, hn, active, dxg, dhg, dh_sq, reset_after):
    """All T steps back, t = T-1 .. 0. dh holds the GEMM's part of dL/dh_t (W^T dhg_{t+1}),
    carry the direct path; on return dL/dh_0 = dh + carry. reset_after: W1 = W (3H, H);
    else W1 = W_rz (2H, H), W2 = W_n (H, H) and drh (N, H) is scratch for d(r h)."""
    H = h.shape[2]
    for t in range(dxg.shape[0] - 1, -1, -1):
        if reset_after:
            gru_backward(dh, carry, dout[t], gates[t], h[t], hn[t], active[t], dxg[t], dhg[t], dh_sq[t])
            _gemm(gemm[0], gemm[1], gemm[2], dhg[t], W1, dh, _ZERO)  # W^T dhg
        else:
            gru_backward_zn(dh, carry, dout[t], gates[t], h[t], active[t], dxg[t], dh_sq[t])
            _gemm(gemm[0], gemm[1], gemm[2], dxg[t][:, 2 * H :], W2, drh, _ZERO)  # d(r h) = W_n^T da_c
            gru_backward_r(drh, gates[t], h[t], dxg[t], carry)
            _gemm(gemm[0], gemm[1], gemm[2], dxg[t][:, : 2 * H], W1, dh, _ZERO)  # W_rz^T [da_r, da_z]


@jit
def gemm_repeat(compute, sgemm, dnnl, a, W, out, n):
    """``n`` times ``out = a @ B``: the step product as the loops call it (tuning.py times it)."""
    for _ in range(n):
        _gemm(compute, sgemm, dnnl, a, W, out, _ZERO)
