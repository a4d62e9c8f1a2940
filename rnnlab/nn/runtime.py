"""The one runtime configuration of the engine: backend, GEMM library, threads, limits.

Everything the engine does for speed is governed from here, and only from here::

    from rnnlab.nn import runtime
    runtime.settings()                      # the current Settings (read-only)
    runtime.set(threads=1)                  # change for the rest of the process
    with runtime.override(backend="numpy"): # change inside a block (tests, benchmarks)
        ...
    runtime.describe()                      # what actually runs: backend, GEMM library, threads

Settings (their environment variables are read ONCE, when this module is imported; a value that
is none of a variable's own is a one-line ``UserError`` when the settings are first asked for):

    backend     "auto"     the compiled loops for float32 when numba and a GEMM library load,
                           else the NumPy reference loop          RNNLAB_BACKEND=auto|numpy|compiled
                "numpy"    always the NumPy reference loop (what every test compares with)
                           (RNNLAB_NO_FUSED=1, the old switch, means "numpy")
                "compiled" the compiled loops wherever they exist (float32 LSTM and GRU)
    gemm        "auto"     the GEMM library the compiled loops call, per class of product
                           shape: the fastest of those that load, timed once per CPU model,
                           thread count and library versions, then cached (backend/tuning.py;
                           ``rnnlab bench --tune`` times again; RNNLAB_TUNE=0: no timing, the
                           first of oneDNN, MKL, OpenBLAS)  RNNLAB_GEMM=auto|onednn|mkl|openblas
                "onednn"   one library for every product (the same for "mkl", "openblas";
                           RNNLAB_NO_MKL=1, the old switch, means "openblas")
    threads     None       threads of the GEMM libraries (the compiled loops' and NumPy's own
                           OpenBLAS) and of the row blocks; None leaves the libraries' defaults
                                  RNNLAB_NUM_THREADS, else the first of MKL_NUM_THREADS,
                                  OMP_NUM_THREADS, OPENBLAS_NUM_THREADS (one count for all)
    scratch_mib 256        the most memory the buffer pool keeps (backend/scratch.py)
                                                                  RNNLAB_SCRATCH_MIB
    min_rows    16         row blocks of a batch run in parallel only with at least this many
                           rows each (backend/compiled.py)
    min_work    4e6        directions of a bidirectional layer run in parallel only above this
                           many multiply-adds (a job costs tens of us to hand over)
    min_thread_work None   the compiled loops' GEMMs, row blocks and parallel directions use
                           more than one thread only for time steps of at least this many
                           multiply-adds (one step of one direction, N G H (I + H)); smaller
                           ones run on the calling thread alone: no pool woken, none waiting
                           for a core others hold (backend/compiled.py; 0: always all threads).
                           None: by how OpenMP's workers wait and the load (``min_thread_work()``):
                           4e6 where they sleep; while they spin, 1e5, or 1e8 while other
                           processes use the cores our threads need (the load check below)
                                                                  RNNLAB_MIN_THREAD_WORK
    align       64         byte alignment of every pooled buffer (a cache line, an AVX-512 vector)

The load check: a process that started on an idle machine has spinning OpenMP workers (the
policy is read once, when the libraries load); when other processes load the machine later, a
spinning partner waits for a core others hold and steps of 1e5-1e8 multiply-adds lost up to 300x
(docs/MEASUREMENTS.md, "Threads under a changing load"). So while the workers spin and
``min_thread_work`` is not set, the machine is looked at again at most every 5 s: the CPU time
our CPUs spent since the last look less this process's own (Linux's /proc/stat; elsewhere the
1-minute load average less our own CPU use averaged the same way) is what other processes use.
Above the cores our threads leave free + 0.5, ``min_thread_work`` is 1e8 (one thread for
nearly every step) until it falls below + 0.25 (``describe()["load_check"]`` says what it saw).
A pass's thread count changes float32 rounding only (within 1e-5), but two runs agree bit for
bit only where they took the same counts: set ``RNNLAB_MIN_THREAD_WORK`` (any explicit value
turns the check off) for runs that must agree bitwise whatever the load; the test suite pins
it (tests/conftest.py).

``pool()`` is the engine's one thread pool, shared by the parallel directions, the translator's
output layer and the optimisers' threaded updates.

This module is a leaf: it imports nothing of the engine. The backend (``backend/``), which
imports it, ``attach``-es what it contributes: a listener for every change (a new thread count
for the GEMM libraries) and what ``describe()`` reports of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from rnnlab.errors import UserError

R = TypeVar("R")

BACKENDS = ("auto", "numpy", "compiled")
GEMMS = ("auto", "onednn", "mkl", "openblas")


@dataclasses.dataclass(frozen=True)
class Settings:
    backend: str = "auto"
    gemm: str = "auto"
    threads: int | None = None
    scratch_mib: float = 256.0
    min_rows: int = 16
    min_work: float = 4e6
    min_thread_work: float | None = None
    align: int = 64

    def check(self) -> Settings:
        if self.backend not in BACKENDS:
            raise ValueError(f"runtime backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.gemm not in GEMMS:
            raise ValueError(f"runtime gemm must be one of {GEMMS}, got {self.gemm!r}")
        if self.threads is not None and (int(self.threads) != self.threads or self.threads < 1):
            raise ValueError(f"runtime threads must be a positive integer or None, got {self.threads!r}")
        if not self.scratch_mib >= 0:
            raise ValueError(f"runtime scratch_mib must be >= 0, got {self.scratch_mib!r}")
        if self.min_rows < 1 or self.align < 1 or self.align & (self.align - 1):
            raise ValueError("runtime min_rows must be >= 1 and align a power of two")
        if not (self.min_work >= 0 and (self.min_thread_work is None or self.min_thread_work >= 0)):
            raise ValueError("runtime min_work and min_thread_work must be >= 0")
        return self


def _from_environment(env=os.environ) -> Settings:
    """The settings the environment asks for (the old RNNLAB_NO_* switches included);
    ``ValueError`` naming the first ``RNNLAB_*`` variable whose value is none of its own."""
    backend = env.get("RNNLAB_BACKEND", "auto").strip().lower() or "auto"
    if env.get("RNNLAB_NO_FUSED"):
        backend = "numpy"
    gemm = env.get("RNNLAB_GEMM", "auto").strip().lower() or "auto"
    if env.get("RNNLAB_NO_MKL"):
        gemm = "openblas"
    for name, value, valid in (("RNNLAB_BACKEND", backend, BACKENDS), ("RNNLAB_GEMM", gemm, GEMMS)):
        if value not in valid:
            raise ValueError(f"{name}={env[name]!r} must be one of {', '.join(valid)}")
    mine = env.get("RNNLAB_NUM_THREADS", "").strip()
    if mine and not (mine.isdigit() and 0 < int(mine) <= 4096):
        raise ValueError(f"RNNLAB_NUM_THREADS={mine!r} must be a positive integer")
    threads = None
    for name in ("RNNLAB_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            threads = int(value)
            break
    scratch_mib = _number(env, "RNNLAB_SCRATCH_MIB", Settings.scratch_mib, "a number of MiB >= 0")
    work = _number(env, "RNNLAB_MIN_THREAD_WORK", None, "a number of multiply-adds >= 0")
    return Settings(
        backend=backend, gemm=gemm, threads=threads, scratch_mib=scratch_mib, min_thread_work=work
    ).check()


def _number(env, name: str, default: Any, what: str) -> Any:
    """The finite number >= 0 in ``env[name]`` (``default`` when unset or blank)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
        if not 0 <= value < float("inf"):
            raise ValueError
    except ValueError:
        raise ValueError(f"{name}={text!r} must be {what}") from None
    return value


