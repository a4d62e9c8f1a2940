"""The one time loop: one layer, one direction, any cell (docs/EQUATIONS.md sections 1-5).

Every cell (``rnn.py``, ``lstm.py``, ``gru.py``) provides a step forward and a step backward;
this file runs them over time. The work that does not depend on the recurrence is taken out
of the loop::

    XG = X U^T                     one GEMM for all T steps before the loop   (T, N, G*H)
    for t = 1 .. T:   step t       the cell's equations, W h_{t-1} inside
    for t = T .. 1:   step back t  carrying dh (and dc) from step t+1 to step t
    [dU | dW | db] = dXG^T [X | H_prev | 1]    one GEMM after the backward loop
    dx = dXG U                     one GEMM

The fast backend (``backend/``) runs the same two loops compiled, as one call each; which
one runs is chosen per call by ``backend.select`` (dtype, what is installed, ``runtime``).
Reverse direction: the layer reverses the input *within each sequence's length*, runs the same
loop and reverses the output back, so a cell never knows its direction. Variable lengths
(right-padded): past a sequence's length the state is carried unchanged and the output is zero,
which is what ``pack_padded_sequence`` gives.
Shapes: T time, N batch, I input, H hidden, G gates (1 RNN, 3 GRU, 4 LSTM).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnnlab.nn import backend, gru, lstm, rnn
from rnnlab.nn.backend import scratch

# ----------------------------------------------------------------------------- the cells
# What the loop needs to know of a cell: its sizes, where a step keeps what its backward
# needs (``WS``: per-step arrays stacked over time), how to call its step functions on
# step t of those arrays, and what W multiplies (for dW). ``one_step`` / ``one_step_backward``
# call the same functions on one step's own arrays (``stepping.StackedCell``).


class LSTMSteps:
    name, n_gates, n_states, fold_b_hh = "lstm", lstm.N_GATES, lstm.N_STATES, True
    shares_dhg = True  # dL/d(W h) is dL/d(U x): da

    class WS(NamedTuple):
        gates: np.ndarray  # (T, N, 4H) activated i, f, g, o
        tanh_c: np.ndarray  # (T, N, H)

    def workspace(self, T, N, H, dtype):
        return self.WS(scratch.empty((T, N, 4 * H), dtype), scratch.empty((T, N, H), dtype))

    def step(self, t, xg, S, ws, W_T, b_hh):
        lstm.lstm_step_forward(
            xg,
            S[0][t],
            S[1][t],
            W_T,
            None,
            gates=ws.gates[t],
            h=S[0][t + 1],
            c=S[1][t + 1],
            tanh_c=ws.tanh_c[t],
        )

    def step_backward(self, t, dS, S, ws, W, dXG, dHG, work):
        cache = lstm.LSTMStepCache(S[0][t], S[1][t], ws.gates[t], ws.tanh_c[t])
        _, dh_prev, dc_prev = lstm.lstm_step_backward(dS[0], dS[1], cache, W, da=dXG[t], work=work)
        return [dh_prev, dc_prev]

    def hh_operands(self, S, ws):
        """What W's gate blocks multiply: ``[(gate rows, (T, N, H))]``."""
        return [(slice(None), S[0][:-1])]

    def trace(self, S, ws, H):
        return {**_gates(ws.gates, "ifgo", H), "c": S[1][1:]}

    def one_step(self, xg, states, W_T, b_hh):
        h, c, cache = lstm.lstm_step_forward(xg, states[0], states[1], W_T, b_hh)
        return [h, c], cache

    def one_step_backward(self, dS, cache, W):
        """Returns ``dxg, dhg, [dh_prev, dc_prev]``."""
        da, dh_prev, dc_prev = lstm.lstm_step_backward(dS[0], dS[1], cache, W)
        return da, da, [dh_prev, dc_prev]

    def step_operands(self, cache):
        return [(slice(None), cache.h_prev)]


