"""The compiled time loops of the quantised layers: ``quantize.direction_forward`` in one call
per direction (the LSTM, PyTorch's GRU and the Elman RNN; the chapter's GRU, whose second product
needs ``r * h`` quantised in mid-step, runs the reference loop).

Per step, for the batch's rows (``quantize.py`` has the formulas)::

    quantize_rows(h_{t-1}) -> hq uint8, s, z       one pass over the rows (min, max, round)
    acc = hq @ Wq^T                                oneDNN's matmul on the packed Wq (``packed.py``),
                                                   else dnnl_gemm_u8s8s32, called from here
    gates = s s_w (acc - z colsum) + b_hh          dequantised
    the cell's gates on xg_t + gates, h_t, c_t in place (``infer_cells.py``)

``x_t`` of all steps is quantised and multiplied once before the loop (``input_gates``), as
in the float loops. Rows past a sequence's length (``active`` False) keep their state and
output 0. This module imports numba: ``quantize.compiled_loops`` loads it by name on first use.
Shapes: T time, N batch, K input, H hidden, G gates.
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.backend import onednn_threads_by_size as threads_by_size
from rnnlab.nn.backend import packed, scratch
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
from rnnlab.nn.backend.intgemm import gemm as int_gemm
from rnnlab.nn.backend.kernels import jit, parallel
from rnnlab.nn.backend.loops import _one_thread, _restore, prange
from rnnlab.nn.direction import CellSpec

_f = np.float32
_ZERO, _ONE, _MAXQ = _f(0.0), _f(1.0), _f(255.0)
_N, _F = np.int8(ord("N")), np.int8(ord("F"))
_SIGN, _INF_BITS = np.int32(-(2**31)), np.int32(0x7F800000)


def supports(spec: CellSpec) -> bool:
    return spec in KIND


@jit
def quantize_rows(a, q, s, z):
    """Each row of ``a (M, K)`` (C-contiguous) to uint8 on its own scale: ``q (M, K)``, ``s
    (M,)``, ``z (M,)`` as ``quantize.quantize_rows`` (a row with NaN or inf gets scale NaN).
    Three passes over all rows, each indexing the rows (a compiled call on each row's view
    cost ~50 ns a row: 0.8 of 0.8 us for 16 rows of 32)."""
    M, K = a.shape
    b, sb, zf = a.view(np.int32), s.view(np.int32), z.view(_f)
    for m in range(M):
        # max(row, 0) and -min(row, 0) as float32 bit patterns: an integer max over the bits,
        # which vectorises where a float min/max without fast-math NaN rules does not.
        # Non-negative floats order as their bits; v ^ sign is -v's bits. A NaN or inf of
        # either sign makes one of them >= the bits of inf.
        hi, neg_lo = np.int32(0), np.int32(0)
        for k in range(K):
            v = b[m, k]
            hi = max(hi, v)
            neg_lo = max(neg_lo, v ^ _SIGN)
        sb[m], z[m] = hi, neg_lo  # bits, until the next pass
    for m in range(M):
        if max(sb[m], z[m]) >= _INF_BITS:  # NaN or inf: NaN outputs downstream
            s[m], z[m] = np.nan, 0
            continue
        hi, lo = s[m], -zf[m]
        sc = (hi - lo) / _MAXQ if hi > lo else _ONE
        s[m], z[m] = sc, np.int32(np.rint(-lo * (_ONE / sc)))  # zero point in [0, 255]
    for m in range(M):
        if np.isnan(s[m]):
            q[m, :] = 0
            continue
        inv, zp = _ONE / s[m], _f(z[m])
        for k in range(K):
            r = np.rint(a[m, k] * inv) + zp
            q[m, k] = np.uint8(min(max(r, _ZERO), _MAXQ))


@jit
def _igemm(gemm, aq, bq, acc, co):
    """acc (M, R) int32 = aq (M, K) uint8 @ bq (K, R) int8, exact; the status (0: done)."""
    M, K = aq.shape
    R = bq.shape[1]
    A, B, C = aq.ctypes.data, bq.ctypes.data, acc.ctypes.data
    args = (_N, _N, _F, M, R, K, _ONE, A, K, np.uint8(0), B, R, np.int8(0), _ZERO, C, R, co.ctypes.data)
    return call(gemm, args)


@jit
def dequantize(acc, s, z, colsum, sw, bias, out):
    """out (M, R) = s[m] s_w[r] (acc - z[m] colsum[r]) + bias[r]. The difference is the exact
    sum of (q - z) w, which fits int32: computed in int32 (wrapping), not numba's int64."""
    M, R = acc.shape
    for m in range(M):
        sm, zm = s[m], z[m]
        for r in range(R):
            out[m, r] = _f(np.int32(acc[m, r] - zm * colsum[r])) * sm * sw[r] + bias[r]


