"""One layer in one direction: what its time loop takes and what it gives back, whichever loop runs.

This is the seam between the math and the speed. The NumPy reference (``recurrent.py``) and the
compiled backend (``backend/``) take the same ``ForwardJob`` and give ``(out, DirectionCache)``,
take the same ``BackwardJob`` and give ``DirectionGrads``. A cell is described to a backend by its
``CellSpec``: plain data (which equations, with which options), nothing that computes. Nothing
here imports the math or the backend; both import this.

    ForwardJob(spec, x, states0, U, W, b_ih, b_hh, mask, keep) -> out (T, N, H), DirectionCache
    BackwardJob(spec, dout, dstates, cache, U, W)               -> DirectionGrads

Shapes: T time, N batch, I input, H hidden, G gates (1 RNN, 3 GRU, 4 LSTM).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import numpy as np

# ----------------------------------------------------------------------------- the cells


@dataclasses.dataclass(frozen=True)
class LSTMSpec:
    """The LSTM of ``lstm.py``: gates i, f, g, o; states (h, c)."""

    n_gates: ClassVar[int] = 4
    n_states: ClassVar[int] = 2


@dataclasses.dataclass(frozen=True)
class GRUSpec:
    """The GRU of ``gru.py``: gates r, z, n; ``reset_after`` picks PyTorch's or the chapter's form."""

    reset_after: bool = True
    n_gates: ClassVar[int] = 3
    n_states: ClassVar[int] = 1


@dataclasses.dataclass(frozen=True)
class RNNSpec:
    """The Elman RNN of ``rnn.py``: one gate, ``tanh`` or ``relu``."""

    nonlinearity: str = "tanh"
    n_gates: ClassVar[int] = 1
    n_states: ClassVar[int] = 1


CellSpec = LSTMSpec | GRUSpec | RNNSpec


# ----------------------------------------------------------------------------- what forward keeps


class LSTMTape(NamedTuple):
    """What the LSTM's backward needs of every step besides the states."""

    gates: np.ndarray  # (T, N, 4H) activated i, f, g, o
    tanh_c: np.ndarray  # (T, N, H)


class GRUTape(NamedTuple):
    """What the GRU's backward needs of every step besides the states."""

    gates: np.ndarray  # (T, N, 3H) activated r, z, n
    hn: np.ndarray  # (T, N, H) reset_after: W_n h_{t-1} + b_hn;  reset before: r * h_{t-1}


Tape = LSTMTape | GRUTape | None  # the RNN needs only its states


@dataclasses.dataclass
class DirectionCache:
    """What a forward pass keeps for its backward (and for ``gate_trace``)."""

    x: np.ndarray  # (T, N, I) the input as the loop saw it (reversed for the reverse direction)
    S: list[np.ndarray]  # n_states arrays (T+1, N, H): S[k][t] is the state before step t
    tape: Any  # the cell's per-step arrays: LSTMTape, GRUTape or None (``Tape``)
    mask: np.ndarray | None  # (T, N, 1) bool, True where t < length; None: every sequence full


# ----------------------------------------------------------------------------- the jobs


@dataclasses.dataclass
class ForwardJob:
    """Run one layer in one direction over ``x``."""

    spec: CellSpec
    x: np.ndarray  # (T, N, I)
    states0: list[np.ndarray]  # h_0 (, c_0), each (N, H)
    U: np.ndarray  # (G*H, I) weight_ih
    W: np.ndarray  # (G*H, H) weight_hh
    b_ih: np.ndarray  # (G*H,)
    b_hh: np.ndarray  # (G*H,)
    mask: np.ndarray | None  # (T, N, 1) bool, or None
    keep: bool = True  # False (inference_mode): nothing is needed for backward


@dataclasses.dataclass
class BackwardJob:
    """Invert the forward pass that made ``cache``."""

    spec: CellSpec
    dout: np.ndarray  # (T, N, H) gradient of the outputs
    dstates: list[np.ndarray]  # dL/dh_T (, dL/dc_T), each (N, H)
    cache: DirectionCache
    U: np.ndarray  # (G*H, I)
    W: np.ndarray  # (G*H, H)


@dataclasses.dataclass
class DirectionGrads:
    """What a backward pass gives: the gradients of its inputs and of its weights."""

    dx: np.ndarray  # (T, N, I)
    dstates0: list[np.ndarray]  # dL/dh_0 (, dL/dc_0), each (N, H)
    dU: np.ndarray  # (G*H, I)
    dW: np.ndarray  # (G*H, H)
    db_ih: np.ndarray  # (G*H,)
    db_hh: np.ndarray  # (G*H,)
    dh_sq: np.ndarray  # (T, N) float64: ||dL/dh_t||^2 per sequence (all gradient reaching h_t)


def work(jobs: list[ForwardJob] | list[BackwardJob]) -> float:
    """Multiply-adds of the jobs' GEMMs (whether running them in parallel is worth a hand-over)."""
    total = 0.0
    for job in jobs:
        x = job.x if isinstance(job, ForwardJob) else job.cache.x
        T, N, I = x.shape
        GH, H = job.W.shape
        total += T * N * GH * (I + H)
    return total


def step_work(jobs: list[ForwardJob] | list[BackwardJob]) -> float:
    """Multiply-adds of one time step of one direction, ``N G H (I + H)`` (whether the step's
    GEMMs are worth splitting over threads: ``runtime.min_thread_work()``)."""
    most = 0.0
    for job in jobs:
        x = job.x if isinstance(job, ForwardJob) else job.cache.x
        N, I = x.shape[1:]
        GH, H = job.W.shape
        most = max(most, float(N * GH * (I + H)))
    return most