def min_thread_work() -> float:
    """The step size (multiply-adds) from which a pass uses all GEMM threads: the setting, or
    by how OpenMP's workers wait and, while they spin, by the load. Spinning workers take a
    step's hand-over in microseconds, and two threads were never slower on an idle machine;
    below 1e5 the second gained at most 0.03 ms a training step there. Once other processes
    hold the cores a spinning partner waits for its core a scheduler slice at a time: two
    threads then lost in 31 of 36 shapes of 1e5-1e8 (median 2.5x, up to 300x; 2 cores, 1-4
    CPU-bound processes beside them), and above 1e8 at most 1.2x (``_machine_busy``). A sleeping
    worker is woken by the kernel at every parallel region: two threads then lost, idle or
    loaded, up to ~4e6 (LSTM; the GRU's two regions a step, up to ~1e7).
    benchmarks/threads_by_size.py, benchmarks/threads_under_load.py."""
    work = settings().min_thread_work
    if work is not None:
        return work
    if _waits_passively:
        return PASSIVE_MIN_THREAD_WORK
    return BUSY_MIN_THREAD_WORK if _machine_busy() else SPIN_MIN_THREAD_WORK


SPIN_MIN_THREAD_WORK, PASSIVE_MIN_THREAD_WORK, BUSY_MIN_THREAD_WORK = 1e5, 4e6, 1e8
LOAD_CHECK_S = 5.0  # the machine is looked at again at most this often
BUSY_ON, BUSY_OFF = 0.5, 0.25  # cores others use beyond those our threads leave: busy above ON
# until it falls below OFF (apart, so that a use near one margin does not switch every check)


