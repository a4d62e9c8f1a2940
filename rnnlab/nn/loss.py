"""Losses: ``loss = f(pred, target)`` then ``dpred = f.backward()``.

MSELoss::           L = mean((y_hat - y)^2)                 dL/dy_hat = 2 (y_hat - y) / n
CrossEntropyLoss::  L = -mean_k log softmax(z_k)[y_k]       dL/dz_k = (softmax(z_k) - onehot(y_k)) / n
                    (rows whose target is ``ignore_index`` count neither in L nor in n)
"""
from __future__ import annotations

import numpy as np

from rnnlab.nn.functional import log_softmax

_REDUCTIONS = ("mean", "sum")


class MSELoss:
    def __init__(self, reduction="mean"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self._diff = None

    def __call__(self, pred, target):
        pred = np.asarray(pred)
        target = np.asarray(target, pred.dtype)
        if pred.shape != target.shape:
            raise ValueError(f"MSELoss: pred {pred.shape} and target {target.shape} must have the same shape")
        self._diff = pred - target
        sq = float(np.sum(self._diff.astype(np.float64) ** 2))
        return sq / pred.size if self.reduction == "mean" else sq

    def backward(self):
        if self._diff is None:
            raise RuntimeError("MSELoss.backward called before the loss")
        scale = 2.0 / self._diff.size if self.reduction == "mean" else 2.0
        return self._diff * scale


class CrossEntropyLoss:
    """Cross-entropy from logits ``(M, C)`` or ``(..., C)`` and integer targets ``(M,)`` / ``(...)``."""

    def __init__(self, ignore_index=-100, reduction="mean"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.ignore_index, self.reduction = ignore_index, reduction
        self._cache = None

    def __call__(self, logits, target):
        logits = np.asarray(logits)
        target = np.asarray(target)
        if logits.shape[:-1] != target.shape:
            raise ValueError(f"CrossEntropyLoss: logits {logits.shape} need targets of shape "
                             f"{logits.shape[:-1]}, got {target.shape}")
        C = logits.shape[-1]
        z = logits.reshape(-1, C)
        y = target.reshape(-1)
        keep = y != self.ignore_index
        if np.any((y[keep] < 0) | (y[keep] >= C)):
            raise ValueError(f"CrossEntropyLoss: targets must lie in [0, {C}) or be ignore_index")
        logp = log_softmax(z)                                   # (M, C) max-shifted
        y_safe = np.where(keep, y, 0)
        nll = -logp[np.arange(len(y)), y_safe] * keep           # (M,)
        n = int(keep.sum())
        total = float(nll.sum(dtype=np.float64))
        self._cache = (logp, y_safe, keep, n, logits.shape)
        if self.reduction == "sum":
            return total
        return total / n if n else float("nan")

    def backward(self):
        if self._cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before the loss")
        logp, y, keep, n, shape = self._cache
        d = np.exp(logp)                                        # softmax(z)
        d[np.arange(len(y)), y] -= 1.0                          # - onehot(y)
        d *= keep[:, None]
        if self.reduction == "mean":
            d /= max(n, 1)
        return d.reshape(shape)
