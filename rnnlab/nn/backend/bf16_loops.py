"""The compiled time loops of the bf16 layers: ``quantize.direction_forward`` in one call per
direction (the LSTM, PyTorch's GRU and the Elman RNN; the chapter's GRU, whose second product
needs ``r * h`` in mid-step, runs the reference loop).

Per step, for the batch's rows (``quantize.py`` has the formulas)::

    to_bf16(h_{t-1}) -> hb                 one pass over the rows (round to nearest even)
    gates = b_hh;  gates += hb @ Wb^T      oneDNN's matmul on the packed Wb (``packed.py``), else
                                           dnnl_gemm_bf16bf16f32 (beta = 1), from here
    the cell's gates on xg_t + gates, h_t, c_t in place (``infer_cells.py``)

``x_t`` of all steps is rounded and multiplied once before the loop (``input_gates``), as in
the float loops. The state and every sum stay float32. This module imports numba:
``quantize.compiled_loops`` loads it by name on first use.
Shapes: T time, N batch, K input, H hidden, G gates.
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.backend import onednn_threads_by_size as threads_by_size
from rnnlab.nn.backend import packed, scratch
from rnnlab.nn.backend.bf16gemm import gemm as bf16_gemm
from rnnlab.nn.backend.infer_cells import (
    KIND,
    call,
    cells,
    checked,
    loop_arrays,
    loop_plan,
    product,
    row_blocks,
)
from rnnlab.nn.backend.kernels import jit, parallel
from rnnlab.nn.backend.loops import _one_thread, _restore, prange
from rnnlab.nn.direction import CellSpec

_f = np.float32
_ONE = _f(1.0)
_N = np.int8(ord("N"))
_HALF_ULP, _LOW, _ABS, _INF, _QUIET = (np.uint32(v) for v in (0x7FFF, 1, 0x7FFFFFFF, 0x7F800000, 0x40))


def supports(spec: CellSpec) -> bool:
    return spec in KIND


@jit
def to_bf16(a, out):
    """``a`` (M, K) float32 C-contiguous -> ``out`` (M, K) uint16 as ``bf16gemm.to_bf16``."""
    u = a.reshape(a.size).view(np.uint32)
    o = out.reshape(out.size)
    for k in range(u.shape[0]):
        v = u[k]
        if (v & _ABS) > _INF:  # NaN: keep it a quiet NaN
            o[k] = np.uint16((v >> 16) | _QUIET)
        else:
            o[k] = np.uint16((v + _HALF_ULP + ((v >> 16) & _LOW)) >> 16)


@jit
def _fill(bias, out):
    """Every row of ``out`` (M, R) = ``bias`` (R,) (an element loop: the row-slice assignment
    ran 7x slower)."""
    M, R = out.shape
    for m in range(M):
        for r in range(R):
            out[m, r] = bias[r]


@jit
def _bgemm(gemm, ab, bb, c):
    """c (M, R) += ab (M, K) bf16 @ bb (K, R) bf16; the status (0: done)."""
    M, K = ab.shape
    R = bb.shape[1]
    return call(gemm, (_N, _N, M, R, K, _ONE, ab.ctypes.data, K, bb.ctypes.data, R, _ONE, c.ctypes.data, R))


@jit
def _times(gemm, ex, e, ab, bb, c):
    """c += ab @ bb: the packed product ``e`` where it is set (``e[0]``), else the GEMM."""
    return product(ex, e) if e[0] != 0 else _bgemm(gemm, ab, bb, c)


@jit
def loop(kind, gemm, ex, e, wb, b_hh, XG, h, c, out, active, hb, gates, r0, r1):
    """All T steps of the batch rows r0:r1: XG (T, N, G*H) = U x_t + b_ih; h, c (N, H) the
    states (in place); out (T, N, H); ``e``: the packed product ``gates += hb @ Wb^T``
    (``infer_cells.product_call``, on all rows of hb, gates); hb, gates have at least r1 - r0
    rows. Returns the first non-zero GEMM status, or 0."""
    m = r1 - r0
    hh, cc, act = h[r0:r1], c[r0:r1], active[:, r0:r1]  # c (0, H): no cell state
    hb, gates = hb[:m], gates[:m]  # the packed product runs on all rows of both
    for t in range(XG.shape[0]):
        to_bf16(hh, hb)
        _fill(b_hh, gates)
        status = _times(gemm, ex, e, hb, wb, gates)  # gates = W h_{t-1} + b_hh
        if status != 0:
            return status
        cells(kind, gates, XG[t][r0:r1], hh, cc, out[t][r0:r1], act, t)
    return 0


@jit
def _fused(kind, gemm, ex, eu, ew, ub, wb, b_ih, b_hh, x, h, c, out, active, bx, bh, r0, r1):
    """``loop`` for the rows r0:r1 with ``U x_t + b_ih`` made at each step (as
    ``int8_loops._fused``): x (T, N, K); ``eu``, ``ew``: the packed products by ``ub``, ``wb``;
    ``bx``, ``bh``: (bf16 rows, gates) for x_t's rows and h_{t-1}'s."""
    m = r1 - r0  # the buffers' first m rows (the packed products run on all of them)
    hh, cc, act = h[r0:r1], c[r0:r1], active[:, r0:r1]  # c (0, H): no cell state
    (xb, xg), (hb, gates) = (bx[0][:m], bx[1][:m]), (bh[0][:m], bh[1][:m])
    for t in range(x.shape[0]):
        to_bf16(x[t][r0:r1], xb)
        _fill(b_ih, xg)
        status = _times(gemm, ex, eu, xb, ub, xg)  # U x_t + b_ih
        if status != 0:
            return status
        to_bf16(hh, hb)
        _fill(b_hh, gates)
        status = _times(gemm, ex, ew, hb, wb, gates)  # W h_{t-1} + b_hh
        if status != 0:
            return status
        cells(kind, gates, xg, hh, cc, out[t][r0:r1], act, t)
    return 0


@parallel
def _fused_rows(kind, gemm, ex, EU, EW, ub, wb, b_ih, b_hh, x, h, c, out, active, BX, BH, local):
    """``_fused`` in row blocks, each on its own thread with one oneDNN thread (as
    ``int8_loops._fused_rows``); the largest status."""
    blocks = EU.shape[0]
    m = h.shape[0] // blocks
    status = np.zeros(blocks, np.int32)
    for k in prange(blocks):
        before = _one_thread(local)
        bx, bh = (BX[0][k], BX[1][k]), (BH[0][k], BH[1][k])
        args = (ub, wb, b_ih, b_hh, x, h, c, out, active, bx, bh, k * m, (k + 1) * m)
        status[k] = _fused(kind, gemm, ex, EU[k], EW[k], *args)
        _restore(local, before)
    return status.max()


_GEMM: dict = {}


def _gemm():
    if "f" not in _GEMM:
        _GEMM["f"] = bf16_gemm().address()
    return _GEMM["f"]


def input_gates(U, x2, bias):
    """``x2 (M, K) @ U^T + bias`` through the bf16 product: (M, G*H) float32."""
    M, K = x2.shape
    xb = scratch.empty((M, K), np.uint16)
    to_bf16(np.ascontiguousarray(x2, _f), xb)
    out = scratch.empty((M, U.bT.shape[1]), _f)  # pooled: fresh big arrays fault in page by page
    _fill(bias, out)
    return bf16_gemm()(xb, U.bT, out, beta=1.0)


def _buffers(B: int, rows: int, K: int, G: int) -> tuple:
    """A loop's buffers, each (B, rows, ...): bf16 rows of width K and the float32 gates."""
    return np.empty((B, rows, K), np.uint16), np.empty((B, rows, G), _f)


