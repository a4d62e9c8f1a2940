"""The one time loop: layers, directions, inter-layer dropout and variable lengths.

Every cell (``rnn.py``, ``lstm.py``, ``gru.py``) provides a step forward and a step
backward; this file runs them over time. For speed the work that does not depend on
the recurrence is taken out of the loop:

    XG = X U^T + b_ih              one GEMM for all T steps before the loop   (T, N, G*H)
    dU = dXG^T X,  dx = dXG U      one GEMM each after the backward loop
    dW = dHG^T H_prev              one GEMM after the backward loop

Reverse direction: the input is reversed *within each sequence's length*, the same
forward loop runs, and the output is reversed back, so a cell never knows its direction.
Variable lengths (right-padded): past a sequence's length the state is carried
unchanged and the output is zero, which is what ``pack_padded_sequence`` gives.
Shapes: T time, N batch, I input, H hidden, D directions (1 or 2), L layers.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnlab.nn import blas, fused, gru, lstm, rnn, scratch
from rnnlab.nn.module import Module, is_inference_mode_enabled


# ----------------------------------------------------------------------------- kernels
# A kernel adapts one cell's step functions to the loop's sequence buffers:
#   S[k]  (T+1, N, H)  state k (h, and c for the LSTM) before/after each step
#   ws    per-step caches, (T, ...) arrays
#   dXG   (T, N, G*H)  gradient of U x_t + b_ih;  dHG: gradient of W's product
# The LSTM and GRU kernels also have ``*_fused`` steps (float32 with numba, fused.py): the
# GEMMs stay here, the biases and gate math run in one compiled pass per step. Their
# caches are the same; their backward keeps its own gradient buffers ``g`` (see fused.py).
# Their GEMMs multiply by weights packed once per sequence (``pack_forward``/``pack_backward``,
# blas.Packed: MKL's packed GEMM when the ``mkl`` wheel is installed, else np.matmul).


class _LSTMKernel:
    n_gates, n_states, fold_b_hh = lstm.N_GATES, lstm.N_STATES, True
    fused_group = "lstm"                    # fused.py has its steps
    row_blocks = True                       # and parallel row-block loops

    class WS(NamedTuple):
        gates: np.ndarray   # (T, N, 4H) i, f, g, o
        tanh_c: np.ndarray  # (T, N, H)

    def __init__(self, **_):
        pass

    def alloc(self, T, N, H, dtype, empty=np.empty):
        return self.WS(empty((T, N, 4 * H), dtype), empty((T, N, H), dtype))

    def forward(self, t, xg, S, ws, W_T, b_hh):
        lstm.lstm_step_forward(xg, S[0][t], S[1][t], W_T, None, gates=ws.gates[t],
                               h=S[0][t + 1], c=S[1][t + 1], tanh_c=ws.tanh_c[t])

    def backward(self, t, dS, S, ws, W, dXG, dHG, work):
        cache = lstm.LSTMStepCache(S[0][t], S[1][t], ws.gates[t], ws.tanh_c[t])
        _, dh_prev, dc_prev = lstm.lstm_step_backward(dS[0], dS[1], cache, W, da=dXG[t], work=work)
        return [dh_prev, dc_prev]

    def pack_forward(self, W_T, N, T):
        return blas.Packed(W_T, N, T)

    def pack_backward(self, W, N, T):
        return blas.Packed(W, N, T)

    def forward_fused(self, t, xg, S, ws, P, b_ih, b_hh):
        gates = P.matmul(S[0][t], ws.gates[t])            # (N, 4H) W h_{t-1}
        fused.lstm_forward(gates, xg, b_ih, b_hh, S[1][t], S[0][t + 1], S[1][t + 1], ws.tanh_c[t])

    def forward_seq(self, P, XG, S, b_ih, b_hh, active, keep, blocks=1):
        """The whole loop compiled (fused.lstm_forward_seq; in ``blocks`` parallel row blocks
        when > 1), or None without MKL. Returns the step caches: XG itself becomes the gate
        buffer (the GEMMs add W h onto U x)."""
        gemm, Wp = blas.compute_fn(), P.operand
        if gemm is None or Wp is None:
            return None
        T, N, H = XG.shape[0], XG.shape[1], S[0].shape[2]
        tanh_c = scratch.empty((T if keep else 1, N, H), XG.dtype)
        b = np.add(b_ih, b_hh, out=scratch.empty(b_ih.shape, XG.dtype))
        args = (gemm, Wp, XG, b, S[0], S[1], tanh_c, active, keep)
        if blocks > 1:
            fused.set_parallel_threads(blocks)
            fused.lstm_forward_rows(*args, blocks, blas.local_threads_fn())
        else:
            fused.lstm_forward_seq(*args, 0, N)
        return self.WS(XG, tanh_c)

    def fused_grads(self, dS):
        return [dS[0], dS[1], scratch.empty(dS[0].shape, dS[0].dtype)]  # dh, dc, next dh

    def backward_seq(self, P, g, dout, active, S, ws, dXG, dHG, dh_sq, blocks=1):
        gemm, Wp = blas.compute_fn(), P.operand
        if gemm is None or Wp is None:
            return False
        dh, dc, other = g
        args = (gemm, Wp, dh, dc, other, dout, ws.gates, S[1], ws.tanh_c, active, dXG, dh_sq)
        if blocks > 1:
            fused.set_parallel_threads(blocks)
            in_dh = fused.lstm_backward_rows(*args, blocks, blas.local_threads_fn())
        else:
            in_dh = fused.lstm_backward_seq(*args, 0, dh.shape[0])
        g[0], g[2] = (dh, other) if in_dh else (other, dh)
        return True

    def backward_fused(self, t, g, dout_t, active, keep, S, ws, P, dXG, dHG, dh_sq):
        dh, dc, dh_prev = g
        fused.lstm_backward(dh, dout_t, dc, ws.gates[t], S[1][t], ws.tanh_c[t], active, dXG[t], dh_sq)
        P.matmul(dXG[t], dh_prev)                           # dh_{t-1} = W^T da
        if keep is not None:
            np.copyto(dh_prev, dh, where=keep)              # past the length: passes through
        g[0], g[2] = dh_prev, dh

    def fused_dstates(self, g):
        return g[:2]

    def shares_dhg(self):
        return True

    def grad_W(self, dHG, S, ws, mm=np.matmul):
        H = S[0].shape[2]
        return _tn(dHG, S[0][:-1], H, mm)


class _GRUKernel:
    n_gates, n_states, fold_b_hh = gru.N_GATES, gru.N_STATES, False
    fused_group = "gru"                    # fused.py has its steps
    row_blocks = False

    class WS(NamedTuple):
        gates: np.ndarray  # (T, N, 3H) r, z, n
        hn: np.ndarray     # (T, N, H) W_n h + b_hn  or  r * h_{t-1}
        hg: np.ndarray     # (N, 3H) scratch for W h + b_hh

    def __init__(self, reset_after=True, **_):
        self.reset_after = reset_after

    def alloc(self, T, N, H, dtype, empty=np.empty):
        return self.WS(empty((T, N, 3 * H), dtype), empty((T, N, H), dtype),
                       scratch.empty((N, 3 * H), dtype))

    def forward(self, t, xg, S, ws, W_T, b_hh):
        gru.gru_step_forward(xg, S[0][t], W_T, b_hh, self.reset_after, gates=ws.gates[t],
                             hn=ws.hn[t], h=S[0][t + 1], hg=ws.hg)

    def backward(self, t, dS, S, ws, W, dXG, dHG, work):
        cache = gru.GRUStepCache(S[0][t], ws.gates[t], ws.hn[t])
        _, _, dh_prev = gru.gru_step_backward(dS[0], cache, W, self.reset_after, dxg=dXG[t],
                                              dhg=None if dHG is dXG else dHG[t])
        return [dh_prev]

    def pack_forward(self, W_T, N, T):
        if self.reset_after:
            return blas.Packed(W_T, N, T)
        H = W_T.shape[0]
        return blas.Packed(W_T[:, : 2 * H], N, T), blas.Packed(W_T[:, 2 * H :], N, T)

    def pack_backward(self, W, N, T):
        if self.reset_after:
            return blas.Packed(W, N, T)
        H = W.shape[1]
        return blas.Packed(W[: 2 * H], N, T), blas.Packed(W[2 * H :], N, T)

    def forward_fused(self, t, xg, S, ws, P, b_ih, b_hh):
        h_prev, gates, H = S[0][t], ws.gates[t], S[0].shape[2]
        if self.reset_after:
            P.matmul(h_prev, gates)                                      # (N, 3H) W h_{t-1}
            fused.gru_forward(gates, xg, b_ih, b_hh, h_prev, ws.hn[t], S[0][t + 1])
        else:
            P[0].matmul(h_prev, gates[:, : 2 * H])                       # W_rz h_{t-1}
            fused.gru_forward_rz(gates, xg, b_ih, b_hh, h_prev, ws.hn[t])
            P[1].matmul(ws.hn[t], gates[:, 2 * H :])                     # W_n (r h_{t-1})
            fused.gru_forward_n(gates, xg, b_ih, b_hh, h_prev, S[0][t + 1])

    def forward_seq(self, P, XG, S, b_ih, b_hh, active, keep, blocks=1):
        """The whole loop compiled (fused.gru_forward_seq), or None; returns the step caches
        (one step's buffers, overwritten, when not ``keep``)."""
        gemm = blas.compute_fn()
        if not self.reset_after or gemm is None or P.operand is None:
            return None
        T, N, H = XG.shape[0], XG.shape[1], S[0].shape[2]
        ws = self.alloc(T if keep else 1, N, H, XG.dtype, scratch.empty)
        fused.gru_forward_seq(gemm, P.operand, XG, b_ih, b_hh, S[0], ws.gates, ws.hn, active,
                              int(keep))
        return ws

    def fused_grads(self, dS):
        carry = scratch.empty(dS[0].shape, dS[0].dtype)
        carry[...] = 0
        return [dS[0], carry, scratch.empty(dS[0].shape, dS[0].dtype)]  # W^T dhg, direct path, d(rh)

    def backward_seq(self, P, g, dout, active, S, ws, dXG, dHG, dh_sq, blocks=1):
        gemm = blas.compute_fn()
        if not self.reset_after or gemm is None or P.operand is None:
            return False
        fused.gru_backward_seq(gemm, P.operand, g[0], g[1], dout, ws.gates, S[0], ws.hn, active,
                               dXG, dHG, dh_sq)
        return True

    def backward_fused(self, t, g, dout_t, active, keep, S, ws, P, dXG, dHG, dh_sq):
        dh, carry, drh = g
        h_prev, gates, dxg, H = S[0][t], ws.gates[t], dXG[t], S[0].shape[2]
        if self.reset_after:
            fused.gru_backward(dh, carry, dout_t, gates, h_prev, ws.hn[t], active, dxg, dHG[t], dh_sq)
            P.matmul(dHG[t], dh)                                         # W^T dhg
        else:
            fused.gru_backward_zn(dh, carry, dout_t, gates, h_prev, active, dxg, dh_sq)
            P[1].matmul(dxg[:, 2 * H :], drh)                            # d(r h) = W_n^T da_c
            fused.gru_backward_r(drh, gates, h_prev, dxg, carry)
            P[0].matmul(dxg[:, : 2 * H], dh)                             # W_rz^T [da_r, da_z]

    def fused_dstates(self, g):
        return [g[0] + g[1]]

    def shares_dhg(self):
        return not self.reset_after

    def grad_W(self, dHG, S, ws, mm=np.matmul):
        H = S[0].shape[2]
        if self.reset_after:
            return _tn(dHG, S[0][:-1], H, mm)
        return np.concatenate([_tn(dHG[..., : 2 * H], S[0][:-1], H, mm),  # dW_rz = sum da_rz h^T
                               _tn(dHG[..., 2 * H :], ws.hn, H, mm)])     # dW_n = sum da_n (r h)^T


class _RNNKernel:
    n_gates, n_states, fold_b_hh = rnn.N_GATES, rnn.N_STATES, True

    def __init__(self, nonlinearity="tanh", **_):
        self.nonlinearity = nonlinearity

    def alloc(self, T, N, H, dtype, empty=np.empty):
        return None

    def forward(self, t, xg, S, ws, W_T, b_hh):
        rnn.rnn_step_forward(xg, S[0][t], W_T, None, self.nonlinearity, h=S[0][t + 1])

    def backward(self, t, dS, S, ws, W, dXG, dHG, work):
        cache = rnn.RNNStepCache(S[0][t], S[0][t + 1])
        _, dh_prev = rnn.rnn_step_backward(dS[0], cache, W, self.nonlinearity, da=dXG[t])
        return [dh_prev]

    def shares_dhg(self):
        return True

    def grad_W(self, dHG, S, ws, mm=np.matmul):
        return _tn(dHG, S[0][:-1], S[0].shape[2], mm)


def _tn(dA, B, cols, mm=np.matmul):
    """sum over (T, N) of dA_t^T B_t as one GEMM: (T, N, G) x (T, N, cols) -> (G, cols)."""
    return mm(dA.reshape(-1, dA.shape[-1]).T, B.reshape(-1, cols))


# ----------------------------------------------------------------------------- one direction


def _fast(kernel, dtype):
    """Whether this kernel runs its steps in fused.py's compiled kernels."""
    group = getattr(kernel, "fused_group", None)
    return group is not None and fused.use(dtype, group)


# Below this many rows per block, the row-block kernels lose to one threaded GEMM per step
# (measured, LSTM inference, 2 threads: 10 rows per block 11.3 -> 12.4 ms; 16 and 32 gain).
_MIN_ROWS = 16


def _row_blocks(kernel, N):
    """How many row blocks of the batch the compiled loop runs in parallel (fused.py's
    ``*_rows``): one per MKL thread, at least _MIN_ROWS rows each, dividing N; else 1."""
    threads = blas.get_num_threads() or 1
    if threads < 2 or not getattr(kernel, "row_blocks", False) or blas.compute_fn() is None:
        return 1
    blocks = min(threads, N // _MIN_ROWS)
    while blocks > 1 and N % blocks:
        blocks -= 1
    return min(blocks, fused.parallel_threads()) if blocks > 1 else 1


def _matmul(fast):
    """The 2-D product of the hoisted GEMMs: MKL's on the fast path (blas.py), else NumPy's."""
    return blas.matmul if fast else np.matmul


class DirectionCache(NamedTuple):
    x: np.ndarray            # (T, N, I) input as the loop saw it (reversed for reverse dir)
    S: list                  # n_states arrays (T+1, N, H)
    ws: object               # the kernel's per-step caches
    mask: np.ndarray | None  # (T, N, 1) bool, True where t < length


def direction_forward(kernel, x, states0, U, W, b_ih, b_hh, mask, keep_steps=True):
    """Run one layer in one direction over x (T, N, I). Returns ``out (T, N, H), cache``.

    ``keep_steps=False`` (inference_mode): nothing is needed for backward, so the compiled loop
    overwrites one step's gate buffers instead of keeping all T (the cache is then partial)."""
    T, N, I = x.shape
    H = W.shape[1]
    dtype = x.dtype
    fast = _fast(kernel, dtype)
    XG = scratch.empty((T, N, kernel.n_gates * H), dtype)  # (T, N, G*H)  U x_t, all steps:
    _matmul(fast)(x.reshape(T * N, I), U.T, out=XG.reshape(T * N, -1))  # one GEMM
    if not fast:                                          # (the fused steps add the biases)
        XG += b_ih                                        # + b_ih
        if kernel.fold_b_hh:
            XG += b_hh                                    # + b_hh (purely additive here)
    S = [scratch.empty((T + 1, N, H), dtype) for _ in range(kernel.n_states)]
    for k in range(kernel.n_states):
        S[k][0] = states0[k]
    ws = None
    if fast:                                              # W^T packed once for all steps
        blocks = _row_blocks(kernel, N)                   # parallel row blocks, or 1
        P = kernel.pack_forward(W.T if blas.use(dtype) else fused.transpose(W), N // blocks, T)
        active = np.ones((0, N), bool) if mask is None else np.ascontiguousarray(mask[:, :, 0])
        ws = kernel.forward_seq(P, XG, S, b_ih, b_hh, active, keep_steps, blocks)  # the loop,
    else:                                                 # compiled (with MKL), or None
        W_T = np.ascontiguousarray(W.T)                   # (H, G*H): NN GEMMs are faster
    steps = T if ws is None else 0                        # steps left to the Python loop
    if steps:                                             # which keeps every step
        ws = kernel.alloc(T, N, H, dtype, scratch.empty)
    keep = None if mask is None or not steps else ~mask   # (T, N, 1) steps past the length
    for t in range(steps):
        if fast:
            kernel.forward_fused(t, XG[t], S, ws, P, b_ih, b_hh)
        else:
            kernel.forward(t, XG[t], S, ws, W_T, b_hh)
        if keep is not None:
            for s in S:                                   # past the end: carry the state
                np.copyto(s[t + 1], s[t], where=keep[t])
    out = S[0][1:]
    if mask is not None:
        out = out * mask                                  # zero output past the length
    return out, DirectionCache(x, S, ws, mask)


def direction_backward(kernel, dout, dstates_n, cache: DirectionCache, U, W):
    """Invert ``direction_forward``.

    Returns ``dx (T, N, I), dstates0 (list of (N, H)), dU, dW, db_ih, db_hh, dh_sq (T, N)``
    where ``dh_sq[t, n] = ||dL/dh_t||^2`` for sequence n (all gradient reaching h_t).
    """
    x, S, ws, mask = cache
    T, N, I = x.shape
    H = W.shape[1]
    dXG = scratch.empty((T, N, kernel.n_gates * H), x.dtype)
    dHG = dXG if kernel.shares_dhg() else scratch.empty(dXG.shape, x.dtype)
    dS = [scratch.copy(d, x.dtype) for d in dstates_n]
    if mask is not None:
        dout = dout * mask                                # outputs past the length are constant 0
    dh_sq = scratch.empty((T, N), np.float64)         # ||dL/dh_t||^2 per sequence
    fast = _fast(kernel, x.dtype)
    mm = _matmul(fast)
    if fast:                                              # the same steps, compiled (fused.py)
        blocks = _row_blocks(kernel, N)
        P = kernel.pack_backward(W, N // blocks, T)
        g = kernel.fused_grads(dS)
        dout = np.ascontiguousarray(dout)
        active = np.ones((T, N), bool) if mask is None else np.ascontiguousarray(mask[:, :, 0])
        done = kernel.backward_seq(P, g, dout, active, S, ws, dXG, dHG, dh_sq, blocks)
        steps = 0 if done else T
        for t in range(steps - 1, -1, -1):                # (the loop, unless compiled above)
            keep = None if mask is None else ~mask[t]
            kernel.backward_fused(t, g, dout[t], active[t], keep, S, ws, P, dXG, dHG, dh_sq[t])
        dS = kernel.fused_dstates(g)
    else:
        work = np.empty((N, H), x.dtype)                  # the NumPy steps' scratch row
        for t in range(T - 1, -1, -1):
            dS[0] = dS[0] + dout[t]                       # h_t feeds the output and step t+1
            dh_sq[t] = np.einsum("nh,nh->n", dS[0], dS[0], dtype=np.float64)  # no float32 underflow
            if mask is None:
                dS = kernel.backward(t, dS, S, ws, W, dXG, dHG, work)
            else:
                m = mask[t]                               # (N, 1)
                d_active = [d * m for d in dS]
                d_prev = kernel.backward(t, d_active, S, ws, W, dXG, dHG, work)
                # past the length the state was copied: its gradient passes straight through
                dS = [dp + np.where(m, 0, d) for dp, d in zip(d_prev, dS)]
    if fast and dHG is dXG and isinstance(kernel, _LSTMKernel):
        # [dU | dW | db] = sum_t dXG_t^T [x_t | h_{t-1} | 1] as ONE GEMM (measured, one
        # thread, against two GEMMs and a sum: 2.15 -> 2.0 ms in the layer at (50,32,32,128);
        # alone 20.2 -> 16.9 ms at (50,64,128,256), 29.1 -> 27.9 ms at (35,20,650,650))
        Z = scratch.empty((T * N, I + H + 1), x.dtype)
        Z[:, :I], Z[:, I : I + H], Z[:, I + H] = x.reshape(T * N, I), S[0][:-1].reshape(T * N, H), 1
        dUWb = mm(dXG.reshape(T * N, -1).T, Z)
        dU, dW, db_ih = dUWb[:, :I], dUWb[:, I : I + H], np.ascontiguousarray(dUWb[:, I + H])
        db_hh = db_ih.copy()                              # the same sum (b_hh adds like b_ih)
    else:
        dU = _tn(dXG, x, I, mm)                           # dU = sum_t dXG_t^T x_t
        dW = kernel.grad_W(dHG, S, ws, mm)                # dW = sum_t dHG_t^T h_{t-1}
        db_ih = dXG.reshape(-1, dXG.shape[-1]).sum(0)
        db_hh = db_ih.copy() if dHG is dXG else dHG.reshape(-1, dHG.shape[-1]).sum(0)
    dx = mm(dXG.reshape(T * N, -1), U).reshape(T, N, I)  # dx_t = U^T dXG_t
    return dx, dS, dU, dW, db_ih, db_hh, dh_sq


def reverse_index(T, lengths):
    """Index (T, N) that reverses each sequence within its own length (an involution);
    None when every sequence is full (then the reversal is ``a[::-1]``)."""
    if lengths is None:
        return None
    t = np.arange(T)[:, None]
    L = lengths[None, :]
    return np.where(t < L, L - 1 - t, t)


def _take_time(a, idx):
    """a (T, N, ...) gathered along time with idx (T, N): a copy; or, idx None, the view
    ``a[::-1]`` (the consumers copy it once anyway: measured, 2-layer bidirectional LSTM
    inference (20,64,256,256), the fancy-index gathers took ~0.6 of 29 ms)."""
    if idx is None:
        return a[::-1]
    return a[idx, np.arange(a.shape[1])[None, :]]


# ----------------------------------------------------------------------------- in parallel
# The two directions of a bidirectional layer are independent recurrences. When the compiled
# loops run (fused.py with MKL; they release the GIL) and MKL has several threads, the layer
# runs them as two jobs on a thread pool, each with half of MKL's threads: the gate math then
# runs in parallel too, where one threaded GEMM per step leaves it serial and pays a fork/join
# every step (measured, 2 threads: LSTM (20,64,256,256) 2 layers bidirectional, training
# 105 -> 98 ms, inference 34 -> 33 ms). Where the LSTM's loop can run in parallel row blocks
# instead (_row_blocks; they run on libgomp's threads, like MKL's), the directions run one
# after the other, each with all threads: a little faster (same config, inference 30.8 ->
# 29.2 ms, training 90.7 -> 90.0 ms, interleaved with PyTorch) and one direction's buffers
# alive at a time instead of two (lower peak memory).
# Passes of less than _MIN_WORK multiply-adds stay serial: a job costs tens of us to hand over.
_MIN_WORK = 4e6
_pool_state = {"threads": 0, "pool": None}


def _parallel_threads(kernel, dtype, T, N, I, H, D):
    """MKL threads to share between the directions' jobs, or 1: run them one after the other."""
    threads = blas.get_num_threads() or 1
    work = D * T * N * kernel.n_gates * H * (I + H)     # multiply-adds of the layer's GEMMs
    if (D < 2 or threads < 2 or work < _MIN_WORK or not _fast(kernel, dtype)
            or blas.compute_fn() is None or _row_blocks(kernel, N) > 1):
        return 1
    return threads


def _run(jobs, threads):
    """Results of ``[(fn, args), ...]``: here, one after the other, when ``threads`` is 1; else
    on a pool, each job with ``threads // len(jobs)`` MKL threads (at least one)."""
    if threads < 2 or len(jobs) == 1:
        return [fn(*args) for fn, args in jobs]
    if _pool_state["threads"] != threads:
        from concurrent.futures import ThreadPoolExecutor
        if _pool_state["pool"] is not None:
            _pool_state["pool"].shutdown(wait=False)
        _pool_state.update(threads=threads, pool=ThreadPoolExecutor(threads, "rnnlab-rnn"))
    per_job = max(1, threads // len(jobs))

    def job(fn, args):
        blas.set_num_threads_local(per_job)
        return fn(*args)
    futures = [_pool_state["pool"].submit(job, fn, args) for fn, args in jobs]
    return [f.result() for f in futures]


# ----------------------------------------------------------------------------- modules

_MODES = {"RNN": _RNNKernel, "LSTM": _LSTMKernel, "GRU": _GRUKernel}


class RNNBase(Module):
    """Stacked, optionally bidirectional recurrent layer with PyTorch's signature.

    ``out, h_n = layer(x, h0=None, lengths=None)`` (LSTM: ``out, (h_n, c_n)``), then
    ``dx, dh0 = layer.backward(dout, dh_n=None)``, which accumulates into ``grads``.
    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` is (L*D, N, H).
    """

    mode = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None, **cell_options):
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.kernel = _MODES[self.mode](**cell_options)
        G, H = self.kernel.n_gates, self.hidden_size
        self._zero_bias = np.zeros(G * H, self.dtype)
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else H * self.num_directions
            for sfx in self._suffixes(layer):
                self.params["weight_ih" + sfx] = np.empty((G * H, in_size), self.dtype)
                self.params["weight_hh" + sfx] = np.empty((G * H, H), self.dtype)
                if self.bias:
                    self.params["bias_ih" + sfx] = np.empty(G * H, self.dtype)
                    self.params["bias_hh" + sfx] = np.empty(G * H, self.dtype)
        self._init_grads()
        self.reset_parameters()
        self._cache = None
        self._inferred = False
        self._dh_norms = None

    def _suffixes(self, layer):
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self):
        """PyTorch's default: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        k = 1.0 / np.sqrt(self.hidden_size)
        for p in self.params.values():
            p[...] = self.rng.uniform(-k, k, p.shape)

    # -- helpers ----------------------------------------------------------------
    def _weights(self, sfx):
        p = self.params
        b_ih = p["bias_ih" + sfx] if self.bias else self._zero_bias
        b_hh = p["bias_hh" + sfx] if self.bias else self._zero_bias
        return p["weight_ih" + sfx], p["weight_hh" + sfx], b_ih, b_hh

    def _check_state(self, s, N, name):
        shape = (self.num_layers * self.num_directions, N, self.hidden_size)
        if s is None:
            return np.zeros(shape, self.dtype)
        s = np.asarray(s, self.dtype)
        if s.shape != shape:
            raise ValueError(f"{type(self).__name__}: {name} must have shape {shape} "
                             f"(num_layers*num_directions, batch, hidden_size), got {s.shape}")
        return s

    def _check_input(self, x, lengths):
        x = np.asarray(x, self.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            order = "(N, T, I)" if self.batch_first else "(T, N, I)"
            raise ValueError(f"{type(self).__name__}: input must have shape {order} with "
                             f"I={self.input_size}, got {x.shape}")
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        T, N, _ = x.shape
        if lengths is None:
            return np.ascontiguousarray(x), None, None
        lengths = np.asarray(lengths)
        if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"lengths must be {N} integers (one per sequence), got {lengths!r}")
        if lengths.min() < 1 or lengths.max() > T:
            raise ValueError(f"lengths must lie in [1, {T}], got {lengths.tolist()}")
        mask = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, N, 1)
        if mask.all():
            return np.ascontiguousarray(x), None, None
        return np.ascontiguousarray(x), lengths.astype(np.int64), mask

    # -- forward / backward -----------------------------------------------------------
    def _forward(self, x, states0, lengths):
        self._cache = None          # frees the last pass's buffers for reuse (scratch.py)
        infer = is_inference_mode_enabled()   # keep nothing for backward
        x, lengths, mask = self._check_input(x, lengths)
        T, N, _ = x.shape
        states0 = [self._check_state(s, N, n) for s, n in zip(states0, ("h0", "c0"))]
        rev = reverse_index(T, lengths)
        layer_in = x
        caches, finals = [], [np.empty_like(s) for s in states0]
        for layer in range(self.num_layers):
            drop = None
            if layer > 0 and self.training and self.dropout > 0:
                drop = (self.rng.random(layer_in.shape) >= self.dropout) / (1.0 - self.dropout)
                layer_in = layer_in * drop.astype(self.dtype)
            outs, dir_caches, jobs = [], [], []
            for d, sfx in enumerate(self._suffixes(layer)):
                U, W, b_ih, b_hh = self._weights(sfx)
                k = layer * self.num_directions + d
                xin = layer_in if d == 0 else _take_time(layer_in, rev)
                jobs.append((direction_forward, (self.kernel, xin, [s[k] for s in states0],
                                                 U, W, b_ih, b_hh, mask, not infer)))
            threads = _parallel_threads(self.kernel, self.dtype, T, N, layer_in.shape[2],
                                        self.hidden_size, self.num_directions)
            for d, (out, cache) in enumerate(_run(jobs, threads)):  # the directions
                k = layer * self.num_directions + d
                for s, S in zip(finals, cache.S):
                    s[k] = S[T]                       # the state after the last real step
                outs.append(out if d == 0 else _take_time(out, rev))
                if not infer:
                    dir_caches.append(cache)
            caches.append((drop, dir_caches))
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        self._cache = None if infer else (caches, rev, T, N)
        self._inferred = infer
        out = layer_in.transpose(1, 0, 2) if self.batch_first else layer_in
        return out, finals

    def _backward(self, dout, dfinals):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward"
                               + (" (the last forward ran under inference_mode, which keeps "
                                  "nothing for backward)" if self._inferred else ""))
        caches, rev, T, N = self._cache
        dout = np.asarray(dout, self.dtype)
        if self.batch_first:
            dout = dout.transpose(1, 0, 2)
        expected = (T, N, self.hidden_size * self.num_directions)
        if dout.shape != expected:
            raise ValueError(f"{type(self).__name__}.backward: dout must have shape {expected} "
                             f"(time-major), got {dout.shape}")
        dfinals = [self._check_state(s, N, n) for s, n in zip(dfinals, ("dh_n", "dc_n"))]
        dstates0 = [np.empty_like(s) for s in dfinals]
        H = self.hidden_size
        self._dh_norms = {}
        for layer in range(self.num_layers - 1, -1, -1):
            drop, dir_caches = caches[layer]
            dx_sum, jobs = None, []
            for d, sfx in enumerate(self._suffixes(layer)):
                U, W, _, _ = self._weights(sfx)
                k = layer * self.num_directions + d
                dout_d = dout[:, :, d * H : (d + 1) * H]
                if d == 1:
                    dout_d = _take_time(dout_d, rev)
                jobs.append((direction_backward, (self.kernel, dout_d, [s[k] for s in dfinals],
                                                  dir_caches[d], U, W)))
            threads = _parallel_threads(self.kernel, self.dtype, T, N, dir_caches[0].x.shape[2],
                                        H, self.num_directions)
            results = _run(jobs, threads)                 # the directions
            for d, sfx in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + d
                dx, ds0, dU, dW, db_ih, db_hh, sq = results[d]
                if d == 1:
                    dx, sq = _take_time(dx, rev), _take_time(sq, rev)  # per-sequence time order
                for s, v in zip(dstates0, ds0):
                    s[k] = v
                g = self.grads
                g["weight_ih" + sfx] += dU
                g["weight_hh" + sfx] += dW
                if self.bias:
                    g["bias_ih" + sfx] += db_ih
                    g["bias_hh" + sfx] += db_hh
                self._dh_norms[(layer, d)] = np.sqrt(sq.sum(1))
                dx_sum = dx if dx_sum is None else dx_sum + dx
            dout = dx_sum if drop is None else dx_sum * drop
        dx = dout.transpose(1, 0, 2) if self.batch_first else dout
        return dx, dstates0

    # -- tools for learners ------------------------------------------------------------
    def hidden_grad_norms(self, layer=0, direction=0):
        """``||dL/dh_t||`` for every step t (time order) from the last ``backward``: (T,)."""
        if not self._dh_norms:
            raise RuntimeError("hidden_grad_norms needs a backward pass first")
        return self._dh_norms[(layer, direction)].copy()

    def gate_trace(self, layer=0, direction=0):
        """Per-step gate activations of the last forward, each (T, N, H) in time order.

        LSTM: ``i, f, g, o, c``; GRU: ``r, z, n``; RNN: ``h``. Steps past a sequence's
        length (``lengths=``) are NaN.
        """
        if self._cache is None:
            raise RuntimeError("gate_trace needs a forward pass first (outside inference_mode)")
        caches, rev, T, N = self._cache
        cache = caches[layer][1][direction]
        H = self.hidden_size
        if self.mode == "RNN":
            trace = {"h": cache.S[0][1:]}
        else:
            names = "ifgo" if self.mode == "LSTM" else "rzn"
            trace = {n: cache.ws.gates[:, :, j * H : (j + 1) * H] for j, n in enumerate(names)}
            if self.mode == "LSTM":
                trace["c"] = cache.S[1][1:]
        trace = {k: (_take_time(v, rev) if direction == 1 else v).copy() for k, v in trace.items()}
        if cache.mask is not None:                # past a sequence's length: no value
            for v in trace.values():
                v[~np.broadcast_to(cache.mask, v.shape)] = np.nan
        return trace


class RNN(RNNBase):
    """Elman RNN, ``h_t = tanh(U x_t + b_ih + W h_{t-1} + b_hh)`` (or relu)."""

    mode = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float32, seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, nonlinearity=nonlinearity)

    def forward(self, x, h0=None, lengths=None):
        out, (h_n,) = self._forward(x, [h0], lengths)
        return out, h_n

    def backward(self, dout, dh_n=None):
        dx, (dh0,) = self._backward(dout, [dh_n])
        return dx, dh0


class GRU(RNNBase):
    """GRU; ``reset_after=True`` is PyTorch's formula, ``False`` the chapter's."""

    mode = "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32, seed=None, reset_after=True):
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, reset_after=self.reset_after)

    forward = RNN.forward
    backward = RNN.backward


class LSTM(RNNBase):
    """LSTM; ``out, (h_n, c_n) = lstm(x, (h0, c0))``, ``dx, (dh0, dc0) = lstm.backward(dout, (dh_n, dc_n))``."""

    mode = "LSTM"

    def forward(self, x, hx=None, lengths=None):
        h0, c0 = (None, None) if hx is None else hx
        out, (h_n, c_n) = self._forward(x, [h0, c0], lengths)
        return out, (h_n, c_n)

    def backward(self, dout, dhx=None):
        dh_n, dc_n = (None, None) if dhx is None else dhx
        dx, (dh0, dc0) = self._backward(dout, [dh_n, dc_n])
        return dx, (dh0, dc0)
