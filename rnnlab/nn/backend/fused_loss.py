"""The output layer and the cross-entropy in one go, for big vocabularies (the translator's
``softmax(V h)``; the plain pair is ``rnnlab.nn.Linear`` + ``rnnlab.nn.CrossEntropyLoss``)::

    z = h V^T + b,   L = CrossEntropy(z, y),   dh = dz V,   dV = dz^T h,   db = sum dz

Its speed devices: the (M, C) logits live in a pooled buffer (``scratch``) and become dL/dz in
place (``softmax_cross_entropy_``: max-shifted, the log of the row sums in float64), the rows
are cut into blocks on the runtime's pool, and ``dV`` may finish in the background.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from rnnlab.nn import runtime
from rnnlab.nn.backend import scratch


def softmax_cross_entropy_(z, y, n, colsum=None) -> float:
    """In place on logits ``z (M, C)`` with targets ``y (M,)``: z -> (softmax(z) - onehot(y)) / n
    (the gradient of the loss summed over the rows, divided by n). Returns
    sum_k -log softmax(z_k)[y_k] (float64); ``colsum`` (C,) gets the sum of the gradient rows
    (a bias gradient)."""
    r = np.arange(len(y))
    z -= z.max(axis=1, keepdims=True)  # z - max z (max shift)
    z_y = z[r, y].astype(np.float64)  # the target's shifted logit
    np.exp(z, out=z)  # exp(z - max)
    total = z.sum(axis=1)  # (M,)
    loss = float(np.sum(np.log(total.astype(np.float64)) - z_y))  # -log softmax(z)_y
    z *= (1.0 / (n * total))[:, None]  # softmax(z) / n
    z[r, y] -= 1.0 / n  # - onehot(y) / n
    if colsum is not None:
        z.sum(axis=0, out=colsum)
    return loss


def _blocks(n, parts):
    cuts = np.linspace(0, n, parts + 1).astype(int)
    return list(zip(cuts[:-1], cuts[1:]))


class LinearCrossEntropy:
    """``loss = f(h, y)`` for rows ``h (M, H)`` of a ``Linear`` ``V (C, H)`` and targets
    ``y (M,)``: the mean cross-entropy of ``z = h V^T + b``; then ``dh = f.backward()``.

    Made for big vocabularies: the (M, C) logits are written into a buffer kept between calls
    and turned into dL/dz in place (no second (M, C) array), and with ``parts`` > 1 the rows
    are cut into blocks, each its GEMM + softmax on a thread of ``runtime.pool()`` (NumPy frees
    the GIL). ``backward(wait=False)`` returns dh at once and leaves ``dV += dz^T h`` running
    in the background (nothing upstream needs it) until ``wait()``."""

    def __init__(self, linear, parts=1):
        self.linear, self.parts = linear, max(1, int(parts))
        self._cache = None
        self._pending: list = []

    def __call__(self, h, y):
        W, b = self.linear.params["weight"], self.linear.params["bias"]
        M, C = len(h), W.shape[0]
        z = scratch.vector(M * C, W.dtype).reshape(M, C)  # (M, C) V h + b, one GEMM

        def block(a, c, colsum):
            np.matmul(h[a:c], W.T, out=z[a:c])  # V h for this block of rows
            z[a:c] += b
            return softmax_cross_entropy_(z[a:c], y[a:c], M, colsum)

        parts = self.parts if M >= 2 * self.parts else 1
        colsums = np.empty((parts, C), z.dtype)
        losses = runtime.run([partial(block, a, c, colsums[k]) for k, (a, c) in enumerate(_blocks(M, parts))])
        self._cache = (h, z, colsums.sum(axis=0))  # z now holds dz
        return sum(losses) / M

    def backward(self, wait=True):
        if self._cache is None:
            raise RuntimeError("LinearCrossEntropy.backward called before the loss")
        h, dz, db = self._cache
        self._cache = None
        W, g = self.linear.params["weight"], self.linear.grads
        M, parts = len(h), self.parts if len(h) >= 2 * self.parts else 1
        dh = np.empty((M, W.shape[1]), W.dtype)

        def input_grad(a, c):
            np.matmul(dz[a:c], W, out=dh[a:c])  # dh = dz V

        runtime.run([partial(input_grad, a, c) for a, c in _blocks(M, parts)])
        tmp = scratch.empty(W.shape, W.dtype)

        def weight_grad(a, c):
            np.matmul(dz[:, a:c].T, h, out=tmp[a:c])  # dV = dz^T h
            g["weight"][a:c] += tmp[a:c]

        jobs = [partial(weight_grad, a, c) for a, c in _blocks(W.shape[0], max(1, self.parts - 1))]
        if self.parts > 1:
            self._pending = [runtime.pool().submit(job) for job in jobs]
        else:
            runtime.run(jobs)
        if "bias" in g:
            g["bias"] += db  # db = sum dz
        if wait:
            self.wait()
        return dh

    def wait(self):
        """Block until the background weight-gradient jobs of the last ``backward`` are done."""
        for f in self._pending:
            f.result()
        self._pending = []
