"""Numerically safe elementwise functions shared by every layer.

All functions accept an optional ``out=`` array so the time loops can work in
preallocated buffers. None of them overflows at +-1000 in float32 or float64.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigma(x) = 1 / (1 + exp(-x)), computed as 0.5 * tanh(x / 2) + 0.5.

    The tanh form is exact algebra, never overflows (tanh saturates at +-1) and
    costs one transcendental call, which matters inside the time loop.
    """
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Max-shifted softmax: exp(x - max) / sum(exp(x - max))."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = (x - max) - log(sum(exp(x - max)))."""
    s = x - x.max(axis=axis, keepdims=True)
    s -= np.log(np.exp(s).sum(axis=axis, keepdims=True))
    return s