class GRUSteps:
    name, n_gates, n_states, fold_b_hh = "gru", gru.N_GATES, gru.N_STATES, False

    class WS(NamedTuple):
        gates: np.ndarray  # (T, N, 3H) r, z, n
        hn: np.ndarray  # (T, N, H) W_n h + b_hn  or  r * h_{t-1}
        hg: np.ndarray  # (N, 3H) scratch for W h + b_hh

    def __init__(self, reset_after=True):
        self.reset_after = reset_after
        self.shares_dhg = not reset_after  # reset_after: r * (W_n h) differs

    def workspace(self, T, N, H, dtype):
        return self.WS(
            scratch.empty((T, N, 3 * H), dtype),
            scratch.empty((T, N, H), dtype),
            scratch.empty((N, 3 * H), dtype),
        )

    def step(self, t, xg, S, ws, W_T, b_hh):
        gru.gru_step_forward(
            xg, S[0][t], W_T, b_hh, self.reset_after, gates=ws.gates[t], hn=ws.hn[t], h=S[0][t + 1], hg=ws.hg
        )

    def step_backward(self, t, dS, S, ws, W, dXG, dHG, work):
        cache = gru.GRUStepCache(S[0][t], ws.gates[t], ws.hn[t])
        _, _, dh_prev = gru.gru_step_backward(
            dS[0], cache, W, self.reset_after, dxg=dXG[t], dhg=None if dHG is dXG else dHG[t]
        )
        return [dh_prev]

    def hh_operands(self, S, ws):
        if self.reset_after:
            return [(slice(None), S[0][:-1])]
        H = S[0].shape[2]  # W_rz multiplies h, W_n (r h)
        return [(slice(0, 2 * H), S[0][:-1]), (slice(2 * H, 3 * H), ws.hn)]

    def trace(self, S, ws, H):
        return _gates(ws.gates, "rzn", H)

    def one_step(self, xg, states, W_T, b_hh):
        h, cache = gru.gru_step_forward(xg, states[0], W_T, b_hh, self.reset_after)
        return [h], cache

    def one_step_backward(self, dS, cache, W):
        dxg, dhg, dh_prev = gru.gru_step_backward(dS[0], cache, W, self.reset_after)
        return dxg, dhg, [dh_prev]

    def step_operands(self, cache):
        if self.reset_after:
            return [(slice(None), cache.h_prev)]
        H = cache.h_prev.shape[1]
        return [(slice(0, 2 * H), cache.h_prev), (slice(2 * H, 3 * H), cache.hn)]


class RNNSteps:
    name, n_gates, n_states, fold_b_hh = "rnn", rnn.N_GATES, rnn.N_STATES, True
    shares_dhg, WS = True, None

    def __init__(self, nonlinearity="tanh"):
        self.nonlinearity = nonlinearity

    def workspace(self, T, N, H, dtype):
        return None  # h_t, in S, is all backward needs

    def step(self, t, xg, S, ws, W_T, b_hh):
        rnn.rnn_step_forward(xg, S[0][t], W_T, None, self.nonlinearity, h=S[0][t + 1])

    def step_backward(self, t, dS, S, ws, W, dXG, dHG, work):
        cache = rnn.RNNStepCache(S[0][t], S[0][t + 1])
        _, dh_prev = rnn.rnn_step_backward(dS[0], cache, W, self.nonlinearity, da=dXG[t])
        return [dh_prev]

    hh_operands = LSTMSteps.hh_operands
    step_operands = LSTMSteps.step_operands

    def trace(self, S, ws, H):
        return {"h": S[0][1:]}

    def one_step(self, xg, states, W_T, b_hh):
        h, cache = rnn.rnn_step_forward(xg, states[0], W_T, b_hh, self.nonlinearity)
        return [h], cache

    def one_step_backward(self, dS, cache, W):
        da, dh_prev = rnn.rnn_step_backward(dS[0], cache, W, self.nonlinearity)
        return da, da, [dh_prev]


def _gates(gates, names, H):
    return {n: gates[:, :, j * H : (j + 1) * H] for j, n in enumerate(names)}


# ----------------------------------------------------------------------------- forward


class DirectionCache(NamedTuple):
    x: np.ndarray  # (T, N, I) input as the loop saw it (reversed for reverse dir)
    S: list  # n_states arrays (T+1, N, H): the states before/after each step
    ws: object  # the cell's per-step arrays (cell.WS)
    mask: np.ndarray | None  # (T, N, 1) bool, True where t < length


def direction_forward(cell, x, states0, U, W, b_ih, b_hh, mask, keep_steps=True):
    """Run one layer in one direction over x (T, N, I). Returns ``out (T, N, H), cache``.

    ``keep_steps=False`` (inference_mode): nothing is needed for backward, so a backend may
    overwrite one step's buffers instead of keeping all T (the cache is then partial)."""
    T, N, I = x.shape
    H = W.shape[1]
    fast = backend.select(cell, x.dtype)  # None: the NumPy loop below
    mm = np.matmul if fast is None else fast.matmul
    XG = scratch.empty((T, N, cell.n_gates * H), x.dtype)
    mm(x.reshape(T * N, I), U.T, out=XG.reshape(T * N, -1))  # XG = X U^T, all steps: one GEMM
    S = [scratch.empty((T + 1, N, H), x.dtype) for _ in range(cell.n_states)]
    for s, s0 in zip(S, states0):
        s[0] = s0  # h_0 (, c_0)
    if fast is not None:
        ws = fast.forward(cell, XG, S, W, b_ih, b_hh, mask, keep_steps)  # the loop, compiled
    else:
        XG += b_ih  # + b_ih
        if cell.fold_b_hh:
            XG += b_hh  # + b_hh (purely additive here)
        ws = cell.workspace(T, N, H, x.dtype)
        W_T = np.ascontiguousarray(W.T)  # (H, G*H): NN GEMMs are faster
        for t in range(T):
            cell.step(t, XG[t], S, ws, W_T, b_hh)  # the cell's equations at step t
            if mask is not None:
                for s in S:  # past the end: carry the state
                    np.copyto(s[t + 1], s[t], where=~mask[t])
    out = S[0][1:]
    if mask is not None:
        out = out * mask  # zero output past the length
    return out, DirectionCache(x, S, ws, mask)


