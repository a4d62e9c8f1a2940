"""The engine's speed, behind one interface.

``recurrent.py`` is the readable time loop. For the directions of a layer it asks
``select(spec, dtype)``: None means "run the NumPy loop yourself"; otherwise it gets a
``Backend``, which takes the same typed jobs (``direction.py``) and gives the same caches and
gradients as the NumPy loop, so the layer above never knows which one ran::

    forward(jobs: [ForwardJob])   -> [(out, DirectionCache)]   the whole forward time loop
    backward(jobs: [BackwardJob]) -> [DirectionGrads]          the whole backward time loop

A cell reaches the backend only as its ``direction.CellSpec`` (plain data); nothing here imports
the math. Today there is one such backend, ``compiled.Compiled``: Numba loops (``loops.py``,
one per cell, around them ``cell_loops.py``) calling a GEMM library from compiled code
(``gemm.py``, ``onednn.py``: oneDNN, MKL or OpenBLAS, chosen per product shape by
``tuning.py``), optionally in parallel row blocks. It runs float32 LSTM and GRU when numba and a
GEMM library load and ``runtime.settings().backend`` is not "numpy"; everything else (float64,
the Elman RNN, no numba) takes the NumPy loop. ``scratch.py`` is its buffer pool.

The modules that import numba (``compiled``, ``cell_loops``, ``loops``, ``kernels``) are loaded
by name on first use (``importlib``), so that ``import rnnlab`` stays light without them;
``tests/test_import_graph.py`` follows those names like any import.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from importlib.util import find_spec
from typing import Any, Protocol

import numpy as np

from rnnlab.nn import runtime
from rnnlab.nn.backend import libraries, tuning
from rnnlab.nn.direction import BackwardJob, CellSpec, DirectionCache, DirectionGrads, ForwardJob, LSTMSpec

_F32 = np.dtype(np.float32)
_state: dict = {}  # "compiled": the backend (or None), "libraries": {name: lib}


class Backend(Protocol):
    def forward(self, jobs: list[ForwardJob]) -> list[tuple[np.ndarray, DirectionCache]]: ...

    def backward(self, jobs: list[BackwardJob]) -> list[DirectionGrads]: ...


def library(name: str | None = None) -> Any:
    """The GEMM library ``name`` ("mkl", "openblas", "onednn"), loaded once, or None where it
    does not load; without a name, the one that runs most of the products (``choice``)."""
    if name is None:
        chosen = choice()
        return None if chosen is None else chosen[1][_most_chosen(chosen[0])]
    libs = _state.setdefault("libraries", {})
    if name not in libs:
        lib = libs[name] = libraries.load(name)
        threads = runtime.settings().threads
        if lib is not None:
            lib.default_threads = lib.get_threads()  # what threads=None gives back
            if threads is not None:
                lib.set_threads(threads)
    return libs[name]


def onednn_threads_by_size(step_work: float):
    """Inside: oneDNN's products on this thread use as many threads as a time step of
    ``step_work`` multiply-adds is worth (``runtime.gemm_threads``, as the float loops'
    ``threads_by_size``): one below ``runtime.min_thread_work()``. For the int8 and bf16 loops
    (``int8_loops.py``, ``bf16_loops.py``), which call oneDNN from compiled code. Woken for
    every small step, sleeping OpenMP workers made the (50,32,32,128) GRU 3.8x slower than
    float32. ``with ... as n``: the count inside."""
    lib = library("onednn")
    if lib is None:
        return contextlib.nullcontext(1)
    threads = lib.get_threads()
    wanted = runtime.gemm_threads(step_work, threads)
    return contextlib.nullcontext(threads) if wanted == threads else _LocalThreads(lib, wanted, threads)


class _LocalThreads:
    """``lib.on_this_thread(n)`` for oneDNN (an OpenMP count per calling thread) without a
    generator: a stepping cell enters it at every step, where the generator's cost showed."""

    __slots__ = ("lib", "n", "before")

    def __init__(self, lib: Any, n: int, before: int):
        self.lib, self.n, self.before = lib, n, before

    def __enter__(self) -> int:
        self.lib.set_local(self.n)
        return self.n

    def __exit__(self, *exc: Any) -> None:
        self.lib.set_local(self.before)


def _most_chosen(table):
    names = list(table.values())
    return max(set(names), key=names.count)


