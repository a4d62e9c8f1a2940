"""One time step at a time through a stacked RNN / LSTM / GRU: decoders and online inference.

A layer (``LSTM(...)``) runs whole sequences; a decoder that feeds its own output back, or a
program that gets one input at a time, needs the same equations one step at a time::

    cell = StackedCell(layer)                   # shares layer.params and layer.grads
    state = cell.initial_state(N)               # [h (L, N, H)] or [h, c] for the LSTM
    tape = cell.tape()                          # only when a backward will follow
    for t in 1 .. T:
        out, state = cell.step(x_t, state, tape)    # x_t (N, I) -> out (N, H): the top layer's h_t
    dstate = cell.initial_state(N)              # zeros: no gradient from after step T
    for t in T .. 1:
        dx_t, dstate = cell.step_backward(dout_t, dstate, tape)   # newest recorded step first

Layer l at step t (docs/EQUATIONS.md section 5)::

    h_t^(l) = cell(U^(l) h_t^(l-1) + b_ih, h_{t-1}^(l); W^(l), b_hh),     h_t^(0) = x_t

``step_backward`` inverts the newest step on the tape, from the top layer down, and returns
``dx_t`` and the gradient of the state before the step. When the oldest step has been
inverted, the weight gradients are accumulated into ``layer.grads`` with one GEMM per
tensor over all steps (as the layer's own backward does)::

    dU^(l) = sum_t dxg_t^T x_t^(l)    dW^(l) = sum_t dhg_t^T h_{t-1}^(l)    db = sum_t dxg_t, dhg_t

The layer must be unidirectional (a backward direction needs the future) and without dropout
between layers. Steps run the NumPy step functions of ``rnn.py``, ``lstm.py``, ``gru.py``.
Shapes: N batch, I input, H hidden, L layers.
"""

from __future__ import annotations

import numpy as np


class StepTape:
    """What ``StackedCell.step`` recorded for backward: per step, each layer's input and cache."""

    def __init__(self):
        self.steps: list = []  # recorded, not yet inverted: [(xs, caches)]
        self.done: list = []  # inverted, newest first: [(xs, caches, dxgs, dhgs)]

    def __len__(self):
        return len(self.steps)


class StackedCell:
    """One time step through all layers of a unidirectional ``RNN``, ``LSTM`` or ``GRU``."""

    def __init__(self, layer):
        if layer.bidirectional:
            raise ValueError("StackedCell steps forward in time: the layer must be unidirectional")
        if layer.dropout > 0:
            raise ValueError("StackedCell applies no dropout between layers: build the layer with dropout=0")
        self.layer = layer
        self.cell = layer.cell

    def initial_state(self, N):
        """Zero states ``[h (L, N, H)]`` (LSTM: ``[h, c]``)."""
        L, H = self.layer.num_layers, self.layer.hidden_size
        return [np.zeros((L, N, H), self.layer.dtype) for _ in range(self.cell.n_states)]

    def tape(self) -> StepTape:
        return StepTape()

    def _check(self, x, state):
        x = np.asarray(x, self.layer.dtype)
        if x.ndim != 2 or x.shape[1] != self.layer.input_size:
            raise ValueError(
                f"StackedCell.step: x must have shape (N, {self.layer.input_size}), got {x.shape}"
            )
        shape = (self.layer.num_layers, x.shape[0], self.layer.hidden_size)
        if len(state) != self.cell.n_states or any(np.shape(s) != shape for s in state):
            raise ValueError(
                f"StackedCell.step: state must be {self.cell.n_states} array(s) of "
                f"shape {shape} (num_layers, batch, hidden_size)"
            )
        return x

    def step(self, x, state, tape: StepTape | None = None):
        """x (N, I), state [h (, c)] each (L, N, H) -> ``out (N, H), new state`` (new arrays).
        With a ``tape`` the step is recorded for ``step_backward``."""
        x = self._check(x, state)
        new = [np.empty_like(s) for s in state]
        xs, caches = [], []
        for layer in range(self.layer.num_layers):
            U, W, b_ih, b_hh = self.layer._weights(f"_l{layer}")
            xg = x @ U.T  # (N, G*H)  U x_t
            xg += b_ih  #   + b_ih
            states, cache = self.cell.step(xg, [s[layer] for s in state], W, b_hh)
            for s, v in zip(new, states):
                s[layer] = v
            xs.append(x)
            caches.append(cache)
            x = states[0]  # the next layer's input: h_t^(l)
        if tape is not None:
            tape.steps.append((xs, caches))
        return x, new

    def step_backward(self, dout, dstate, tape: StepTape):
        """Invert the newest recorded step. ``dout (N, H)`` reaches its output, ``dstate``
        [dh (, dc)] (L, N, H) its new state; returns ``dx (N, I), dstate`` before the step."""
        if not tape.steps:
            raise RuntimeError("StackedCell.step_backward: no recorded step left on the tape")
        xs, caches = tape.steps.pop()
        dstate = [d.copy() for d in dstate]
        dinp = np.asarray(dout, self.layer.dtype)
        dxgs, dhgs = [], []
        for layer in range(self.layer.num_layers - 1, -1, -1):
            U, W, _, _ = self.layer._weights(f"_l{layer}")
            dS = [dstate[0][layer] + dinp] + [d[layer] for d in dstate[1:]]  # recurrent + from above
            dxg, dhg, dprev = self.cell.step_backward(dS, caches[layer], W)
            for d, v in zip(dstate, dprev):
                d[layer] = v
            dxgs.append(dxg)
            dhgs.append(dhg)
            dinp = dxg @ U  # dx = U^T dxg   (N, I_l)
        tape.done.append((xs, caches, dxgs[::-1], dhgs[::-1]))
        if not tape.steps:
            self._accumulate(tape)
        return dinp, dstate

    def _accumulate(self, tape: StepTape):
        """dU, dW, db of every layer: one GEMM per tensor over all inverted steps."""
        steps = tape.done[::-1]  # time order
        tape.done = []
        g = self.layer.grads
        for layer in range(self.layer.num_layers):
            sfx = f"_l{layer}"
            X = np.concatenate([s[0][layer] for s in steps])  # (T*N, I_l)
            dxg = np.concatenate([s[2][layer] for s in steps])  # (T*N, G*H)
            dhg = np.concatenate([s[3][layer] for s in steps])
            g["weight_ih" + sfx] += dxg.T @ X  # dU = sum dxg^T x
            for k, (rows, _) in enumerate(self.cell.step_operands(steps[0][1][layer])):
                op = np.concatenate([self.cell.step_operands(s[1][layer])[k][1] for s in steps])
                g["weight_hh" + sfx][rows] += dhg[:, rows].T @ op  # dW = sum dhg^T h_{t-1}
            if self.layer.bias:
                g["bias_ih" + sfx] += dxg.sum(0)
                g["bias_hh" + sfx] += dhg.sum(0)
