"""What each cell's compiled loops (``loops.py``) need around them: one class per cell.

``compiled.Compiled`` picks the class by the type of the cell's description
(``direction.LSTMSpec`` -> ``LSTMLoop``, ``GRUSpec`` -> ``GRULoop``; there is none for the
Elman RNN, which takes the NumPy loop). Each one makes the weight operands of its GEMM library
(packed or copied once per sequence), calls the forward or backward loop with the buffers the
loops write, and says what ``W`` multiplies (for dW). ``be`` is the ``Compiled`` backend
(its GEMM libraries, its row blocks). Shapes: T time, N batch, H hidden.
"""

from __future__ import annotations

import numba
import numpy as np

from rnnlab.nn.backend import loops, scratch
from rnnlab.nn.direction import DirectionCache, GRUSpec, GRUTape, LSTMSpec, LSTMTape


class LSTMLoop:
    """The LSTM's loops; with several GEMM threads, maybe in row blocks of the batch."""

    row_blocks = True  # the GRU's two kernels per step gain nothing from row blocks

    def shares_dhg(self, spec) -> bool:
        return True  # dL/d(W h) is dL/d(U x): da

    def hh_operands(self, spec, cache: DirectionCache):
        return [(slice(None), cache.S[0][:-1])]

    def forward(self, be, spec, XG, S, W, b_ih, b_hh, active, keep) -> LSTMTape:
        """XG (T, N, 4H) holds U x_t (no biases); fills S; XG ends as the activated gates."""
        T, N, H = XG.shape[0], XG.shape[1], S[0].shape[2]
        blocks = be.row_blocks(spec, N)
        lib = be.lib_for(N // blocks, H, 4 * H)
        Wp = lib.operand(W.T, N // blocks, T)  # (H, 4H) W^T, packed or copied once
        tanh_c = scratch.empty((T if keep else 1, N, H), XG.dtype)
        b = np.add(b_ih, b_hh, out=scratch.empty(b_ih.shape, XG.dtype))  # b_ih + b_hh
        args = (lib.compiled, Wp.operand, XG, b, S[0], S[1], tanh_c, active, keep)
        if blocks > 1:
            numba.set_num_threads(blocks)
            with lib.threads_per_caller(1):
                loops.lstm_forward_rows(*args, blocks, be.local_threads(lib))
        else:
            loops.lstm_forward(*args, 0, N)
        return LSTMTape(XG, tanh_c)

    def backward(self, be, spec, dout, dS, cache, W, dXG, dHG, dh_sq, active):
        """dS holds dL/dh_T, dL/dc_T; fills dXG, dh_sq; returns dL/dh_0, dL/dc_0."""
        S, tape = cache.S, cache.tape
        N, H = dout.shape[1], W.shape[1]
        blocks = be.row_blocks(spec, N)
        lib = be.lib_for(N // blocks, 4 * H, H)
        Wp = lib.operand(W, N // blocks, dout.shape[0])  # (4H, H) W
        dh, dc = dS
        other = scratch.empty(dh.shape, dh.dtype)  # dh_{t-1}, swapped with dh each step
        w = (lib.compiled, Wp.operand)
        args = (*w, dh, dc, other, dout, tape.gates, S[1], tape.tanh_c, active, dXG, dh_sq)
        if blocks > 1:
            numba.set_num_threads(blocks)
            with lib.threads_per_caller(1):
                in_dh = loops.lstm_backward_rows(*args, blocks, be.local_threads(lib))
        else:
            in_dh = loops.lstm_backward_loop(*args, 0, N)
        return [dh if in_dh else other, dc]


class GRULoop:
    """The GRU's loops, in both forms (reset after W_n: one GEMM a step; before: two)."""

    row_blocks = False

    def shares_dhg(self, spec) -> bool:
        return not spec.reset_after  # reset_after: r * (W_n h) makes dhg differ from dxg

    def hh_operands(self, spec, cache: DirectionCache):
        if spec.reset_after:
            return [(slice(None), cache.S[0][:-1])]
        H = cache.S[0].shape[2]  # W_rz multiplies h_{t-1}, W_n (r h_{t-1})
        return [(slice(0, 2 * H), cache.S[0][:-1]), (slice(2 * H, 3 * H), cache.tape.hn)]

    def _operands(self, be, spec, W, N, T, transposed):
        """The library and (W1, W2): all of W (reset_after) or W_rz and W_n, for forward (W^T)
        or backward."""
        H = W.shape[1]
        lib = be.lib_for(N, H, 3 * H) if transposed else be.lib_for(N, 3 * H, H)
        parts = [W] if spec.reset_after else [W[: 2 * H], W[2 * H :]]
        ops = [lib.operand(p.T if transposed else p, N, T) for p in parts]
        return lib, ops[0], ops[-1]

    def forward(self, be, spec, XG, S, W, b_ih, b_hh, active, keep) -> GRUTape:
        """XG (T, N, 3H) holds U x_t (no biases); fills S and the gates of every step."""
        T, N, H = XG.shape[0], XG.shape[1], S[0].shape[2]
        lib, W1, W2 = self._operands(be, spec, W, N, T, True)
        steps = T if keep else 1  # inference_mode: one step's buffers, overwritten
        tape = GRUTape(scratch.empty((steps, N, 3 * H), XG.dtype), scratch.empty((steps, N, H), XG.dtype))
        w = (lib.compiled, W1.operand, W2.operand)
        gates, hn = tape
        loops.gru_forward_loop(*w, XG, b_ih, b_hh, S[0], gates, hn, active, int(keep), spec.reset_after)
        return tape

    def backward(self, be, spec, dout, dS, cache, W, dXG, dHG, dh_sq, active):
        """dS holds dL/dh_T; fills dXG, dHG, dh_sq; returns dL/dh_0."""
        S, tape = cache.S, cache.tape
        T, N = dout.shape[:2]
        lib, W1, W2 = self._operands(be, spec, W, N, T, False)
        dh = dS[0]  # W^T dhg_{t+1} (dL/dh_T on entry)
        carry = scratch.empty(dh.shape, dh.dtype)  # the direct path z dL/dh_t
        carry[...] = 0
        drh = scratch.empty(dh.shape, dh.dtype)  # d(r h), reset before W_n
        w = (lib.compiled, W1.operand, W2.operand)
        loops.gru_backward_loop(
            *w, dh, carry, drh, dout, tape.gates, S[0], tape.hn, active, dXG, dHG, dh_sq, spec.reset_after
        )
        return [dh + carry]


CellLoop = LSTMLoop | GRULoop
LOOPS: dict[type, CellLoop] = {LSTMSpec: LSTMLoop(), GRUSpec: GRULoop()}
