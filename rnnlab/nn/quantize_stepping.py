"""The stepping cell of a quantised layer: ``stepping.StackedCell``'s ``step`` (one time step
through every layer: a translator's decoder, a stream) over a unidirectional ``QuantizedRNN``,
through the compiled loops' one-call step where they load (``backend/int8_loops.py``,
``bf16_loops.py``), else the layer's reference loop (``quantize.py``).
Shapes: N batch, I input, H hidden, L layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.nn.backend import onednn_threads_by_size, packed
from rnnlab.nn.quantize import GATES, QuantizedRNN, compiled_loops

_F32 = np.float32
# A stepping cell's int8 / bf16 step is weighed against runtime.min_thread_work at 1/16 of its
# multiply-adds: a step's packed products are too short to split (one thread against two, 1,000
# int8 LSTM steps at N=1, H=128: 10.7 against 15.0 ms; docs/QUANTIZATION.md has the table).
STEP_WORK = 1 / 16


class QuantizedStackedCell:
    """``stepping.StackedCell``'s ``step`` over a unidirectional ``QuantizedRNN``: one time step
    through every layer (a decoder's), the layer's quantised products and cells (no tape)."""

    def __init__(self, layer: QuantizedRNN):
        if layer.bidirectional:
            raise ValueError("QuantizedStackedCell steps forward in time: the layer must be unidirectional")
        self.layer = layer
        self.n_states = 2 if layer.mode == "LSTM" else 1
        self._plans: dict[tuple[str, int, int], tuple] = {}  # (loops, rows, threads) -> the steps' plans

    def initial_state(self, N: int) -> list[np.ndarray]:
        L, H = self.layer.num_layers, self.layer.hidden_size
        return [np.zeros((L, N, H), _F32) for _ in range(self.n_states)]

    def step(self, x, state, tape=None):
        """x (N, I), state [h (, c)] each (L, N, H) -> ``out (N, H), new state`` (new arrays)."""
        if tape is not None:
            raise RuntimeError("QuantizedStackedCell is inference-only: no tape")
        x = np.asarray(x, _F32)
        shape = (self.layer.num_layers, x.shape[0], self.layer.hidden_size)
        if x.ndim != 2 or x.shape[1] != self.layer.input_size or not _shaped(state, shape):
            raise ValueError(f"QuantizedStackedCell.step: x (N, {self.layer.input_size}), state {shape}")
        loops = compiled_loops(self.layer.weight_dtype)
        if loops is not None and loops.supports(self.layer.spec):
            return self._compiled_step(loops, np.ascontiguousarray(x), state)
        new = [np.empty(shape, _F32) for _ in state]
        inp = np.ascontiguousarray(x)[None]  # (1, N, I): one step
        for layer in range(self.layer.num_layers):
            out, states = self.layer.run_direction(f"_l{layer}", inp, [s[layer] for s in state], None)
            for s, v in zip(new, states):
                s[layer] = v
            inp = out
        return inp[0], new

    def _compiled_step(self, loops: Any, x: np.ndarray, state) -> tuple:
        """``step`` through the compiled loops' one-call step (its plans kept per row bucket,
        ``packed.rows``, and thread count: a packed product's primitive is made for both)."""
        N, layer, H = x.shape[0], self.layer, self.layer.hidden_size
        work = N * GATES[layer.mode] * H * (max(layer.input_size, H) + H) * STEP_WORK  # the widest layer's
        new = [_copy(s) for s in state]  # updated in place below
        h, c = new[0], (new[1] if self.n_states == 2 else None)
        with onednn_threads_by_size(work) as threads:
            key = (loops.__name__, packed.rows(N), threads)  # a plan serves every N of its rows
            if key not in self._plans:
                mats = [layer.mats[f"_l{i}"] for i in range(layer.num_layers)]
                self._plans[key] = (
                    [loops.step_plan(layer.spec, *m, N) for m in mats],
                    np.zeros((0, H), _F32),
                )
            plans, no_c = self._plans[key]
            for i, plan in enumerate(plans):
                loops.step(plan, x, h[i], no_c if c is None else c[i])
                x = h[i]
        return x.copy(), new


def _shaped(state, shape: tuple) -> bool:
    """Whether every array of ``state`` has ``shape`` (an array's own shape read first: a
    stepping cell checks at every step, where ``np.shape`` in a generator cost 0.8 us)."""
    for s in state:
        if getattr(s, "shape", None) != shape and np.shape(s) != shape:
            return False
    return True


def _copy(s) -> np.ndarray:
    """A C-contiguous float32 copy of ``s`` (``ndarray.copy`` where it is one already: faster)."""
    return s.copy() if isinstance(s, np.ndarray) and s.dtype == _F32 else np.array(s, _F32, order="C")
