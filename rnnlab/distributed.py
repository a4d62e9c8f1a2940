"""Data-parallel training over MPI (mpi4py), Horovod's recipe: every rank holds the whole model,
takes its contiguous shard of each batch, and the gradients are summed with one allreduce
before the clip and the optimiser step, which then run identically on every rank.

For a loss that is a mean over the batch's B items (rows, or target words), shard r of
``b_r`` items with mean loss ``L_r`` has gradient ``g_r``; with the weight ``w_r = b_r / B``::

    L = sum_r w_r L_r          g = sum_r w_r g_r           (the full batch's mean and gradient)

so ``allreduce_gradients(model, w_r)`` scales the local gradient by ``w_r`` and sums over the
ranks: every rank then holds the full-batch gradient, whatever B mod K is. With K = 2 the sum
has two terms and is order-independent, so it equals one process that accumulates the same
two shards bit for bit.

Without MPI nothing here imports mpi4py and ``world()`` is a world of size 1 whose collectives
return their argument: the single-process path is unchanged. MPI is used when a launcher says
so (``mpiexec``/``mpirun`` of MPICH, Intel MPI, Open MPI, MVAPICH, PMIx) or ``RNNLAB_MPI=1``.
An exception on one rank is printed as one line naming the rank and aborts the whole job
(``abort_on_error``), so no rank waits forever in a collective.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from typing import Any

import numpy as np

from rnnlab.errors import UserError
from rnnlab.optim.optimizers import flat_buffers

# environment variables a launcher sets to the world size (MPICH/Intel MPI, Open MPI, MVAPICH)
SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_under_mpi(environ=None) -> bool:
    """Whether this process was started by an MPI launcher with more than one rank, or
    ``RNNLAB_MPI=1`` asks for MPI."""
    env = os.environ if environ is None else environ
    if env.get("RNNLAB_MPI", "") == "1":
        return True
    if any(int(env.get(v, "1") or 1) > 1 for v in SIZE_VARS):
        return True
    return "PMIX_RANK" in env


def local_ranks(environ=None) -> int:
    """How many ranks of this job the launcher started on this machine (1 without MPI)."""
    env = os.environ if environ is None else environ
    if not launched_under_mpi(env):
        return 1
    for v in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE"):
        if env.get(v, "").isdigit() and int(env[v]) > 0:
            return int(env[v])
    return 1


class World:
    """The ranks of one job: ``rank``, ``size`` and the collectives the trainers use. With
    ``comm`` None (no MPI) it is a world of one and every collective returns its input."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else int(comm.Get_rank())
        self.size = 1 if comm is None else int(comm.Get_size())
        self._pack: dict[int, np.ndarray] = {}  # model id -> flat gradient buffer (unflattened models)

    def __repr__(self):
        return f"World(rank={self.rank}, size={self.size})"

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # -- sharding ---------------------------------------------------------------------------
    def shard(self, n: int) -> slice:
        """This rank's contiguous slice of ``n`` items (see ``shard_bounds``)."""
        return slice(*shard_bounds(n, self.rank, self.size))

    # -- small collectives ------------------------------------------------------------------
    def bcast(self, obj: Any, root: int = 0) -> Any:
        """``obj`` of rank ``root`` on every rank (pickled over the wire, between ranks only)."""
        return obj if self.comm is None else self.comm.bcast(obj, root=root)

    def sum(self, x: float) -> float:
        """The sum of ``x`` over the ranks (float64)."""
        if self.comm is None:
            return float(x)
        buf = np.array([x], np.float64)
        self.comm.Allreduce(_mpi().IN_PLACE, buf, op=_mpi().SUM)
        return float(buf[0])

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on some rank (stop decisions must agree)."""
        return bool(flag) if self.comm is None else self.sum(1.0 if flag else 0.0) > 0

    def barrier(self) -> None:
        if self.comm is not None:
            self.comm.Barrier()

    # -- the model --------------------------------------------------------------------------
    def allreduce_gradients(self, model, weight: float = 1.0) -> None:
        """``G <- sum_r weight_r * G_r`` over the ranks, in place, as ONE message: the flat
        gradient buffer of ``Module.flatten_parameters()`` when the model has one, else a
        buffer the gradients are packed into and unpacked from."""
        flat = flat_buffers(model)
        G = flat[1] if flat is not None else self._packed(model)
        if weight != 1.0:
            G *= weight  # w_r g_r, in G's dtype
        if self.comm is not None:
            self.comm.Allreduce(_mpi().IN_PLACE, G, op=_mpi().SUM)
        if flat is None:
            _unpack(model, G)

    def _packed(self, model) -> np.ndarray:
        grads = [g for _, _, g in model.named_parameters()]
        buf = self._pack.get(id(model))
        n = sum(g.size for g in grads)
        if buf is None or buf.size != n or buf.dtype != grads[0].dtype:
            buf = self._pack[id(model)] = np.empty(n, grads[0].dtype)
        off = 0
        for g in grads:
            buf[off : off + g.size] = g.ravel()
            off += g.size
        return buf

    def broadcast_parameters(self, model, root: int = 0) -> None:
        """Every parameter of rank ``root`` copied into every rank's model, in place."""
        if self.comm is None:
            return
        for arr in _param_buffers(model):
            self.comm.Bcast(arr, root=root)

    def check_same_parameters(self, model, where: str = "") -> str:
        """The parameters' hash (``parameter_hash``); raises ``RuntimeError`` naming the ranks
        whose hash differs from rank 0's."""
        h = parameter_hash(model)
        if self.comm is None:
            return h
        hashes = self.comm.allgather(h)
        bad = [r for r, x in enumerate(hashes) if x != hashes[0]]
        if bad:
            raise RuntimeError(f"parameters differ from rank 0's on ranks {bad} {where}".rstrip())
        return h


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``(lo, hi)`` of rank ``rank``'s contiguous shard of ``n`` items split as evenly as
    possible between ``size`` ranks: the first ``n % size`` ranks take one item more. A rank
    may get no item (``n < size``); its weight is then 0."""
    if size < 1 or not 0 <= rank < size or n < 0:
        raise ValueError(f"shard_bounds needs n >= 0 and 0 <= rank < size, got {n}, {rank}, {size}")
    q, r = divmod(n, size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def parameter_hash(model) -> str:
    """SHA-256 of every parameter's name, dtype, shape and bytes, in ``named_parameters`` order."""
    h = hashlib.sha256()
    for name, p, _ in model.named_parameters():
        h.update(f"{name}:{p.dtype.str}:{p.shape}".encode())
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def _param_buffers(model):
    flat = flat_buffers(model)
    if flat is not None:
        return [flat[0]]
    return [p for _, p, _ in model.named_parameters()]


