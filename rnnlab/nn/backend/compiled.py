"""The compiled backend: the jobs of ``direction.py`` in, the NumPy loop's outputs out.

A direction's pass here is the reference's (``recurrent.py``) with every speed device the
reference leaves out: the hoisted products on the GEMM library chosen for their shape
(``tuning.py``), buffers from the pool (``scratch.py``), the time loop compiled (``loops.py``,
around it ``cell_loops.py``: weight operands packed once per sequence, row blocks of the batch
in parallel), the weight gradients of the LSTM and the RNN-like forms as ONE GEMM over
``[x | h_{t-1} | 1]``, and the two directions of a bidirectional layer as parallel jobs.

Row blocks (LSTM): below ``runtime.settings().min_rows`` rows per block the row-block loops lose
to one threaded GEMM per step. Directions: with several GEMM threads the two directions run as
two jobs on the runtime's pool, each with half of the threads; where the LSTM's loop runs in row
blocks instead, they run one after the other, each with all threads. Passes of less than
``runtime.settings().min_work`` multiply-adds stay serial. Threads by size: a pass whose time
steps are smaller than ``runtime.min_thread_work()`` multiply-adds runs every GEMM on the
calling thread alone, and no row blocks or parallel directions either (``threads_by_size``):
below it a second thread gains little idle and, on a loaded machine, makes every step wait.
(The measurements behind these rules: docs/MEASUREMENTS.md, "Where the speed rules come from".)

If a loop fails to compile, we warn once and that cell takes the NumPy loop.
This module imports numba: ``backend.select`` loads it by name on first use only.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
import warnings

import numba
import numpy as np

from rnnlab.nn import runtime
from rnnlab.nn.backend import loops, scratch, tuning
from rnnlab.nn.backend.cell_loops import LOOPS, CellLoop
from rnnlab.nn.direction import (
    BackwardJob,
    CellSpec,
    DirectionCache,
    DirectionGrads,
    ForwardJob,
    step_work,
    work,
)

try:  # numba's OpenMP layer (absent where numba runs on TBB or its workqueue only)
    from numba.np.ufunc import omppool  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the numba build
    omppool = None


class Compiled:
    name = "compiled"

    def __init__(self, choice, libs):
        """``choice``: {shape class: library name} (tuning.py); ``libs``: {name: library}."""
        self.choice, self.libs = dict(choice), dict(libs)
        names = list(self.choice.values())
        self.lib = self.libs[max(set(names), key=names.count)]  # thread counts are asked of it
        self.used = [self.libs[n] for n in sorted(set(names))]  # the libraries the choice calls
        self._ready: dict = {}
        self._threads: list = []
        self._local: dict = {}
        self._cap = threading.local()  # .n: this thread's GEMM threads inside threads_by_size

    def lib_for(self, M, K, Nc):
        """The GEMM library that runs ``(M, K) @ (K, Nc)`` products here (chosen by timing)."""
        return self.libs[self.choice[tuning.shape_class(M, K, Nc)]]

    def matmul(self, a, b, out=None):
        """``a @ b`` for the hoisted products, on the library chosen for their shape."""
        return self.lib_for(a.shape[0], a.shape[1], b.shape[1]).matmul(a, b, out)

    # -- the interface (backend.Backend) ------------------------------------------------------
    def forward(self, jobs: list[ForwardJob]) -> list[tuple[np.ndarray, DirectionCache]]:
        with self.threads_by_size(jobs):
            return self._directions([functools.partial(self.direction_forward, j) for j in jobs], work(jobs))

    def backward(self, jobs: list[BackwardJob]) -> list[DirectionGrads]:
        with self.threads_by_size(jobs):
            return self._directions([functools.partial(self.direction_backward, j) for j in jobs], work(jobs))

    @contextlib.contextmanager
    def threads_by_size(self, jobs):
        """Inside: this thread's passes on as many GEMM threads as the jobs' steps are worth
        (``runtime.gemm_threads``). Below ``runtime.min_thread_work()``, one: the libraries
        with a count of this thread's own (MKL, oneDNN) are set to 1 here and given back after,
        and the row blocks and parallel directions, which ask ``gemm_threads_now``, stay off.
        OpenBLAS has no such count (its global one would change other threads' calls); it runs
        products under ~2.6e5 multiply-adds on one thread by itself. The GEMM choice stays the
        one timed for the configured count (no new timing mid-run); a product's result does
        not depend on its thread count beyond float32 rounding."""
        threads = self.lib.get_threads()
        wanted = runtime.gemm_threads(step_work(jobs), threads)
        if wanted == threads or getattr(self._cap, "n", None) is not None:  # nested: the outer rules
            yield
            return
        self._cap.n = wanted
        try:
            with contextlib.ExitStack() as scope:
                for lib in self.used:
                    scope.enter_context(lib.on_this_thread(wanted))
                yield
        finally:
            self._cap.n = None

    def gemm_threads_now(self) -> int:
        """The GEMM threads this thread's pass may use: the library's count, or fewer inside
        ``threads_by_size``."""
        threads = self.lib.get_threads()
        cap = getattr(self._cap, "n", None)
        return threads if cap is None else min(cap, threads)

    def ready(self, spec: CellSpec) -> bool:
        """Whether the compiled loops of this cell run here (compiled and checked once)."""
        ok = self._ready.get(spec)
        if ok is None:
            ok = self._ready[spec] = type(spec) in LOOPS and self._warm_up(spec)
        return ok

    # -- one direction ---------------------------------------------------------------------
    def direction_forward(self, job: ForwardJob) -> tuple[np.ndarray, DirectionCache]:
        x, spec, mask = job.x, job.spec, job.mask
        T, N, I = x.shape
        H = job.W.shape[1]
        XG = scratch.empty((T, N, spec.n_gates * H), x.dtype)
        self.matmul(x.reshape(T * N, I), job.U.T, out=XG.reshape(T * N, -1))  # XG = X U^T, one GEMM
        S = [scratch.empty((T + 1, N, H), x.dtype) for _ in range(spec.n_states)]
        for s, s0 in zip(S, job.states0):
            s[0] = s0  # h_0 (, c_0)
        active = np.ones((0, N), bool) if mask is None else np.ascontiguousarray(mask[:, :, 0])
        tape = LOOPS[type(spec)].forward(self, spec, XG, S, job.W, job.b_ih, job.b_hh, active, job.keep)
        out = S[0][1:] if mask is None else S[0][1:] * mask
        return out, DirectionCache(x, S, tape, mask)

    def direction_backward(self, job: BackwardJob) -> DirectionGrads:
        cache, spec, loop = job.cache, job.spec, LOOPS[type(job.spec)]
        x, mask = cache.x, cache.mask
        T, N, I = x.shape
        H = job.W.shape[1]
        dXG = scratch.empty((T, N, spec.n_gates * H), x.dtype)  # gradient of U x_t + b_ih
        dHG = dXG if loop.shares_dhg(spec) else scratch.empty(dXG.shape, x.dtype)  # ... of W h + b_hh
        dS = [scratch.copy(d, x.dtype) for d in job.dstates]
        dout = np.ascontiguousarray(job.dout if mask is None else job.dout * mask)
        active = np.ones((T, N), bool) if mask is None else np.ascontiguousarray(mask[:, :, 0])
        dh_sq = scratch.empty((T, N), np.float64)
        dS = loop.backward(self, spec, dout, dS, cache, job.W, dXG, dHG, dh_sq, active)
        dU, dW, db_ih, db_hh = self._weight_grads(loop, spec, dXG, dHG, cache)
        dx = self.matmul(dXG.reshape(T * N, -1), job.U).reshape(T, N, I)  # dx_t = U^T dXG_t
        return DirectionGrads(dx, dS, dU, dW, db_ih, db_hh, dh_sq)

    def _weight_grads(self, loop: CellLoop, spec, dXG, dHG, cache):
        """dU = sum_t dXG_t^T x_t,  dW = sum_t dHG_t^T h_{t-1},  db = sum_t dXG_t (and dHG_t):
        ONE GEMM over ``[x_t | h_{t-1} | 1]`` where both are one gradient times one operand."""
        x = cache.x
        T, N, I = x.shape
        H, M = cache.S[0].shape[2], T * N
        ops = loop.hh_operands(spec, cache)  # [(gate rows, (T, N, H))]
        if dHG is dXG and len(ops) == 1:
            Z = scratch.empty((M, I + H + 1), x.dtype)  # [x_t | h_{t-1} | 1]
            Z[:, :I], Z[:, I : I + H], Z[:, I + H] = x.reshape(M, I), ops[0][1].reshape(M, H), 1
            dUWb = self.matmul(dXG.reshape(M, -1).T, Z)  # (G*H, I + H + 1)
            db = np.ascontiguousarray(dUWb[:, I + H])
            return dUWb[:, :I], dUWb[:, I : I + H], db, db.copy()  # b_hh adds like b_ih
        dXG2, dHG2 = dXG.reshape(M, -1), dHG.reshape(M, -1)
        dU = self.matmul(dXG2.T, x.reshape(M, I))
        dWs = [self.matmul(dHG2[:, rows].T, op.reshape(M, H)) for rows, op in ops]  # per block of gates
        dW = dWs[0] if len(dWs) == 1 else np.concatenate(dWs)
        db_ih = dXG2.sum(0)
        db_hh = db_ih.copy() if dHG is dXG else dHG2.sum(0)
        return dU, dW, db_ih, db_hh

    # -- availability ----------------------------------------------------------------------
    def _warm_up(self, spec):
        """Compile this cell's loops on a tiny pass (T, N, H = 2, 2, 3); False if they fail."""
        try:
            T, N, H, G = 2, 2, 3, spec.n_gates
            z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
            states, U, W, b = [z(N, H)] * spec.n_states, z(G * H, 1), z(G * H, H), z(G * H)
            _, cache = self.direction_forward(ForwardJob(spec, z(T, N, 1), states, U, W, b, b, None))
            self.direction_backward(BackwardJob(spec, z(T, N, H), states, cache, U, W))
            return True
        except Exception as e:  # noqa: BLE001  any compile failure means: use NumPy
            warnings.warn(
                f"rnnlab: the compiled {type(spec).__name__[:-4]} loops are unavailable "
                f"({type(e).__name__}: {e}); using the NumPy path",
                RuntimeWarning,
                stacklevel=6,
            )
            return False

    def parallel_threads(self) -> int:
        """Threads the row blocks may use: numba's thread count when its threading layer is
        OpenMP (libgomp's pool, shared with MKL's GNU OpenMP layer), else 1 (a TBB or workqueue
        pool would run its threads beside the GEMM library's and PyTorch's)."""
        if not self._threads:
            n = 1
            try:
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

    def row_blocks(self, spec: CellSpec, N):
        """How many row blocks of the batch the loop of ``spec`` runs in parallel: one per GEMM
        thread, at least ``min_rows`` rows each, dividing N; else 1 (and 1 for the GRU)."""
        threads = self.gemm_threads_now()
        loop = LOOPS.get(type(spec))
        if threads < 2 or loop is None or not loop.row_blocks:
            return 1
        blocks = min(threads, N // runtime.settings().min_rows)
        while blocks > 1 and N % blocks:
            blocks -= 1
        return min(blocks, self.parallel_threads()) if blocks > 1 else 1

    def local_threads(self, lib):
        """A compiled ``int(int)`` the row blocks call on their threads to give this thread
        ``n`` GEMM threads (returning the count before), or None: the library's own
        (MKL_Set_Num_Threads_Local), or, for an OpenMP library (oneDNN), one made here."""
        if lib.local_threads is not None or lib.omp is None:
            return lib.local_threads
        if lib.name not in self._local:
            get, put = lib.omp.omp_get_max_threads, lib.omp.omp_set_num_threads

            @numba.cfunc(numba.int32(numba.int32))
            def local(n):  # pragma: no cover - compiled
                before = get()
                put(n)
                return before

            self._local[lib.name] = local.ctypes
        return self._local[lib.name]

    # -- directions ----------------------------------------------------------------------
    def _directions(self, calls, work):
        """The directions of a layer as parallel jobs, each with its share of the threads,
        when there are two and enough ``work`` (multiply-adds); inside a job the loop then runs
        on one thread (no row blocks)."""
        threads = self.gemm_threads_now()
        if len(calls) < 2 or threads < 2 or work < runtime.settings().min_work:
            return [call() for call in calls]
        per_job = max(1, threads // len(calls))

        def job(call):
            for lib in self.libs.values():
                lib.set_local(per_job)  # this pool thread's GEMM threads
            return call()

        with contextlib.ExitStack() as scope:
            for lib in self.libs.values():
                scope.enter_context(lib.threads_per_caller(per_job))
            return runtime.run([functools.partial(job, call) for call in calls])


def _keeping_omp_levels(launch):
    """Run numba's first parallel call, then give OpenMP back its nesting setting: numba's
    OpenMP layer sets ``omp_set_max_active_levels(255)`` when it starts, and in a process
    where PyTorch shares that libgomp, PyTorch's own parallel regions (its MKL GEMMs inside
    them) then nest teams of threads, and PyTorch's GRU ran many times slower once numba had
    started."""
    try:
        lib = ctypes.CDLL(omppool.__file__)  # its libgomp, whichever copy that is
        before = lib.omp_get_max_active_levels()
    except Exception:  # noqa: BLE001  no OpenMP layer: nothing to give back
        return launch()
    try:
        return launch()
    finally:
        lib.omp_set_max_active_levels(before)