@dataclasses.dataclass
class _LoadCheck:
    """What the last load check saw (``describe()["load_check"]``)."""

    checked: float  # time.monotonic() of the last check
    cpu: float  # time.process_time() then
    cpus: float | None  # seconds our CPUs had been busy then, all processes (None: no /proc/stat)
    own: float = 0.0  # this process's CPU use in cores since the check before
    own_avg: float = 0.0  # the same averaged over a minute, as the kernel averages the load
    others: float | None = None  # the cores other processes used (None: nothing to tell it by)
    source: str = ""  # what told it: "cpu time" (/proc/stat) or "load average"
    busy: bool = False


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity; else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpus_busy() -> float | None:
    """Seconds the CPUs this process may run on have been busy since boot, by every process
    (a hypervisor's other guests' steal time included): Linux's /proc/stat; None without it."""
    try:
        with open("/proc/stat", "rb") as f:
            lines = f.read().splitlines()
        mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        ticks = 0
        for line in lines:
            if line.startswith(b"cpu") and line[3:4].isdigit():
                name, *fields = line.split()
                if mine is None or int(name[3:]) in mine:  # user nice system idle iowait irq softirq steal
                    ticks += sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7) if i < len(fields))
        return ticks / os.sysconf("SC_CLK_TCK") if ticks else None
    except (OSError, ValueError, AttributeError):
        return None


def _machine_busy() -> bool:
    """Whether other processes hold the cores our GEMM threads need, looked at again at most
    every ``LOAD_CHECK_S``: the CPU time our CPUs spent since the last look less this
    process's own (/proc/stat; a switch within one look), else the 1-minute load average less
    this process's CPU use averaged the same way (our own spinning threads count in both; a
    switch within a minute or two), against the cores our threads leave free."""
    state = _load_check
    now = _clock()
    if now - state.checked < LOAD_CHECK_S or not _load_lock.acquire(blocking=False):
        return state.busy
    try:
        cpu, cpus, dt = _cpu_clock(), _cpus_busy(), now - state.checked
        own, decay = (cpu - state.cpu) / dt, math.exp(-dt / 60.0)  # the kernel's 1-minute average
        state.own, state.own_avg = own, state.own_avg * decay + own * (1.0 - decay)
        if cpus is not None and state.cpus is not None:
            state.others, state.source = (cpus - state.cpus) / dt - own, "cpu time"
        else:
            try:
                state.others, state.source = os.getloadavg()[0] - state.own_avg, "load average"
            except (AttributeError, OSError):  # neither: as if idle
                state.others, state.source = None, ""
        state.checked, state.cpu, state.cpus = now, cpu, cpus
        cores = usable_cores()
        spare = cores - (settings().threads or cores)
        margin = BUSY_OFF if state.busy else BUSY_ON
        state.busy = state.others is not None and state.others > spare + margin
    finally:
        _load_lock.release()
    return state.busy


def gemm_threads(step_work: float, threads: int) -> int:
    """The GEMM threads for a pass whose time steps cost ``step_work`` multiply-adds each (one
    step of one direction, ``direction.step_work``) when the libraries are set to ``threads``:
    all of them from ``min_thread_work()`` up, else one."""
    return threads if step_work >= min_thread_work() else 1


BUSY_LOAD = 0.5  # a 1-minute load average above this: other processes hold cores


