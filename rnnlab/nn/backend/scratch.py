"""Reusable big arrays for the time loop, so that a forward or backward pass does not pay
for fresh memory every call.

A recurrent layer needs several (T, N, G*H) buffers per pass (gate pre-activations, their
gradients, the states). Fresh arrays of that size come from ``mmap`` and fault in page by
page on first touch, a noticeable part of a pass. ``empty`` hands out an array from a pool instead,
and only one that nobody else refers to any more: a buffer is reused only when the pool
holds its sole reference (``sys.getrefcount``), so a buffer still kept by a layer's cache
for backward, by a caller's output or by any view of it is never handed out twice.
Of the free buffers that fit, the one used last is handed out: it is the one most likely
still in cache. (Oldest first, a layer whose training step had left two free (T, N, 4H)
buffers alternated between them in inference, each written after the other's call, and ran
slower than with no training before.)

Every array ``empty`` returns starts on a 64-byte boundary (``align``). NumPy's big arrays
start 16 bytes past a page, so every row of a (T, N, G*H) buffer did too, and each AVX-512
load and store of the step GEMMs' output and of the gate kernels touched two cache lines.
(The timings of both rules: docs/MEASUREMENTS.md, "Where the speed rules come from".)

The pool keeps at most ``runtime.settings().scratch_mib`` (default 256 MiB,
``RNNLAB_SCRATCH_MIB``); beyond that it forgets the arrays used longest ago (which stay valid for
whoever holds them). ``clear()`` empties it. The alignment is ``runtime.settings().align``.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict

import numpy as np

from rnnlab.nn import runtime

# Arrays smaller than this are not pooled (malloc serves them from its heap without page
# faults); larger ones are.
MIN_BYTES = 2**16
_pool: OrderedDict = OrderedDict()  # id(raw) -> (raw bytes, offset, shape, dtype, align), last used last
_lock = threading.Lock()
_bytes = 0
# references to a pooled buffer that nobody else holds: the pool's entry and getrefcount's
# own argument. Every array handed out is a view whose ``base`` is the raw buffer (NumPy
# collapses views of views onto the array that owns the memory), so any view a caller still
# holds, however derived, counts here.
_FREE = 2


def _aligned(shape, dtype, align):
    raw = np.empty(math.prod(shape) * dtype.itemsize + align, np.uint8)
    return raw, -raw.__array_interface__["data"][0] % align


def _view(raw, start, shape, dtype, *_):
    return np.ndarray(shape, dtype, raw, start)  # its base is raw


def aligned(shape, dtype) -> np.ndarray:
    """A fresh (never pooled) uninitialised array whose data starts on an aligned boundary
    (gemm.MKL keeps its packed weights in one)."""
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    return _view(*_aligned(shape, dtype, runtime.settings().align), shape, dtype)


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype`` whose data starts on an aligned
    boundary, reused from the pool if possible."""
    global _bytes
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    cfg = runtime.settings()
    limit, want = int(cfg.scratch_mib * 2**20), cfg.align
    if math.prod(shape) * dtype.itemsize < MIN_BYTES:  # never pooled: no need to look (5 us a call)
        return _view(*_aligned(shape, dtype, want), shape, dtype)
    with _lock:
        for key, (raw, _, s, d, align) in reversed(_pool.items()):  # last used first
            if s == shape and d == dtype and align == want:
                del raw  # drop this frame's reference
                if sys.getrefcount(_pool[key][0]) == _FREE:
                    _pool.move_to_end(key)
                    return _view(*_pool[key][:4])
        raw, start = _aligned(shape, dtype, want)
        a = _view(raw, start, shape, dtype)
        if a.nbytes < MIN_BYTES or a.nbytes > limit:  # tiny ones are cheap; huge ones not kept
            return a
        _pool[id(raw)] = (raw, start, shape, dtype, want)
        _bytes += raw.nbytes
        while _bytes > limit and _pool:
            _, (old, *_) = _pool.popitem(last=False)
            _bytes -= old.nbytes
        return a


def vector(n, dtype) -> np.ndarray:
    """A 1-D uninitialised array of ``n`` elements, a view of a pooled buffer whose size is ``n``
    rounded up (to a multiple of an eighth of the next power of two: at most 12.5% more), so
    that arrays of varying sizes (the logits of batches with varying word counts) share a few
    buffers instead of each size getting its own."""
    n = int(n)
    step = 1 << max(0, n.bit_length() - 3)
    return empty((-(-n // step) * step,), dtype)[:n]


def copy(a, dtype=None) -> np.ndarray:
    """``np.array(a, dtype, copy=True)`` into an aligned (pooled) array."""
    a = np.asarray(a)
    out = empty(a.shape, a.dtype if dtype is None else dtype)
    out[...] = a
    return out


def clear() -> None:
    """Forget every pooled array."""
    global _bytes
    with _lock:
        _pool.clear()
        _bytes = 0


def pooled_bytes() -> int:
    """Bytes the pool holds (in use or free)."""
    return _bytes