@jit
def _times(gemm, ex, e, aq, bq, acc, co):
    """acc = aq @ bq: the packed product ``e`` where it is set (``e[0]``, its primitive), else
    the GEMM; the status."""
    return product(ex, e) if e[0] != 0 else _igemm(gemm, aq, bq, acc, co)


@jit
def loop(kind, gemm, ex, e, wq, colsum, sw, b_hh, XG, h, c, out, active, hq, s, z, acc, gates, co, r0, r1):
    """All T steps of the batch rows r0:r1: XG (T, N, G*H) = U x_t + b_ih; h, c (N, H) the
    states (in place); out (T, N, H); ``e``: the packed product ``hq @ Wq^T -> acc``
    (``infer_cells.product_call``, on all rows of hq, acc); the buffers hq ... gates have at
    least r1 - r0 rows. Returns the first non-zero GEMM status, or 0."""
    m = r1 - r0
    hh, cc, act = h[r0:r1], c[r0:r1], active[:, r0:r1]  # c (0, H): no cell state
    hq, s, z, acc_m, gates = hq[:m], s[:m], z[:m], acc[:m], gates[:m]
    for t in range(XG.shape[0]):
        quantize_rows(hh, hq, s, z)
        status = _times(gemm, ex, e, hq, wq, acc_m, co)
        if status != 0:
            return status
        dequantize(acc_m, s, z, colsum, sw, b_hh, gates)  # W h_{t-1} + b_hh
        cells(kind, gates, XG[t][r0:r1], hh, cc, out[t][r0:r1], act, t)
    return 0