def choice():
    """``({shape class: library name}, {name: library})``: which GEMM library runs which products
    (tuning.py), or None when none loads. ``runtime.settings().gemm`` "auto" measures (once per
    machine, then cached); a library's name sends every product to it."""
    setting = runtime.settings().gemm
    key = ("choice", setting)
    if key not in _state:
        names = tuning.ORDER if setting == "auto" else (setting,)
        libs = {n: lib for n in names if (lib := library(n)) is not None}
        if not libs:
            _state[key] = None
        elif len(libs) == 1 or not tuning.enabled() or not _numba_imports():
            first = next(n for n in tuning.ORDER + (setting,) if n in libs)
            _state[key] = ({c: first for c in tuning.classes()}, libs)
        else:
            threads = next(iter(libs.values())).get_threads()
            entry = tuning.load_choice(libs, threads) or tuning.tune(libs, threads)
            _state[key] = (entry["choice"], libs)
    return _state[key]


def _numba_imports() -> bool:
    """The timing runs the products through the compiled loops: without numba there is
    nothing to time (and nothing compiled that a choice would serve)."""
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def forget_choice() -> None:
    """Make the GEMM choice (and the compiled backend on it) again at the next use: after a
    new measurement (``rnnlab bench --tune``) or a change of threads or library."""
    _chosen.clear()
    for k in [k for k in _state if k[0] in ("choice", "compiled")]:
        del _state[k]


def _compiled():
    """The compiled backend for the chosen GEMM libraries (made once per choice), or None."""
    chosen = choice()
    key = ("compiled", runtime.settings().gemm)
    if key not in _state:
        backend = None
        if chosen is not None and find_spec("numba") is not None:
            try:  # numba (optional, ~0.5 s to import) loads with the compiled backend, on first use
                backend = importlib.import_module("rnnlab.nn.backend.compiled").Compiled(*chosen)
            except ImportError as e:  # numba installed but broken: the NumPy loop
                warnings.warn(
                    f"rnnlab: numba does not import ({e}); using the NumPy path", RuntimeWarning, stacklevel=4
                )
        _state[key] = backend
    return _state[key]


_chosen: dict = {}  # cell spec -> the backend select() returns while the settings stay


def select(spec: CellSpec, dtype) -> Backend | None:
    """The backend that runs the time loop of the cell ``spec`` for ``dtype``, or None: the
    NumPy loop. (Decided once per cell and settings: a layer asks at every call.)"""
    if dtype != _F32:
        return None
    try:
        return _chosen[spec]
    except KeyError:
        pass
    fast = None if runtime.settings().backend == "numpy" else _compiled()
    if fast is not None and not fast.ready(spec):
        fast = None
    _chosen[spec] = fast
    return fast


def _apply_threads(old, new):
    """A new thread count goes to every GEMM library loaded and to NumPy's own OpenBLAS (so
    that ``runtime.override(threads=1)`` means one thread for every product); any change of the
    settings makes ``select`` decide again, and the GEMM choice is made again for the new
    thread count (it was timed at another) or library setting."""
    _chosen.clear()
    if new.threads != old.threads or new.gemm != old.gemm:
        forget_choice()
    if new.threads != old.threads:
        library("openblas")
        for lib in _state.get("libraries", {}).values():
            if lib is not None:
                lib.set_threads(lib.default_threads if new.threads is None else new.threads)


def row_block_threads() -> tuple[int, Any]:
    """``(threads, local_threads)`` for loops run in parallel row blocks (the int8 and bf16
    loops): numba's parallel threads (1 without its OpenMP layer) and the compiled setter of a
    pool thread's oneDNN count (``compiled.Compiled.local_threads``), or ``(1, None)``."""
    fast = _compiled() if runtime.settings().backend != "numpy" else None
    lib = library("onednn")
    if fast is None or lib is None or fast.parallel_threads() < 2:
        return 1, None
    return fast.parallel_threads(), fast.local_threads(lib)


def threads() -> int:
    """Threads of the selected GEMM library (1 without one)."""
    lib = library()
    return lib.get_threads() if lib is not None else 1


def describe() -> dict:
    """What runs: ``{"backend", "gemm", "gemm_version", "gemm_choice", "threads",
    "row_block_threads"}``; ``gemm`` is the library that runs most products, ``gemm_choice``
    which one runs each class of products (``tuning.shape_class``)."""
    lib = library()
    chosen = choice()
    fast = _compiled() if runtime.settings().backend != "numpy" else None
    ready = fast is not None and fast.ready(LSTMSpec())
    return {
        "backend": "compiled" if ready else "numpy",
        "gemm": None if lib is None else lib.name,
        "gemm_version": None if lib is None else lib.version(),
        "gemm_choice": None if chosen is None else dict(chosen[0]),
        "gemm_versions": None if chosen is None else {n: v.version() for n, v in chosen[1].items()},
        "threads": threads(),
        "row_block_threads": fast.parallel_threads() if fast is not None and ready else 1,
    }


def reset() -> None:
    """Forget the loaded libraries and backends (tests; a new choice after ``bench --tune``)."""
    _state.clear()
    _chosen.clear()


runtime.attach(on_change=_apply_threads, describe=describe)