def _unpack(model, buf) -> None:
    off = 0
    for _, _, g in model.named_parameters():
        g[...] = buf[off : off + g.size].reshape(g.shape)
        off += g.size


def _mpi():
    from mpi4py import MPI  # lazily: only a job that uses MPI imports it

    return MPI


_world: World | None = None


def world() -> World:
    """The process's world: MPI's COMM_WORLD when launched under MPI (``launched_under_mpi``),
    else a world of one. Created at the first call."""
    global _world
    if _world is None:
        _world = init()
    return _world


def init(use_mpi: bool | None = None) -> World:
    """Initialise (or re-read) the world: ``use_mpi`` None decides from the environment, True
    asks for MPI (mpi4py must be installed), False gives a world of one."""
    global _world
    if use_mpi is None:
        use_mpi = launched_under_mpi()
    if not use_mpi:
        _world = World()
        return _world
    try:
        MPI = _mpi()
    except ImportError:
        raise RuntimeError(
            "launched under MPI but mpi4py is not installed: pip install 'rnnlab[mpi]'"
        ) from None
    _world = World(MPI.COMM_WORLD)
    return _world


ABORT_GRACE_S = 0.5  # how long a failing rank waits, its line printed, before MPI_Abort
EXIT_WAIT_S = 600.0  # how long a finished rank waits for the others (RNNLAB_MPI_EXIT_WAIT)


