"""Losses: ``loss = f(pred, target)`` then ``dpred = f.backward()``.

MSELoss::           L = mean((y_hat - y)^2)                 dL/dy_hat = 2 (y_hat - y) / n
CrossEntropyLoss::  L = -mean_k log softmax(z_k)[y_k]       dL/dz_k = (softmax(z_k) - onehot(y_k)) / n
                    (rows whose target is ``ignore_index`` count neither in L nor in n)

The softmax is max-shifted (``z - max z``) and its log-sum taken in float64. The output layer
fused with the loss, for big vocabularies, is a speed device: ``backend/fused_loss.py``.
"""

from __future__ import annotations

import numpy as np

_REDUCTIONS = ("mean", "sum")


def softmax_cross_entropy(z, y, n) -> tuple[float, np.ndarray]:
    """``(sum_k -log softmax(z_k)[y_k], (softmax(z) - onehot(y)) / n)`` of logits ``z (M, C)``
    and targets ``y (M,)``: the loss summed over the rows (float64) and its gradient / n."""
    r = np.arange(len(y))
    z = z - z.max(axis=1, keepdims=True)  # z - max z (max shift)
    e = np.exp(z)  # exp(z - max)
    total = e.sum(axis=1)  # (M,)
    loss = float(np.sum(np.log(total.astype(np.float64)) - z[r, y].astype(np.float64)))  # -log softmax(z)_y
    dz = e * (1.0 / (n * total))[:, None]  # softmax(z) / n
    dz[r, y] -= 1.0 / n  # - onehot(y) / n
    return loss, dz


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
        self._grad = None

    def __call__(self, logits, target):
        logits = np.asarray(logits)
        target = np.asarray(target)
        if logits.shape[:-1] != target.shape:
            raise ValueError(
                f"CrossEntropyLoss: logits {logits.shape} need targets of shape "
                f"{logits.shape[:-1]}, got {target.shape}"
            )
        C = logits.shape[-1]
        z, y = logits.reshape(-1, C), target.reshape(-1)
        keep = y != self.ignore_index
        if np.any((y[keep] < 0) | (y[keep] >= C)):
            raise ValueError(f"CrossEntropyLoss: targets must lie in [0, {C}) or be ignore_index")
        n = int(keep.sum())
        rows = z[keep].astype(np.result_type(z.dtype, np.float32))
        total, dz = softmax_cross_entropy(rows, y[keep], max(n, 1) if self.reduction == "mean" else 1)
        grad = np.zeros(z.shape, rows.dtype)
        grad[keep] = dz  # ignored rows: no gradient
        self._grad = grad.reshape(logits.shape)
        if self.reduction == "sum":
            return total
        return total / n if n else float("nan")

    def backward(self):
        if self._grad is None:
            raise RuntimeError("CrossEntropyLoss.backward called before the loss")
        return self._grad
