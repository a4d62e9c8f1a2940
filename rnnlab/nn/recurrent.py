"""The one time loop: one layer, one direction, any cell (docs/EQUATIONS.md sections 1-5).

Every cell (``rnn.py``, ``lstm.py``, ``gru.py``) provides a step forward and a step backward;
this file runs them over time. The work that does not depend on the recurrence is taken out
of the loop::

    XG = X U^T + b_ih              one GEMM for all T steps before the loop   (T, N, G*H)
    for t = 1 .. T:   step t       the cell's equations, W h_{t-1} inside
    for t = T .. 1:   step back t  carrying dh (and dc) from step t+1 to step t
    dU = dXG^T X,  dW = dHG^T H_prev,  db = sum dXG    one GEMM each after the backward loop
    dx = dXG U                     one GEMM

This is the NumPy reference: plain expressions, what the tests compare everything with. The
directions of a layer go to ``forward`` / ``backward``, which hand them to the backend that
``backend.select`` names for the cell and dtype (compiled loops, same jobs in, same caches and
gradients out), or run the loops below. Reverse direction: the layer reverses the input *within
each sequence's length*, runs the same loop and reverses the output back, so a cell never knows
its direction. Variable lengths (right-padded): past a sequence's length the state is carried
unchanged and the output is zero, which is what ``pack_padded_sequence`` gives.
Shapes: T time, N batch, I input, H hidden, G gates (1 RNN, 3 GRU, 4 LSTM).
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn import backend
from rnnlab.nn.direction import (
    BackwardJob,
    DirectionCache,
    DirectionGrads,
    ForwardJob,
)
from rnnlab.nn.steps import binding

# ----------------------------------------------------------------------------- dispatch


def forward(jobs: list[ForwardJob]) -> list[tuple[np.ndarray, DirectionCache]]:
    """``(out, cache)`` of each direction of one layer, on the selected backend or in NumPy."""
    fast = backend.select(jobs[0].spec, jobs[0].x.dtype)
    if fast is None:
        return [direction_forward(job) for job in jobs]
    return fast.forward(jobs)


def backward(jobs: list[BackwardJob]) -> list[DirectionGrads]:
    """The gradients of each direction of one layer, on the selected backend or in NumPy."""
    fast = backend.select(jobs[0].spec, jobs[0].dout.dtype)
    if fast is None:
        return [direction_backward(job) for job in jobs]
    return fast.backward(jobs)


# ----------------------------------------------------------------------------- the reference


def direction_forward(job: ForwardJob) -> tuple[np.ndarray, DirectionCache]:
    """Run one layer in one direction over x (T, N, I). Returns ``out (T, N, H), cache``."""
    cell, x, mask = binding(job.spec), job.x, job.mask
    XG = x @ job.U.T + job.b_ih  # (T, N, G*H)  U x_t + b_ih for all steps: one GEMM
    states = list(job.states0)  # [h_0 (, c_0)]  each (N, H)
    history, steps = [states], []
    for t in range(x.shape[0]):
        new, step = cell.step(XG[t], states, job.W, job.b_hh)  # the cell's equations at step t
        if mask is not None:  # past the end: carry the state
            new = [np.where(mask[t], s_new, s) for s_new, s in zip(new, states)]
        states = new
        history.append(states)
        steps.append(step)
    S = [np.stack(s) for s in zip(*history)]  # (T+1, N, H) each: the states before/after each step
    out = S[0][1:] if mask is None else S[0][1:] * mask  # zero output past the length
    tape = cell.tape(steps) if job.keep else None  # inference_mode keeps nothing for backward
    return out, DirectionCache(x, S, tape, mask)


def direction_backward(job: BackwardJob) -> DirectionGrads:
    """Invert ``direction_forward``; ``dh_sq[t, n] = ||dL/dh_t||^2`` for sequence n."""
    cell, cache, W = binding(job.spec), job.cache, job.W
    x, mask = cache.x, cache.mask
    T, N, I = x.shape
    dout = job.dout if mask is None else job.dout * mask  # outputs past the length are constant 0
    dS = list(job.dstates)  # [dL/dh_T (, dL/dc_T)]
    dxgs, dhgs, dh_sq = [], [], np.zeros((T, N))
    for t in range(T - 1, -1, -1):
        dS[0] = dS[0] + dout[t]  # h_t feeds the output and step t+1
        dh_sq[t] = np.einsum("nh,nh->n", dS[0], dS[0], dtype=np.float64)  # float64: no underflow
        step = cell.step_cache(cache, t)
        if mask is None:
            dxg, dhg, dS = cell.step_backward(dS, step, W)
        else:
            m = mask[t]  # (N, 1)
            dxg, dhg, d_prev = cell.step_backward([d * m for d in dS], step, W)
            dS = [dp + np.where(m, 0, d) for dp, d in zip(d_prev, dS)]  # past the length: pass through
        dxgs.append(dxg)
        dhgs.append(dhg)
    dXG, dHG = np.stack(dxgs[::-1]), np.stack(dhgs[::-1])  # (T, N, G*H) gradients of U x + b_ih, W h + b_hh
    dXG2, dHG2 = dXG.reshape(T * N, -1), dHG.reshape(T * N, -1)
    dU = dXG2.T @ x.reshape(T * N, I)  # (G*H, I)  dU = sum_t dXG_t^T x_t
    # (G*H, H)  dW = sum_t dHG_t^T h_{t-1}, block by block (chapter GRU: W_n multiplies r * h_{t-1})
    dW = np.concatenate([dHG2[:, rows].T @ op.reshape(T * N, -1) for rows, op in cell.hh_operands(cache)])
    db_ih, db_hh = dXG2.sum(0), dHG2.sum(0)  # db = sum_t dXG_t,  sum_t dHG_t
    dx = dXG @ job.U  # (T, N, I)  dx_t = U^T dXG_t
    return DirectionGrads(dx, dS, dU, dW, db_ih, db_hh, dh_sq)


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
    ``a[::-1]`` (whoever consumes it copies it once anyway)."""
    if idx is None:
        return a[::-1]
    return a[idx, np.arange(a.shape[1])[None, :]]