def direction_forward(spec: CellSpec, x, states0, U, W, b_ih, b_hh, mask, *, threads=1):
    """``quantize.direction_forward``, compiled: ``(out (T, N, H), final states)``; with
    ``threads`` (the step's oneDNN count) maybe in row blocks, each making its own input gates
    step by step (``int8_loops.direction_forward``'s blocks take a few steps a call)."""
    T, N, K = x.shape
    (H, G), kind = W.bT.shape, KIND[spec]
    x = np.ascontiguousarray(x, _f)
    h, c, active, out = loop_arrays(T, states0, mask, H)
    B, local = row_blocks(N, threads)

    if B > 1:
        bufs, (EU, EW), keep = loop_plan(
            N, B, lambda rows: _buffers(B, rows, K, G) + _buffers(B, rows, H, G), [(U, 0, 1), (W, 2, 3)]
        )
        state = (x, h, c, out, active, bufs[:2], bufs[2:], local)
        status = _fused_rows(kind, _gemm(), packed.execute_address(), EU, EW, U.bT, W.bT, b_ih, b_hh, *state)
    else:
        XG = input_gates(U, x.reshape(T * N, K), b_ih).reshape(T, N, -1)
        bufs, (E,), keep = loop_plan(N, 1, lambda rows: _buffers(1, rows, H, G), [(W, 0, 1)])
        w = (W.bT, b_hh, XG, h, c, out, active)
        status = loop(kind, _gemm(), packed.execute_address(), E[0], *w, bufs[0][0], bufs[1][0], 0, N)
    del keep  # held to here: another thread may clear the plans (and their calls) meanwhile
    checked(status, "bf16")
    return out, ([h, c] if len(states0) > 1 else [h])


