"""Reusable big arrays for the time loop, so that a forward or backward pass does not pay
for fresh memory every call.

A recurrent layer needs several (T, N, G*H) buffers per pass (gate pre-activations, their
gradients, the states). Fresh arrays of that size come from ``mmap`` and fault in page by
page on first touch: at (T, N, I, H) = (50, 64, 128, 256) that was ~700 page faults and
~4 ms of a 27 ms LSTM inference pass. ``empty`` hands out an array from a pool instead,
and only one that nobody else refers to any more: an array is reused only when the pool
holds its sole reference (``sys.getrefcount``), so a buffer still kept by a layer's cache
for backward, by a caller's output or by any view of it is never handed out twice.

The pool keeps at most ``LIMIT_BYTES`` (default 256 MiB, ``RNNLAB_SCRATCH_MIB``); beyond
that it forgets its oldest arrays (which stay valid for whoever holds them). ``clear()``
empties it.
"""
from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict

import numpy as np

LIMIT_BYTES = int(float(os.environ.get("RNNLAB_SCRATCH_MIB", 256)) * 2**20)
_pool: OrderedDict = OrderedDict()   # id -> array, oldest first
_lock = threading.Lock()
_bytes = 0
# references to a pooled array that nobody else holds: the pool's dict entry and
# getrefcount's own argument
_FREE = 2


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype``, reused from the pool if possible."""
    global _bytes
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    with _lock:
        for key in _pool:
            a = _pool[key]
            if a.shape == shape and a.dtype == dtype:
                del a                                  # drop this frame's reference
                if sys.getrefcount(_pool[key]) == _FREE:
                    _pool.move_to_end(key)
                    return _pool[key]
        a = np.empty(shape, dtype)
        if a.nbytes < 2**16 or a.nbytes > LIMIT_BYTES:  # small ones are cheap; huge ones not kept
            return a
        _pool[id(a)] = a
        _bytes += a.nbytes
        while _bytes > LIMIT_BYTES and _pool:
            _, old = _pool.popitem(last=False)
            _bytes -= old.nbytes
        return a


def clear() -> None:
    """Forget every pooled array."""
    global _bytes
    with _lock:
        _pool.clear()
        _bytes = 0


def pooled_bytes() -> int:
    """Bytes the pool holds (in use or free)."""
    return _bytes