# ----------------------------------------------------------------------------- backward


def direction_backward(cell, dout, dstates_n, cache: DirectionCache, U, W):
    """Invert ``direction_forward``.

    Returns ``dx (T, N, I), dstates0 (list of (N, H)), dU, dW, db_ih, db_hh, dh_sq (T, N)``
    where ``dh_sq[t, n] = ||dL/dh_t||^2`` for sequence n (all gradient reaching h_t).
    """
    x, S, ws, mask = cache
    T, N, I = x.shape
    H = W.shape[1]
    dXG = scratch.empty((T, N, cell.n_gates * H), x.dtype)  # gradient of U x_t + b_ih
    dHG = dXG if cell.shares_dhg else scratch.empty(dXG.shape, x.dtype)  # ... of W's product
    dS = [scratch.copy(d, x.dtype) for d in dstates_n]
    if mask is not None:
        dout = dout * mask  # outputs past the length are constant 0
    dh_sq = scratch.empty((T, N), np.float64)  # ||dL/dh_t||^2 per sequence
    fast = backend.select(cell, x.dtype)
    if fast is not None:
        dS = fast.backward(cell, dout, dS, cache, W, dXG, dHG, dh_sq)  # the loop, compiled
    else:
        work = np.empty((N, H), x.dtype)  # the steps' scratch row
        for t in range(T - 1, -1, -1):
            dS[0] = dS[0] + dout[t]  # h_t feeds the output and step t+1
            dh_sq[t] = np.einsum("nh,nh->n", dS[0], dS[0], dtype=np.float64)  # no float32 underflow
            if mask is None:
                dS = cell.step_backward(t, dS, S, ws, W, dXG, dHG, work)
            else:
                m = mask[t]  # (N, 1)
                d_prev = cell.step_backward(t, [d * m for d in dS], S, ws, W, dXG, dHG, work)
                # past the length the state was copied: its gradient passes straight through
                dS = [dp + np.where(m, 0, d) for dp, d in zip(d_prev, dS)]
    mm = np.matmul if fast is None else fast.matmul
    dU, dW, db_ih, db_hh = _weight_grads(cell, dXG, dHG, x, S, ws, mm)
    dx = mm(dXG.reshape(T * N, -1), U).reshape(T, N, I)  # dx_t = U^T dXG_t
    return dx, dS, dU, dW, db_ih, db_hh, dh_sq


def _weight_grads(cell, dXG, dHG, x, S, ws, mm):
    """dU = sum_t dXG_t^T x_t,  dW = sum_t dHG_t^T h_{t-1},  db = sum_t dXG_t (and dHG_t).

    Where both are one gradient times one operand (LSTM, RNN) it is ONE GEMM over
    ``[x | h_{t-1} | 1]`` (measured, one thread, against two GEMMs and a sum: 2.15 -> 2.0 ms
    in the layer at (50,32,32,128); alone 20.2 -> 16.9 ms at (50,64,128,256))."""
    T, N, I = x.shape
    H, M = S[0].shape[2], T * N
    ops = cell.hh_operands(S, ws)  # [(gate rows, (T, N, H))]
    if dHG is dXG and len(ops) == 1:
        Z = scratch.empty((M, I + H + 1), x.dtype)  # [x_t | h_{t-1} | 1]
        Z[:, :I], Z[:, I : I + H], Z[:, I + H] = x.reshape(M, I), ops[0][1].reshape(M, H), 1
        dUWb = mm(dXG.reshape(M, -1).T, Z)  # (G*H, I + H + 1)
        db = np.ascontiguousarray(dUWb[:, I + H])
        return dUWb[:, :I], dUWb[:, I : I + H], db, db.copy()  # b_hh adds like b_ih
    dXG2, dHG2 = dXG.reshape(M, -1), dHG.reshape(M, -1)
    dU = mm(dXG2.T, x.reshape(M, I))  # dU = sum_t dXG_t^T x_t
    dWs = [mm(dHG2[:, rows].T, op.reshape(M, H)) for rows, op in ops]  # per block of gates
    dW = dWs[0] if len(dWs) == 1 else np.concatenate(dWs)
    db_ih = dXG2.sum(0)
    db_hh = db_ih.copy() if dHG is dXG else dHG2.sum(0)
    return dU, dW, db_ih, db_hh


# ----------------------------------------------------------------------------- time order


def reverse_index(T, lengths):
    """Index (T, N) that reverses each sequence within its own length (an involution);
    None when every sequence is full (then the reversal is ``a[::-1]``)."""
    if lengths is None:
        return None
    t = np.arange(T)[:, None]
    L = lengths[None, :]
    return np.where(t < L, L - 1 - t, t)


def take_time(a, idx):
    """a (T, N, ...) gathered along time with idx (T, N): a copy; or, idx None, the view
    ``a[::-1]`` (the consumers copy it once anyway: measured, 2-layer bidirectional LSTM
    inference (20,64,256,256), the fancy-index gathers took ~0.6 of 29 ms)."""
    if idx is None:
        return a[::-1]
    return a[idx, np.arange(a.shape[1])[None, :]]
