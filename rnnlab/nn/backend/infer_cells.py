"""The float32 gate math of one inference step of the reduced-precision layers (int8 and bf16:
``int8_loops.py``, ``bf16_loops.py``), on a step's recurrent product already in float32::

    gates (N, G*H) = W h_{t-1} + b_hh              (dequantised int8, or the bf16 product)
    LSTM   i, f, o = sigma(xg + gates), g = tanh(xg_g + gates_g); c = f c + i g; h = o tanh(c)
    GRU    r, z = sigma(xg + gates); n = tanh(xg_n + r gates_n); h = (1 - z) n + z h
    RNN    h = tanh(xg + gates) (or relu)

``xg = U x_t + b_ih``. The equations are ``lstm.py``'s, ``gru.py``'s (PyTorch's GRU) and
``rnn.py``'s; ``kernels.py``'s tanh and sigma. No tape: inference only. Rows past a sequence's
length (``active`` False) keep their state and output 0.
Shapes: N batch, H hidden, G gates.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic

from rnnlab.nn import backend, runtime
from rnnlab.nn.backend import packed, scratch
from rnnlab.nn.backend.kernels import _sigmoid, _tanh, inline, jit
from rnnlab.nn.direction import GRUSpec, LSTMSpec, RNNSpec

_f = np.float32
_ZERO, _ONE = _f(0.0), _f(1.0)
KIND = {LSTMSpec(): 0, GRUSpec(reset_after=True): 1, RNNSpec("tanh"): 2, RNNSpec("relu"): 3}


def checked(status: int, what: str) -> None:
    """A compiled loop's GEMM status: 0, or a ``RuntimeError`` naming oneDNN's ``what`` GEMM."""
    if status != 0:
        raise RuntimeError(f"oneDNN's {what} GEMM failed (status {status})")


NO_CALL = np.zeros(4, np.uint64)  # primitive 0: the GEMM runs


def product_call(matrix, a: np.ndarray, c: np.ndarray) -> tuple:
    """``(exec, keep)``: ``packed.Call.exec`` of ``c = a @ matrix^T`` on these buffers (``c +=``
    for bf16) for ``product``, or ``NO_CALL`` where the packed weights are not usable here;
    ``keep`` holds the call's memory objects (alive while the loop runs)."""
    p = packed.of(matrix)
    call = None if p is None else p.call(a, c)
    return (NO_CALL, None) if call is None else (call.exec, call)


def _call(typingctx, address, args):
    """``f(*args)`` for the C function ``int f(...)`` at ``address`` (an integer), its
    parameters the C types of ``args`` (a tuple: int8 for a char, int64, float32, uint64 for a
    pointer). A ctypes function passed to a compiled function instead is converted at every
    call: 0.9 us each, a fifth of a streaming step."""
    sig = types.int32(address, args)

    def codegen(context, builder, signature, llargs):
        params = [context.get_value_type(t) for t in args.types]
        f = builder.inttoptr(llargs[0], ir.FunctionType(ir.IntType(32), params).as_pointer())
        return builder.call(f, [builder.extract_value(llargs[1], i) for i in range(len(params))])

    return sig, codegen


call: Any = intrinsic(_call)  # typed Any: mypy sees numba's wrapper, not the call's arguments


@jit
def product(ex, e):
    """The packed product ``e`` (``product_call``'s: primitive, stream, number of arguments,
    arguments) through ``ex`` (``dnnl_primitive_execute``'s address): its status."""
    return call(ex, (e[0], e[1], np.int32(e[2]), e[3]))