def directions_forward(jobs: list) -> list:
    """``direction_forward`` of each job (one layer's directions), one after the other with all
    of oneDNN's threads, maybe in row blocks (as ``int8_loops.directions_forward``)."""
    spec, x, _, U, W = jobs[0][:5]
    with threads_by_size(x.shape[1] * W.bT.shape[1] * (x.shape[2] + W.bT.shape[0])) as n:  # N G H (K + H)
        return [direction_forward(*job, threads=n) for job in jobs]


@jit
def _step(x, h, c, kind, gemm, ex, eu, ew, ub, wb, b_ih, b_hh, bx, bh, out, active):
    """One time step of one layer, ``U x + b_ih`` included, in one call (``_fused`` on one
    step): ``h`` (and ``c``) updated in place; the rest: ``step_plan``'s."""
    N = x.shape[0]
    xs = x.reshape((1, N, x.shape[1]))
    return _fused(kind, gemm, ex, eu, ew, ub, wb, b_ih, b_hh, xs, h, c, out, active, bx, bh, 0, N)


def step_plan(spec: CellSpec, U, W, b_ih, b_hh, N: int) -> tuple:
    """Everything ``step`` passes on but the data, for up to ``packed.rows(N)`` rows and this
    thread's OpenMP count (a stepping cell keeps it); the last item keeps the packed products'
    memory alive."""
    (K, G), H = U.bT.shape, W.bT.shape[0]
    bufs, (EU, EW), keep = loop_plan(
        N, 1, lambda rows: _buffers(1, rows, K, G) + _buffers(1, rows, H, G), [(U, 0, 1), (W, 2, 3)]
    )
    rows = bufs[0].shape[1]
    bx, bh = (bufs[0][0], bufs[1][0]), (bufs[2][0], bufs[3][0])
    extra = (np.empty((1, rows, H), _f), np.zeros((0, rows), np.bool_))  # out, active (all rows)
    return (
        KIND[spec],
        _gemm(),
        packed.execute_address(),
        EU[0],
        EW[0],
        U.bT,
        W.bT,
        b_ih,
        b_hh,
        bx,
        bh,
        *extra,
        keep,
    )


def step(plan: tuple, x, h, c) -> None:
    """One step of a unidirectional layer on ``x (N, K)``: ``h``, ``c`` (N, H) C-contiguous
    float32, updated in place (``c`` (0, H) for a GRU or RNN); ``plan``: ``step_plan``'s, made
    with the threads the caller sets here (``backend.onednn_threads_by_size``)."""
    status = _step(x, h, c, *plan[:-1])
    checked(status, "bf16")