@contextlib.contextmanager
def abort_on_error(prog: str = "rnnlab", code: int = 1):
    """In a world of more than one rank: an exception escaping the block is printed as one
    line naming the rank, and the whole job is aborted (``MPI_Abort``), so that no other rank
    hangs in a collective. A rank that leaves the block normally waits for every other one
    (a non-blocking barrier, polled) at most ``RNNLAB_MPI_EXIT_WAIT`` seconds (default 600): a
    rank still inside a collective then would wait forever, so the job is aborted with one line
    naming the rank that left. In a world of one it does nothing."""
    w = world()
    if w.comm is None:
        yield w
        return
    try:
        yield w
    except BaseException as e:  # noqa: B036 - everything, Ctrl-C included, must end the job
        if isinstance(e, SystemExit) and not e.code:
            _leave_together(w, prog)
            raise
        _abort(w, f"{prog}: rank {w.rank} of {w.size}: {_one_line(e)}; aborting the job", code, e)
    _leave_together(w, prog)


def _abort(w: World, line: str, code: int, e: BaseException | None = None):
    print(line, file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    # the launcher forwards each rank's output through its own pipes, and MPI_Abort tears the
    # job down at once: a line still in a pipe was lost (CI saw an empty stderr once); a moment
    # for it to be read, on this path only
    time.sleep(ABORT_GRACE_S)
    status = e.code if isinstance(e, SystemExit) and isinstance(e.code, int) else code
    w.comm.Abort(status)
    os._exit(status)  # MPI_Abort may return before the launcher kills this process


def _leave_together(w: World, prog: str) -> None:
    """Every rank finished: return. Else, after the wait, abort the job naming this rank."""
    try:
        wait = float(os.environ.get("RNNLAB_MPI_EXIT_WAIT", EXIT_WAIT_S))
    except ValueError:
        wait = EXIT_WAIT_S
    request = w.comm.Ibarrier()
    deadline = time.monotonic() + wait
    while not request.Test():
        if time.monotonic() > deadline:
            _abort(
                w,
                f"{prog}: rank {w.rank} of {w.size} finished, but another rank did not within "
                f"{wait:g} s (it waits in a collective this rank left, or is stuck); aborting the job",
                1,
            )
        time.sleep(0.01)


def check_same_arguments(argv: list, prog: str = "rnnlab") -> None:
    """Under MPI: every rank's command line must be rank 0's; else rank 0 stops the job with
    one line naming the first option that differs (``mpiexec -n 1 ... : -n 1 ...`` with
    another ``--epochs`` hung, another ``--hidden`` said only "Other MPI error")."""
    w = world()
    if w.comm is None:
        return
    every = w.comm.allgather([str(a) for a in argv])
    root = every[0]
    odd = [r for r, a in enumerate(every) if a != root]
    if not odd:
        return
    if w.is_root:
        other = every[odd[0]]
        k = next((i for i, (a, b) in enumerate(zip(root, other)) if a != b), min(len(root), len(other)))
        option = next((a for a in root[: k + 1][::-1] if a.startswith("-")), "")
        theirs = " ".join(([option] if option and other[k : k + 1] != [option] else []) + other[k : k + 1])
        ours = " ".join(([option] if option and root[k : k + 1] != [option] else []) + root[k : k + 1])
        raise UserError(
            f"rank {odd[0]} was started with {theirs or 'fewer arguments'!r}, rank 0 with "
            f"{ours or 'fewer arguments'!r}: every rank needs the same command line"
        )
    w.comm.Barrier()  # rank 0 aborts the job; this rank waits for it


def _one_line(e: BaseException) -> str:
    """An exception as one line: ``error: ...`` for a user's error, else its type and message."""
    first = str(e).splitlines()[0] if str(e).strip() else ""
    if isinstance(e, UserError):
        return f"error: {first}"
    if isinstance(e, SystemExit):
        return f"exited with status {e.code}"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