def row_blocks(N: int, threads: int) -> tuple[int, Any]:
    """``(blocks, local_threads)``: how many row blocks of the batch a loop runs in parallel
    when a step is worth ``threads`` oneDNN threads (``onednn_threads_by_size``), each block on
    one of numba's threads with one oneDNN thread (the float loops' row blocks, ``loops.py``):
    at most one per thread, at least ``min_rows`` rows each, dividing N; else 1. The rows of a
    batch are independent recurrences: no step waits for another thread. (One threaded product
    a step, the gate math on one thread: the (50,32,32,128) int8 LSTM loop 0.62-1.06 ms, in two
    blocks 0.49.)"""
    if threads < 2:
        return 1, None
    pool, local = backend.row_block_threads()
    blocks = min(threads, N // runtime.settings().min_rows, pool)
    while blocks > 1 and N % blocks:
        blocks -= 1
    return (blocks, local) if blocks > 1 else (1, None)


def block_calls(matrix, A: np.ndarray, C: np.ndarray) -> tuple:
    """``product_call`` of each row block ``k`` (``A[k] @ matrix^T -> C[k]``): ``(E (blocks, 4),
    keep)``. With several blocks each gets a primitive for one thread and its own stream."""
    blocks = A.shape[0]
    if blocks == 1:
        e, keep = product_call(matrix, A[0], C[0])
        return e[None], keep
    p = packed.of(matrix)
    lib = backend.library("onednn")
    before = lib.get_threads()
    lib.set_local(1)
    try:
        calls = [None if p is None else p.call(A[k], C[k], p.dnnl.block_stream(k)) for k in range(blocks)]
    finally:
        lib.set_local(before)
    E = np.stack([NO_CALL if call is None else call.exec for call in calls])
    return E, calls


def loop_plan(N: int, blocks: int, make_bufs, products: list) -> tuple:
    """``(bufs, E, keep)`` for a loop over ``N`` rows in ``blocks`` row blocks: the buffers
    ``make_bufs(rows)`` makes (each (blocks, rows, ...), ``rows = packed.rows(N // blocks)`` >= a
    block's rows: the loops use the first N // blocks) and, for each ``(matrix, a, c)`` of
    ``products``, ``block_calls`` on ``bufs[a]`` and ``bufs[c]`` (``E``: one (blocks, 4) array
    each). Kept on the last matrix's packed weight per (rows, blocks, thread, oneDNN threads,
    the products): making the calls' memory objects and scratchpads took 25 us of a 118 us
    (7,7,1,256) LSTM forward. One thread runs one loop at a time, so a thread's plan is never
    in use twice."""
    rows = packed.rows(N // blocks)

    def make() -> tuple:
        bufs = make_bufs(rows)
        made = [block_calls(m, bufs[a], bufs[c]) for m, a, c in products]
        return bufs, [e for e, _ in made], [k for _, k in made]

    p = packed.of(products[-1][0])
    if p is None:
        return make()
    key = (rows, blocks, threading.get_ident(), backend.library("onednn").get_threads(), len(products))
    plan = p.plans.get(key)
    if plan is None:
        if len(p.plans) >= PLANS:  # threads come and go: keep the memory bounded
            p.plans.clear()
        plan = p.plans[key] = make()
    return plan


PLANS = 8  # loop plans kept per weight


def loop_arrays(T: int, states0, mask, H: int) -> tuple:
    """What a direction's compiled loop writes: ``h``, ``c`` (copies of the initial states, C
    order; ``c`` (0, H) without a cell state), ``active`` (T, N) from ``mask`` (T, N, 1) (empty:
    all rows active) and ``out`` (T, N, H) from the pool."""
    h = np.array(states0[0], _f, order="C")
    c = np.array(states0[1], _f, order="C") if len(states0) > 1 else np.zeros((0, H), _f)
    N = h.shape[0]
    active = np.zeros((0, N), np.bool_) if mask is None else np.ascontiguousarray(mask[:, :, 0])
    return h, c, active, scratch.empty((T, N, H), _f)


@jit
def _lstm_cells(gates, xg, h, c, out, active, t):
    """a = xg + gates (i, f, g, o blocks); c = f c + i g; h = o tanh(c), in place; out = h."""
    N, H = h.shape
    for n in range(N):
        if _inactive(active, t, n, out):
            continue
        for j in range(H):
            i_ = _sigmoid(xg[n, j] + gates[n, j])  # i = sigma(a_i)
            f_ = _sigmoid(xg[n, H + j] + gates[n, H + j])  # f = sigma(a_f)
            g_ = _tanh(xg[n, 2 * H + j] + gates[n, 2 * H + j])  # g = tanh(a_g)
            o_ = _sigmoid(xg[n, 3 * H + j] + gates[n, 3 * H + j])  # o = sigma(a_o)
            cc = f_ * c[n, j] + i_ * g_  # c = f c_{t-1} + i g
            c[n, j] = cc
            hh = o_ * _tanh(cc)  # h = o tanh(c)
            h[n, j] = hh
            out[n, j] = hh


@jit
def _gru_cells(gates, xg, h, out, active, t):
    """PyTorch's GRU: r, z = sigma(x + g); n = tanh(x_n + r g_n); h = (1 - z) n + z h."""
    N, H = h.shape
    for n in range(N):
        if _inactive(active, t, n, out):
            continue
        for j in range(H):
            r = _sigmoid(xg[n, j] + gates[n, j])
            u = _sigmoid(xg[n, H + j] + gates[n, H + j])
            nn = _tanh(xg[n, 2 * H + j] + r * gates[n, 2 * H + j])
            hh = (_ONE - u) * nn + u * h[n, j]
            h[n, j] = hh
            out[n, j] = hh


@jit
def _rnn_cells(gates, xg, h, out, active, t, relu):
    """h = tanh(x + g), or relu."""
    N, H = h.shape
    for n in range(N):
        if _inactive(active, t, n, out):
            continue
        for j in range(H):
            v = xg[n, j] + gates[n, j]
            hh = max(v, _ZERO) if relu else _tanh(v)
            h[n, j] = hh
            out[n, j] = hh


@inline
def _inactive(active, t, n, out):
    """Whether row n is past its length at step t (``active`` (T, N); empty: all rows active);
    then its output is 0 (its state stays)."""
    if active.shape[0] == 0 or active[t, n]:
        return False
    out[n, :] = _ZERO
    return True


@jit
def cells(kind, gates, xg, h, c, out, active, t):
    """One step for every row: ``gates`` (N, G*H) = W h_{t-1} + b_hh, ``xg`` (N, G*H); h (and
    c) (N, H) updated in place; out (N, H) = h, or 0 past a row's length (``active`` (T, N),
    empty: all rows active). One compiled loop per cell, its rows indexed, not sliced into
    views for a helper: a (16, 128) LSTM step's gate math took 2.8 us with a helper called on
    each row's views, 2.2 with the rows indexed in one loop over the kinds, ~1.7 in its own."""
    if kind == 0:
        _lstm_cells(gates, xg, h, c, out, active, t)
    elif kind == 1:
        _gru_cells(gates, xg, h, out, active, t)
    else:
        _rnn_cells(gates, xg, h, out, active, t, kind == 3)
