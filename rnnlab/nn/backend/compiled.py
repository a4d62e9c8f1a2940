"""The compiled backend: the NumPy loop's inputs in, its outputs out, the loop in ``loops.py``.

For each call it decides what the loop needs around it: the weight operands (packed once per
sequence by the GEMM library, ``gemm.py``), how many row blocks of the batch run in parallel,
and whether the two directions of a bidirectional layer run as parallel jobs.

Row blocks (LSTM): below ``runtime.settings().min_rows`` rows per block, the row-block loops
lose to one threaded GEMM per step (measured, LSTM inference, 2 threads: 10 rows per block
11.3 -> 12.4 ms; 16 and 32 gain: (50,32,32,128) 1.70 -> 1.21 ms, (50,64,128,256) 8.8 -> 7.1 ms).

Directions: the two directions of a bidirectional layer are independent recurrences; with
several GEMM threads they run as two jobs on the runtime's pool, each with half of the threads
(measured, 2 threads: LSTM (20,64,256,256) 2 layers bidirectional, training 105 -> 98 ms,
inference 34 -> 33 ms). Where the LSTM's loop runs in row blocks instead, the directions run one
after the other, each with all threads (a little faster, and one direction's buffers alive at
a time). Passes of less than ``runtime.settings().min_work`` multiply-adds stay serial.

If a loop fails to compile, we warn once and that cell takes the NumPy loop.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from rnnlab.nn import runtime
from rnnlab.nn.backend import scratch


class Compiled:
    name = "compiled"

    def __init__(self, choice, libs):
        """``choice``: {shape class: library name} (tuning.py); ``libs``: {name: library}."""
        from rnnlab.nn.backend import loops, tuning  # imports numba: only now

        self.loops, self._class = loops, tuning.shape_class
        self.choice, self.libs = dict(choice), dict(libs)
        names = list(self.choice.values())
        self.lib = self.libs[max(set(names), key=names.count)]  # thread counts are asked of it
        self._ready: dict = {}
        self._threads: list = []

    def lib_for(self, M, K, Nc):
        """The GEMM library that runs ``(M, K) @ (K, Nc)`` products here (chosen by timing)."""
        return self.libs[self.choice[self._class(M, K, Nc)]]

    def matmul(self, a, b, out=None):
        """``a @ b`` for the hoisted products, on the library chosen for their shape."""
        return self.lib_for(a.shape[0], a.shape[1], b.shape[1]).matmul(a, b, out)

    # -- availability --------------------------------------------------------------------
    def ready(self, cell_name: str) -> bool:
        """Whether the compiled loops of this cell run here (compiled and checked once)."""
        ok = self._ready.get(cell_name)
        if ok is None:
            ok = self._ready[cell_name] = self._warm_up(cell_name)
        return ok

    def _warm_up(self, cell_name):
        if cell_name not in ("lstm", "gru"):
            return False
        from rnnlab.nn.recurrent import GRUSteps, LSTMSteps

        try:
            T, N, H = 2, 2, 3
            cells = [LSTMSteps()] if cell_name == "lstm" else [GRUSteps(True), GRUSteps(False)]
            for cell in cells:
                G = cell.n_gates
                z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
                S = [z(T + 1, N, H) for _ in range(cell.n_states)]
                ws = self.forward(cell, z(T, N, G * H), S, z(G * H, H), z(G * H), z(G * H), None, True)
                from rnnlab.nn.recurrent import DirectionCache

                self.backward(
                    cell,
                    z(T, N, H),
                    [z(N, H) for _ in S],
                    DirectionCache(z(T, N, 1), S, ws, None),
                    z(G * H, H),
                    z(T, N, G * H),
                    z(T, N, G * H),
                    np.zeros((T, N)),
                )
            return True
        except Exception as e:  # noqa: BLE001  any compile failure means: use NumPy
            warnings.warn(
                f"rnnlab: the compiled {cell_name.upper()} loops are unavailable "
                f"({type(e).__name__}: {e}); using the NumPy path",
                RuntimeWarning,
                stacklevel=5,
            )
            return False

    def parallel_threads(self) -> int:
        """Threads the row blocks may use: numba's thread count when its threading layer is
        OpenMP (libgomp's pool, shared with MKL's GNU OpenMP layer), else 1 (a TBB or workqueue
        pool would run its threads beside the GEMM library's and PyTorch's)."""
        if not self._threads:
            n = 1
            try:
                import numba

                loops = self.loops

                _keeping_omp_levels(lambda: loops.probe(np.zeros(2)))
                if numba.threading_layer() == "omp":
                    n = numba.config.NUMBA_NUM_THREADS
            except Exception as e:  # noqa: BLE001  no parallel layer: serial loops only
                warnings.warn(
                    f"rnnlab: numba's parallel layer is unavailable ({e}); the "
                    "recurrent loops run on one thread",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self._threads.append(n)
        return self._threads[0]

    def row_blocks(self, cell, N):
        """How many row blocks of the batch the loop runs in parallel: one per GEMM thread, at
        least ``min_rows`` rows each, dividing N; else 1. LSTM only (measured: the GRU's two
        kernels per step gain nothing)."""
        threads = self.lib.get_threads()
        if threads < 2 or cell.name != "lstm":
            return 1
        blocks = min(threads, N // runtime.settings().min_rows)
        while blocks > 1 and N % blocks:
            blocks -= 1
        return min(blocks, self.parallel_threads()) if blocks > 1 else 1

    # -- the loops -----------------------------------------------------------------------
    def forward(self, cell, XG, S, W, b_ih, b_hh, mask, keep):
        """XG (T, N, G*H) holds U x_t (no biases); fills S; returns the cell's WS."""
        active = np.ones((0, XG.shape[1]), bool) if mask is None else np.ascontiguousarray(mask[:, :, 0])
        if cell.name == "lstm":
            return self._lstm_forward(cell, XG, S, W, b_ih, b_hh, active, keep)
        return self._gru_forward(cell, XG, S, W, b_ih, b_hh, active, keep)

    def backward(self, cell, dout, dS, cache, W, dXG, dHG, dh_sq):
        """dS holds dL/dh_T (, dL/dc_T); fills dXG, dHG, dh_sq; returns dL/dh_0 (, dL/dc_0)."""
        T, N = dout.shape[:2]
        mask = cache.mask
        active = np.ones((T, N), bool) if mask is None else np.ascontiguousarray(mask[:, :, 0])
        dout = np.ascontiguousarray(dout)
        if cell.name == "lstm":
            return self._lstm_backward(cell, dout, dS, cache, W, dXG, dh_sq, active)
        return self._gru_backward(cell, dout, dS, cache, W, dXG, dHG, dh_sq, active)

    def _lstm_forward(self, cell, XG, S, W, b_ih, b_hh, active, keep):
        T, N, H = XG.shape[0], XG.shape[1], S[0].shape[2]
        blocks = self.row_blocks(cell, N)
        lib = self.lib_for(N // blocks, H, 4 * H)
        Wp = lib.operand(W.T, N // blocks, T)  # (H, 4H) W^T, packed or copied once
        tanh_c = scratch.empty((T if keep else 1, N, H), XG.dtype)
        b = np.add(b_ih, b_hh, out=scratch.empty(b_ih.shape, XG.dtype))  # b_ih + b_hh
        args = (lib.compiled, Wp.operand, XG, b, S[0], S[1], tanh_c, active, keep)
        if blocks > 1:
            _set_numba_threads(blocks)
            with lib.threads_per_caller(1):
                self.loops.lstm_forward_rows(*args, blocks, lib.local_threads)
        else:
            self.loops.lstm_forward(*args, 0, N)
        return cell.WS(XG, tanh_c)  # XG now holds the activated gates

    def _lstm_backward(self, cell, dout, dS, cache, W, dXG, dh_sq, active):
        S, ws = cache.S, cache.ws
        N, H = dout.shape[1], W.shape[1]
        blocks = self.row_blocks(cell, N)
        lib = self.lib_for(N // blocks, 4 * H, H)
        Wp = lib.operand(W, N // blocks, dout.shape[0])  # (4H, H) W
        dh, dc = dS
        other = scratch.empty(dh.shape, dh.dtype)  # dh_{t-1}, swapped with dh each step
        args = (lib.compiled, Wp.operand, dh, dc, other, dout, ws.gates, S[1], ws.tanh_c, active, dXG, dh_sq)
        if blocks > 1:
            _set_numba_threads(blocks)
            with lib.threads_per_caller(1):
                in_dh = self.loops.lstm_backward_rows(*args, blocks, lib.local_threads)
        else:
            in_dh = self.loops.lstm_backward_loop(*args, 0, N)
        return [dh if in_dh else other, dc]

    def _gru_operands(self, cell, W, N, T, transposed):
        """The library and (W1, W2): all of W (reset_after) or W_rz and W_n, for forward (W^T)
        or backward."""
        H = W.shape[1]
        lib = self.lib_for(N, H, 3 * H) if transposed else self.lib_for(N, 3 * H, H)
        parts = [W] if cell.reset_after else [W[: 2 * H], W[2 * H :]]
        ops = [lib.operand(p.T if transposed else p, N, T) for p in parts]
        return lib, ops[0], ops[-1]

    def _gru_forward(self, cell, XG, S, W, b_ih, b_hh, active, keep):
        T, N, H = XG.shape[0], XG.shape[1], S[0].shape[2]
        lib, W1, W2 = self._gru_operands(cell, W, N, T, True)
        ws = cell.workspace(T if keep else 1, N, H, XG.dtype)
        self.loops.gru_forward_loop(
            lib.compiled,
            W1.operand,
            W2.operand,
            XG,
            b_ih,
            b_hh,
            S[0],
            ws.gates,
            ws.hn,
            active,
            int(keep),
            cell.reset_after,
        )
        return ws

    def _gru_backward(self, cell, dout, dS, cache, W, dXG, dHG, dh_sq, active):
        S, ws = cache.S, cache.ws
        T, N = dout.shape[:2]
        lib, W1, W2 = self._gru_operands(cell, W, N, T, False)
        dh = dS[0]  # W^T dhg_{t+1} (dL/dh_T on entry)
        carry = scratch.empty(dh.shape, dh.dtype)  # the direct path z dL/dh_t
        carry[...] = 0
        drh = scratch.empty(dh.shape, dh.dtype)  # d(r h), reset before W_n
        self.loops.gru_backward_loop(
            lib.compiled,
            W1.operand,
            W2.operand,
            dh,
            carry,
            drh,
            dout,
            ws.gates,
            S[0],
            ws.hn,
            active,
            dXG,
            dHG,
            dh_sq,
            cell.reset_after,
        )
        return [dh + carry]

    # -- directions ----------------------------------------------------------------------
    def run_directions(self, cell, jobs, work):
        """The directions of a layer as parallel jobs, each with its share of the threads,
        when there are two and enough work; inside a job the loop then runs on one thread
        (no row blocks). Measured (Zen 4 EPYC, two threads, oneDNN, LSTM (20,64,256,256) 2
        layers bidirectional, ratio to PyTorch): directions in parallel 0.97-1.00 inference
        and 0.86-0.89 training, against 1.02-1.06 and 0.94-0.95 with each direction in turn
        on two row blocks."""
        threads = self.lib.get_threads()
        cfg = runtime.settings()
        if len(jobs) < 2 or threads < 2 or work < cfg.min_work:
            return [fn(*args) for fn, *args in jobs]
        per_job = max(1, threads // len(jobs))

        def job(fn, *args):
            for lib in self.libs.values():
                lib.set_local(per_job)  # this pool thread's GEMM threads
            return fn(*args)

        with contextlib.ExitStack() as scope:
            for lib in self.libs.values():
                scope.enter_context(lib.threads_per_caller(per_job))
            return runtime.run([(job, *j) for j in jobs])


def _set_numba_threads(n):
    import numba

    numba.set_num_threads(n)


def _keeping_omp_levels(launch):
    """Run numba's first parallel call, then give OpenMP back its nesting setting: numba's
    OpenMP layer sets ``omp_set_max_active_levels(255)`` when it starts, and in a process
    where PyTorch shares that libgomp, PyTorch's own parallel regions (its MKL GEMMs inside
    them) then nest teams of threads: measured, torch.nn.GRU (50,32,32,128) inference with 2
    threads 3.4 -> 137 ms after numba had started; back to 3.3 ms with the level reset."""
    try:
        import ctypes

        from numba.np.ufunc import omppool  # type: ignore[attr-defined]

        lib = ctypes.CDLL(omppool.__file__)  # its libgomp, whichever copy that is
        before = lib.omp_get_max_active_levels()
    except Exception:  # noqa: BLE001  no OpenMP layer: nothing to give back
        return launch()
    try:
        return launch()
    finally:
        lib.omp_set_max_active_levels(before)