@jit
def _fused(kind, gemm, ex, eu, ew, U, W, b_ih, b_hh, x, h, c, out, active, bx, bh, co, r0, r1):
    """``loop`` for the rows r0:r1 with ``U x_t + b_ih`` made as it goes (no (T, N, G*H) array
    of input gates): x (T, N, K); ``U``, ``W``: (qT, colsum, scale); ``eu``, ``ew``: their packed
    products; ``bx``, ``bh``: (q, s, z, acc, gates) for x_t's rows and h_{t-1}'s. ``bx`` holds the
    rows of ``len(bx[0]) // (r1 - r0)`` steps (``chunk``): their input product is one call."""
    m = r1 - r0  # the buffers' first m rows (the packed products run on all of them)
    hh, cc, act = h[r0:r1], c[r0:r1], active[:, r0:r1]  # c (0, H): no cell state
    xq, sx, zx, accx, xg = bx
    hq, s, z, acc, gates = bh[0][:m], bh[1][:m], bh[2][:m], bh[3][:m], bh[4][:m]
    steps, T = max(xq.shape[0] // m, 1), x.shape[0]
    for t0 in range(0, T, steps):
        n = (min(t0 + steps, T) - t0) * m  # this chunk's rows of x
        for k in range(0, n, m):
            quantize_rows(x[t0 + k // m][r0:r1], xq[k : k + m], sx[k : k + m], zx[k : k + m])
        status = _times(gemm, ex, eu, xq, U[0], accx, co)
        if status != 0:
            return status
        dequantize(accx[:n], sx[:n], zx[:n], U[1], U[2], b_ih, xg[:n])  # U x_t + b_ih
        for k in range(0, n, m):
            t = t0 + k // m
            quantize_rows(hh, hq, s, z)
            status = _times(gemm, ex, ew, hq, W[0], acc, co)
            if status != 0:
                return status
            dequantize(acc, s, z, W[1], W[2], b_hh, gates)  # W h_{t-1} + b_hh
            cells(kind, gates, xg[k : k + m], hh, cc, out[t][r0:r1], act, t)
    return 0


@parallel
def _fused_rows(kind, gemm, ex, EU, EW, U, W, b_ih, b_hh, x, h, c, out, active, BX, BH, co, local):
    """``_fused`` in row blocks, each on its own thread with one oneDNN thread (``loops.py``'s
    row blocks): block k's products ``EU[k]``, ``EW[k]``, its buffers ``BX[i][k]``, ``BH[i][k]``;
    the largest status."""
    blocks = EU.shape[0]
    m = h.shape[0] // blocks
    status = np.zeros(blocks, np.int32)
    for k in prange(blocks):
        before = _one_thread(local)
        bx = (BX[0][k], BX[1][k], BX[2][k], BX[3][k], BX[4][k])
        bh = (BH[0][k], BH[1][k], BH[2][k], BH[3][k], BH[4][k])
        r0, r1 = k * m, (k + 1) * m
        status[k] = _fused(
            kind, gemm, ex, EU[k], EW[k], U, W, b_ih, b_hh, x, h, c, out, active, bx, bh, co, r0, r1
        )
        _restore(local, before)
    return status.max()


_GEMM: dict = {}


def _gemm():
    g = int_gemm()
    if "f" not in _GEMM:
        _GEMM["f"], _GEMM["co"] = g.address(), np.zeros(1, np.int32)
    return _GEMM["f"], _GEMM["co"]


@jit
def _input_gates(gemm, x2, qT, colsum, sw, bias, xq, s, z, acc, out, co):
    """out = x2 @ U^T + bias in one call: quantise the rows, the int8 product, dequantise."""
    quantize_rows(x2, xq, s, z)
    status = _igemm(gemm, xq, qT, acc, co)
    if status == 0:
        dequantize(acc, s, z, colsum, sw, bias, out)
    return status


def input_gates(U, x2, bias):
    """``x2 (M, K) @ U^T + bias`` through the int8 product: (M, G*H) float32."""
    M, K = x2.shape
    R = U.qT.shape[1]
    xq, s, z = scratch.empty((M, K), np.uint8), np.empty(M, _f), np.empty(M, np.int32)
    acc = scratch.empty((M, R), np.int32)
    out = scratch.empty((M, R), _f)  # pooled: fresh big arrays fault in page by page
    f, co = _gemm()
    status = _input_gates(
        f, np.ascontiguousarray(x2, _f), U.qT, U.colsum, U.scale, bias, xq, s, z, acc, out, co
    )
    checked(status, "integer")
    return out


def chunk(rows: int, G: int) -> int:
    """How many steps' input products a row block makes in one call: as many as keep their int32
    products and float32 gates within ``CHUNK_BYTES``, at least one."""
    return max(1, CHUNK_BYTES // (rows * G * 8))


# One block on one thread, us a step for 1 / 2 / 4 / 8 steps a call (2-core AMD EPYC, LSTM):
# 16 rows, I 32, H 128: 8.04 / 7.62 / 7.56 / 7.40 (16: 7.66); 32 rows, 128 -> 256: 41.6 / 40.3 /
# 40.8 / 41.9; 32 rows, 256 -> 512: 133.6 / 129.3 / 129.5 / 131.6. 512 KB (within a core's L2)
# gives those 8, 2 and 1 steps a call.
CHUNK_BYTES = 512 * 1024


def _buffers(B: int, m: int, K: int, G: int) -> tuple:
    """A loop's buffers, each (B, m, ...): uint8 rows of width K, their scales and zero points, the
    int32 product and the float32 gates (G wide)."""
    kinds = (((K,), np.uint8), ((), _f), ((), np.int32), ((G,), np.int32), ((G,), _f))
    return tuple(np.empty((B, m, *shape), t) for shape, t in kinds)


def direction_forward(spec: CellSpec, x, states0, U, W, b_ih, b_hh, mask, *, threads=1):
    """``quantize.direction_forward``, compiled: ``(out (T, N, H), final states)``; with
    ``threads`` (the step's oneDNN count) maybe in row blocks (``infer_cells.row_blocks``): each
    block then makes its own input gates a few steps at a time (``_fused``, ``chunk``: no
    T N x G array, and the input product runs on both threads)."""
    T, N, K = x.shape
    (G, H), kind = W.q.shape, KIND[spec]
    x = np.ascontiguousarray(x, _f)
    h, c, active, out = loop_arrays(T, states0, mask, H)
    f, co = _gemm()
    B, local = row_blocks(N, threads)
    if B > 1:
        bufs, (EU, EW), keep = loop_plan(
            N,
            B,
            lambda rows: _buffers(B, rows * chunk(rows, G), K, G) + _buffers(B, rows, H, G),
            [(U, 0, 3), (W, 5, 8)],
        )
        mats = (U.qT, U.colsum, U.scale), (W.qT, W.colsum, W.scale)
        state = (x, h, c, out, active, bufs[:5], bufs[5:], co, local)
        status = _fused_rows(kind, f, packed.execute_address(), EU, EW, *mats, b_ih, b_hh, *state)
    else:
        XG = input_gates(U, x.reshape(T * N, K), b_ih).reshape(T, N, -1)
        bufs, (E,), keep = loop_plan(N, 1, lambda rows: _buffers(1, rows, H, G), [(W, 0, 3)])
        w = (W.qT, W.colsum, W.scale, b_hh, XG, h, c, out, active)
        status = loop(kind, f, packed.execute_address(), E[0], *w, *(b[0] for b in bufs), co, 0, N)
    del keep  # held to here: another thread may clear the plans (and their calls) meanwhile
    checked(status, "integer")
    return out, ([h, c] if len(states0) > 1 else [h])


def directions_forward(jobs: list) -> list:
    """``direction_forward`` of each job (one layer's directions), one after the other with all
    of oneDNN's threads, maybe in row blocks. (Both at once, on two threads with one-thread
    GEMMs, ran the (20,64,256,256) L2 bidirectional rows 16-21% slower on a 2-core EPYC.)"""
    spec, x, _, U, W = jobs[0][:5]
    with threads_by_size(x.shape[1] * W.qT.shape[1] * (x.shape[2] + W.qT.shape[0])) as n:  # N G H (K + H)
        return [direction_forward(*job, threads=n) for job in jobs]


@jit
def _step(x, h, c, kind, gemm, ex, eu, ew, U, W, b_ih, b_hh, bx, bh, out, active, co):
    """One time step of one layer, ``U x + b_ih`` included, in one call (``_fused`` on one
    step): ``h`` (and ``c``) updated in place; the rest: ``step_plan``'s."""
    N = x.shape[0]
    return _fused(kind, gemm, ex, eu, ew, U, W, b_ih, b_hh, x.reshape((1, N, x.shape[1])), h, c, out, active,
                  bx, bh, co, 0, N)  # fmt: skip


def step_plan(spec: CellSpec, U, W, b_ih, b_hh, N: int) -> tuple:
    """Everything ``step`` passes on but the data, for up to ``packed.rows(N)`` rows and this
    thread's OpenMP count (a stepping cell keeps it between steps: the Python around a 7 us step
    was half its time); the last item keeps the packed products' memory objects alive."""
    (K, G), H = U.qT.shape, W.qT.shape[0]
    bufs, (EU, EW), keep = loop_plan(
        N, 1, lambda rows: _buffers(1, rows, K, G) + _buffers(1, rows, H, G), [(U, 0, 3), (W, 5, 8)]
    )
    rows = bufs[0].shape[1]
    bx, bh = tuple(b[0] for b in bufs[:5]), tuple(b[0] for b in bufs[5:])
    f, co = _gemm()
    mats = (U.qT, U.colsum, U.scale), (W.qT, W.colsum, W.scale)
    extra = (np.empty((1, rows, H), _f), np.zeros((0, rows), np.bool_))  # out, active (all rows)
    return (
        KIND[spec],
        f,
        packed.execute_address(),
        EU[0],
        EW[0],
        *mats,
        b_ih,
        b_hh,
        bx,
        bh,
        *extra,
        co,
        keep,
    )


def step(plan: tuple, x, h, c) -> None:
    """One step of a unidirectional layer on ``x (N, K)``: ``h``, ``c`` (N, H) C-contiguous
    float32, updated in place (``c`` (0, H) for a GRU or RNN); ``plan``: ``step_plan``'s, made
    with the threads the caller sets here (``backend.onednn_threads_by_size``)."""
    status = _step(x, h, c, *plan[:-1])
    checked(status, "integer")
