"""A public finite-difference gradient checker for learners.

``gradcheck(module, loss_fn, inputs)`` compares the hand-derived gradients of a module with
float64 central differences ``(L(p + eps) - L(p - eps)) / (2 eps)`` and reports, for every
parameter and every input, the max relative error ``|a - n| / max(|a|, |n|, tiny)`` taken
over the entries, scaled by the tensor's largest gradient so tiny entries do not dominate.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _rel_err(analytic, numeric):
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-12)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


def gradcheck(forward: Callable, backward: Callable, params: dict, inputs: dict,
              grads: dict | None = None, eps: float = 1e-6, zero_grad: Callable | None = None):
    """Check analytic gradients against central differences, all in float64.

    forward(): runs the model on ``inputs`` and returns the scalar loss.
    backward(): after ``forward``, returns a dict of input gradients (same keys as ``inputs``)
        and accumulates parameter gradients into ``grads`` (same keys as ``params``).
    params, inputs: dicts of float64 arrays that ``forward`` reads (perturbed in place).
    Returns ``{name: max relative error}`` for every parameter and input.
    """
    for name, a in {**params, **inputs}.items():
        if np.asarray(a).dtype != np.float64:
            raise TypeError(f"gradcheck runs in float64; '{name}' is {np.asarray(a).dtype}")
    if zero_grad is not None:
        zero_grad()
    forward()
    dinputs = backward() or {}
    analytic = {f"param:{k}": np.array(grads[k], copy=True) for k in params} if grads else {}
    analytic.update({f"input:{k}": np.array(dinputs[k], copy=True) for k in inputs if k in dinputs})
    report = {}
    for kind, tensors in (("param", params), ("input", inputs)):
        for name, arr in tensors.items():
            key = f"{kind}:{name}"
            if key not in analytic:
                continue
            num = np.zeros_like(arr)
            flat, nflat = arr.reshape(-1), num.reshape(-1)
            for j in range(flat.size):
                old = flat[j]
                flat[j] = old + eps
                lp = forward()
                flat[j] = old - eps
                lm = forward()
                flat[j] = old
                nflat[j] = (lp - lm) / (2 * eps)
            report[key] = _rel_err(analytic[key], num)
    return report


def gradcheck_module(module, x, loss_weights=None, seed=0, eps=1e-6, state=None):
    """Convenience for one recurrent layer: L = sum(out * R) with a fixed random R.

    ``module`` must be float64. ``state``: optional initial state passed as the second
    argument. Returns the report of :func:`gradcheck`.
    """
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    holder = {}

    def forward():
        out = module(x, state) if state is not None else module(x)
        y = out[0] if isinstance(out, tuple) else out
        if "R" not in holder:
            holder["R"] = rng.standard_normal(y.shape) if loss_weights is None else loss_weights
        return float(np.sum(y * holder["R"]))

    def backward():
        res = module.backward(holder["R"])
        dx = res[0] if isinstance(res, tuple) else res
        return {"x": dx}

    return gradcheck(forward, backward, module.params, {"x": x}, module.grads, eps,
                     zero_grad=module.zero_grad)
