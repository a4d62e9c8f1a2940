"""Numerically safe elementwise functions shared by every layer.

None of them overflows at +-1000 in float32 or float64.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """sigma(x) = 1 / (1 + exp(-x)), computed as 0.5 * tanh(x / 2) + 0.5.

    The tanh form is exact algebra and never overflows (tanh saturates at +-1); the compiled
    kernels (``backend/kernels.py``) compute it the same way.
    """
    return 0.5 * np.tanh(0.5 * x) + 0.5


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