def wait_policy(env=os.environ, load=None) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``env`` when the machine is busy (the 1-minute load
    average ``load``, read when None, above ``BUSY_LOAD``) and the user set neither it nor
    ``GOMP_SPINCOUNT``; returns the policy set (None: left to the libraries).

    OpenMP's workers (oneDNN's, numba's) spin after each parallel region. On an idle machine
    that is what keeps small steps fast (a sleeping worker takes a futex wake-up per region);
    on a machine whose cores other processes hold, a spinning worker takes the core its
    partner needs and every step waits for it. Neither policy is right for both, so the load
    chooses, once, before those libraries load and read it (docs/MEASUREMENTS.md, "On a busy
    machine")."""
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return None
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this system: the libraries decide
            return None
    if load <= BUSY_LOAD:
        return None
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"


wait_policy()
# what OpenMP reads when its libraries load (after this import): whether their workers sleep
_waits_passively = os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
_clock, _cpu_clock = time.monotonic, time.process_time  # the load check's clocks (tests replace them)
_load_check = _LoadCheck(_clock(), _cpu_clock(), _cpus_busy())  # the first check: LOAD_CHECK_S in
_load_lock = threading.Lock()

# A bad RNNLAB_* value is reported when the engine is used (``settings()``), not at import: an
# import-time ValueError was a traceback for every command, `--help` included (issue 34).
try:
    _settings, _environment_problem = _from_environment(), None
except ValueError as e:
    _settings, _environment_problem = Settings(), str(e)
_lock = threading.Lock()
_listeners: list = []  # called with (old, new) after every change (backend/)
_describers: list = []  # each returns a dict for describe() (backend/)


def settings() -> Settings:
    """The current settings; ``UserError`` (one line) while an ``RNNLAB_*`` variable has a value
    the engine cannot use and no ``set`` has taken over."""
    if _environment_problem is not None:
        raise UserError(f"{_environment_problem} (fix or unset it)")
    return _settings


def set(**changes: Any) -> Settings:  # noqa: A001  (the scikit-learn set_config idiom)
    """Change settings for the rest of the process; returns the previous ones."""
    global _settings, _environment_problem
    with _lock:
        old = _settings
        new = dataclasses.replace(old, **changes).check()
        _settings, _environment_problem = new, None  # the code's choice, not the environment's
    for listener in _listeners:
        listener(old, new)
    return old


@contextlib.contextmanager
def override(**changes: Any) -> Iterator[Settings]:
    """``with override(backend="numpy"): ...``: the settings changed inside the block only."""
    old = set(**changes)
    try:
        yield _settings
    finally:
        set(**dataclasses.asdict(old))


def attach(on_change: Callable[[Settings, Settings], None], describe: Callable[[], dict]) -> None:
    """What a backend adds to the runtime: ``on_change(old, new)``, called after every change
    (how it applies a new thread count to its GEMM libraries), and ``describe()``, merged into
    this module's ``describe``."""
    _listeners.append(on_change)
    _describers.append(describe)


def describe() -> dict:
    """What runs now: the settings and what they resolved to (backend, GEMM library, threads)."""
    out: dict = {"settings": dataclasses.asdict(_settings), "min_thread_work": min_thread_work()}
    out["load_check"] = _describe_load_check()
    for describer in _describers:
        out.update(describer())
    return out


def _describe_load_check() -> dict:
    """Whether the load chooses ``min_thread_work`` now, and what it last saw."""
    if _settings.min_thread_work is not None:
        return {"on": False, "why": "min_thread_work is set"}
    if _waits_passively:
        return {"on": False, "why": "OpenMP's workers wait passively"}
    state, r = _load_check, lambda x: None if x is None else round(x, 2)
    return {
        "on": True,
        "busy": state.busy,
        "others": r(state.others),
        "own": r(state.own),
        "source": state.source,
    }


_pool: list = []


def pool() -> ThreadPoolExecutor:
    """The engine's one thread pool (created on first use; as many workers as CPUs, at least 4).
    Callers submit as many jobs as the parallelism they want."""
    if not _pool:
        with _lock:
            if not _pool:
                _pool.append(ThreadPoolExecutor(max(4, os.cpu_count() or 1), "rnnlab"))
    return _pool[0]


def run(calls: Sequence[Callable[[], R]], parallel: bool = True) -> list[R]:
    """Results of the calls (each takes no argument: ``functools.partial(fn, ...)``), in order:
    on the pool when ``parallel`` and there are more than one, else here."""
    if not parallel or len(calls) < 2:
        return [call() for call in calls]
    futures = [pool().submit(call) for call in calls]
    return [f.result() for f in futures]
