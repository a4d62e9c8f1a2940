"""The engine's speed, behind one interface.

``recurrent.py`` is the readable time loop. Per call it asks ``select(cell, dtype)``: None
means "run the NumPy loop yourself"; otherwise it gets a backend with four methods::

    matmul(a, b, out)                                    the hoisted 2-D products (X U^T, dx, dW)
    forward(cell, XG, S, W, b_ih, b_hh, mask, keep) -> ws      the whole forward time loop
    backward(cell, dout, dS, cache, W, dXG, dHG, dh_sq) -> dS0  the whole backward time loop
    run_directions(cell, jobs, work) -> results           the directions of a layer, maybe in parallel

with the same inputs and outputs (buffers, caches) as the NumPy loop, so the layer above never
knows which one ran. Today there is one such backend, ``compiled.Compiled``: Numba loops
(``loops.py``, one per cell) calling a GEMM library from compiled code (``gemm.py``: MKL or
OpenBLAS), optionally in parallel row blocks. It runs float32 LSTM and GRU when numba and a
GEMM library load and ``runtime.settings().backend`` is not "numpy"; everything else (float64,
the Elman RNN, no numba) takes the NumPy loop. ``scratch.py`` is the buffer pool both use.
"""

from __future__ import annotations

import warnings
from importlib.util import find_spec

import numpy as np

from rnnlab.nn import runtime

_F32 = np.dtype(np.float32)
_state: dict = {}  # "compiled": the backend (or None), "libraries": {name: lib}


def library(name: str | None = None):
    """The GEMM library ``name`` ("mkl", "openblas", "onednn"), loaded once, or None where it
    does not load; without a name, the one that runs most of the products (``choice``)."""
    from rnnlab.nn.backend import gemm

    if name is None:
        chosen = choice()
        return None if chosen is None else chosen[1][_most_chosen(chosen[0])]
    libs = _state.setdefault("libraries", {})
    if name not in libs:
        lib = libs[name] = gemm.load(name)
        threads = runtime.settings().threads
        if lib is not None:
            lib.default_threads = lib.get_threads()  # what threads=None gives back
            if threads is not None:
                lib.set_threads(threads)
    return libs[name]


def _most_chosen(table):
    names = list(table.values())
    return max(set(names), key=names.count)


def choice():
    """``({shape class: library name}, {name: library})``: which GEMM library runs which products
    (tuning.py), or None when none loads. ``runtime.settings().gemm`` "auto" measures (once per
    machine, then cached); a library's name sends every product to it."""
    from rnnlab.nn.backend import tuning

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
        import numba  # noqa: F401
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
            from rnnlab.nn.backend.compiled import Compiled

            try:
                backend = Compiled(*chosen)
            except ImportError as e:  # numba installed but broken: the NumPy loop
                warnings.warn(
                    f"rnnlab: numba does not import ({e}); using the NumPy path", RuntimeWarning, stacklevel=4
                )
        _state[key] = backend
    return _state[key]


_chosen: dict = {}  # cell name -> the backend select() returns while the settings stay


def select(cell, dtype):
    """The backend that runs ``cell``'s time loop for ``dtype``, or None: the NumPy loop.
    (Decided once per cell and settings: a layer asks at every call.)"""
    if dtype != _F32:
        return None
    try:
        return _chosen[cell.name]
    except KeyError:
        pass
    fast = None if runtime.settings().backend == "numpy" else _compiled()
    if fast is not None and not fast.ready(cell.name):
        fast = None
    _chosen[cell.name] = fast
    return fast


def run_directions(cell, dtype, jobs, work):
    """Results of the direction jobs ``[(fn, *args), ...]`` of one layer; ``work``: the
    layer's multiply-adds (small passes are not worth a hand-over to another thread)."""
    fast = select(cell, dtype)
    if fast is None:
        return [fn(*args) for fn, *args in jobs]
    return fast.run_directions(cell, jobs, work)


def _apply_threads(old, new):
    """A new thread count goes to every GEMM library loaded and to NumPy's own OpenBLAS (so
    that ``runtime.override(threads=1)`` means one thread for every product); any change of the
    settings makes ``select`` decide again, and the GEMM choice is made again for the new
    thread count (it was measured at another) or library setting."""
    _chosen.clear()
    if new.threads != old.threads or new.gemm != old.gemm:
        forget_choice()
    if new.threads != old.threads:
        library("openblas")
        for lib in _state.get("libraries", {}).values():
            if lib is not None:
                lib.set_threads(lib.default_threads if new.threads is None else new.threads)


runtime.on_change(_apply_threads)


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
    ready = fast is not None and fast.ready("lstm")
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
