"""What the time loop needs to know of a cell: one small binding class per cell.

``recurrent.py`` (whole sequences) and ``stepping.py`` (one step at a time) run any cell through
the same few methods; each binding calls its cell file's pure step functions::

    step(xg, states, W, b_hh) -> new states, step cache          (the cell's forward equations)
    step_backward(dS, cache, W) -> dxg, dhg, [d states before]   (their inverse)
    tape(step caches) -> the arrays a sequence's backward needs  (direction.LSTMTape, GRUTape)
    step_cache(direction cache, t) -> step t's cache, read back from those arrays
    hh_operands(direction cache) / step_operands(step cache) -> what W multiplies, for dW
    trace(direction cache) -> the gates of every step, by name   (RNNBase.gate_trace)

``dxg`` is the gradient of ``U x_t + b_ih``, ``dhg`` that of ``W h_{t-1} + b_hh`` (the same
array where the two add before anything else touches them: LSTM, RNN, the chapter's GRU).
``binding(spec)`` gives the binding of a ``direction.CellSpec``.
Shapes: T time, N batch, H hidden, G gates.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from rnnlab.nn import gru, lstm, rnn
from rnnlab.nn.direction import CellSpec, DirectionCache, GRUSpec, GRUTape, LSTMSpec, LSTMTape, RNNSpec


class LSTMSteps:
    def __init__(self, spec: LSTMSpec):
        self.spec, self.n_gates, self.n_states = spec, spec.n_gates, spec.n_states

    def step(self, xg, states, W, b_hh):
        h, c, step = lstm.lstm_step_forward(xg, states[0], states[1], W, b_hh)
        return [h, c], step

    def step_backward(self, dS, step, W):
        da, dh_prev, dc_prev = lstm.lstm_step_backward(dS[0], dS[1], step, W)
        return da, da, [dh_prev, dc_prev]  # dL/d(W h) is dL/d(U x): da

    def tape(self, steps):
        return LSTMTape(np.stack([s.gates for s in steps]), np.stack([s.tanh_c for s in steps]))

    def step_cache(self, cache: DirectionCache, t):
        S, tape = cache.S, cache.tape
        return lstm.LSTMStepCache(S[0][t], S[1][t], tape.gates[t], tape.tanh_c[t])

    def hh_operands(self, cache: DirectionCache):
        return [(slice(None), cache.S[0][:-1])]  # [(rows of W, what they multiply (T, N, H))]

    def step_operands(self, step):
        return [(slice(None), step.h_prev)]

    def trace(self, cache: DirectionCache):
        return {**_gates(cache.tape.gates, "ifgo"), "c": cache.S[1][1:]}


class GRUSteps:
    def __init__(self, spec: GRUSpec):
        self.spec, self.n_gates, self.n_states = spec, spec.n_gates, spec.n_states
        self.reset_after = spec.reset_after

    def step(self, xg, states, W, b_hh):
        h, step = gru.gru_step_forward(xg, states[0], W, b_hh, self.reset_after)
        return [h], step

    def step_backward(self, dS, step, W):
        dxg, dhg, dh_prev = gru.gru_step_backward(dS[0], step, W, self.reset_after)
        return dxg, dhg, [dh_prev]

    def tape(self, steps):
        return GRUTape(np.stack([s.gates for s in steps]), np.stack([s.hn for s in steps]))

    def step_cache(self, cache: DirectionCache, t):
        return gru.GRUStepCache(cache.S[0][t], cache.tape.gates[t], cache.tape.hn[t])

    def hh_operands(self, cache: DirectionCache):
        if self.reset_after:
            return [(slice(None), cache.S[0][:-1])]
        H = cache.S[0].shape[2]  # W_rz multiplies h_{t-1}, W_n (r h_{t-1})
        return [(slice(0, 2 * H), cache.S[0][:-1]), (slice(2 * H, 3 * H), cache.tape.hn)]

    def step_operands(self, step):
        if self.reset_after:
            return [(slice(None), step.h_prev)]
        H = step.h_prev.shape[1]
        return [(slice(0, 2 * H), step.h_prev), (slice(2 * H, 3 * H), step.hn)]

    def trace(self, cache: DirectionCache):
        return _gates(cache.tape.gates, "rzn")


class RNNSteps:
    def __init__(self, spec: RNNSpec):
        self.spec, self.n_gates, self.n_states = spec, spec.n_gates, spec.n_states
        self.nonlinearity = spec.nonlinearity

    def step(self, xg, states, W, b_hh):
        h, step = rnn.rnn_step_forward(xg, states[0], W, b_hh, self.nonlinearity)
        return [h], step

    def step_backward(self, dS, step, W):
        da, dh_prev = rnn.rnn_step_backward(dS[0], step, W, self.nonlinearity)
        return da, da, [dh_prev]

    def tape(self, steps):
        return None  # h_t, in the states, is all backward needs

    def step_cache(self, cache: DirectionCache, t):
        return rnn.RNNStepCache(cache.S[0][t], cache.S[0][t + 1])

    def hh_operands(self, cache: DirectionCache):
        return [(slice(None), cache.S[0][:-1])]

    def step_operands(self, step):
        return [(slice(None), step.h_prev)]

    def trace(self, cache: DirectionCache):
        return {"h": cache.S[0][1:]}


Steps = LSTMSteps | GRUSteps | RNNSteps
_BINDINGS = {LSTMSpec: LSTMSteps, GRUSpec: GRUSteps, RNNSpec: RNNSteps}


@cache
def binding(spec: CellSpec) -> Steps:
    """The binding of ``spec`` (one per spec: specs are frozen, hence hashable)."""
    return _BINDINGS[type(spec)](spec)


def _gates(gates, names):
    H = gates.shape[2] // len(names)
    return {n: gates[:, :, j * H : (j + 1) * H] for j, n in enumerate(names)}
