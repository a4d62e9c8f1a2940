"""A public finite-difference gradient checker for learners.

``gradcheck(forward, backward, params, inputs, grads)`` compares hand-derived gradients with
float64 central differences ``(L(p + eps) - L(p - eps)) / (2 eps)`` and reports, for every
parameter and every input, the max absolute difference over the entries divided by the
tensor's largest gradient (analytic or numeric), so tiny entries do not dominate.

``gradcheck_module(module, x, ...)`` does the wiring for one module: a recurrent layer, a
cell, ``Linear`` or ``Embedding``. Typical use::

    lstm = rnnlab.nn.LSTM(4, 5, num_layers=2, bidirectional=True, dtype=np.float64)
    report = gradcheck_module(lstm, x, state=(h0, c0), lengths=[3, 2])
    # {'param:weight_ih_l0': 1e-9, ..., 'input:x': 1e-9, 'input:h0': 1e-9, 'input:c0': 1e-9}
    assert max(report.values()) < 1e-6

With a float64 model the errors of a correct backward are ~1e-9 (eps=1e-6); a wrong one is
usually > 1e-2. Dropout must be off (``module.eval()`` or ``dropout=0``): the loss must be
a deterministic function of the parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _rel_err(analytic, numeric):
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-12)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


def gradcheck(
    forward: Callable,
    backward: Callable,
    params: dict,
    inputs: dict,
    grads: dict | None = None,
    eps: float = 1e-6,
    zero_grad: Callable | None = None,
):
    """Check analytic gradients against central differences, all in float64.

    forward(): runs the model on ``inputs`` and returns the scalar loss.
    backward(): after ``forward``, returns a dict of input gradients (same keys as ``inputs``)
        and accumulates parameter gradients into ``grads`` (same keys as ``params``).
    params, inputs: dicts of float64 arrays that ``forward`` reads (perturbed in place).
    zero_grad(): called before the analytic pass (else ``grads`` must start at zero).
    Returns ``{"param:<name>" or "input:<name>": max relative error}``.
    """
    for name, a in {**params, **inputs}.items():
        if np.asarray(a).dtype != np.float64:
            raise TypeError(f"gradcheck runs in float64; '{name}' is {np.asarray(a).dtype}")
    if params and grads is None:
        raise ValueError("gradcheck: params given without the grads dict that backward fills")
    if zero_grad is not None:
        zero_grad()
    forward()
    dinputs = backward() or {}
    analytic = {f"param:{k}": np.array(grads[k], copy=True) for k in params} if grads is not None else {}
    analytic.update({f"input:{k}": np.array(dinputs[k], copy=True) for k in inputs if k in dinputs})
    report = {}
    for kind, tensors in (("param", params), ("input", inputs)):
        for name, arr in tensors.items():
            key = f"{kind}:{name}"
            if key not in analytic:
                continue
            num = np.zeros_like(arr)
            flat, nflat = arr.reshape(-1), num.reshape(-1)
            if not np.shares_memory(flat, arr):
                raise ValueError(f"gradcheck: '{name}' must be contiguous (it is perturbed in place)")
            for j in range(flat.size):
                old = flat[j]
                flat[j] = old + eps
                lp = forward()
                flat[j] = old - eps
                lm = forward()
                flat[j] = old
                nflat[j] = (lp - lm) / (2 * eps)
            if analytic[key].shape != arr.shape:
                raise ValueError(
                    f"gradcheck: gradient of '{name}' has shape {analytic[key].shape}, expected {arr.shape}"
                )
            report[key] = _rel_err(analytic[key], num)
    return report


def _as_list(a):
    return list(a) if isinstance(a, tuple) else [a]


def _input_grads(res):
    """A module's ``backward`` result as gradcheck's input gradients: ``{"x", "h0", "c0"}``."""
    if res is None:  # Embedding: no input gradient
        return {}
    if not isinstance(res, tuple):  # Linear: dx
        return {"x": res}
    dx, dstate = res
    d = {"x": dx}
    for name, g in zip(("h0", "c0"), _as_list(dstate)):
        d[name] = g
    return d


def gradcheck_module(module, x, loss_weights=None, seed=0, eps=1e-6, state=None, lengths=None):
    """Check one module with the loss ``L = sum(out * R) + sum_k sum(state_k * R_k)``.

    ``R`` and ``R_k`` are fixed random weights (``loss_weights`` replaces R for the output),
    so every output and every final state (``h_n``, ``c_n`` of a layer; ``h``, ``c`` of a cell)
    carries a random upstream gradient.

    module: float64 recurrent layer (``RNN``, ``LSTM``, ``GRU``), cell, ``Linear`` or ``Embedding``.
    x: the input; checked as ``input:x`` unless it is integer (``Embedding`` indices).
    state: optional initial state (array, or ``(h0, c0)`` for LSTMs), checked as ``input:h0``
        (and ``input:c0``). lengths: optional per-sequence lengths for a recurrent layer.
    Returns the report of :func:`gradcheck`.
    """
    from rnnlab.nn.cells import LSTMCell
    from rnnlab.nn.layers import RNNBase

    rng = np.random.default_rng(seed)
    integer_x = np.issubdtype(np.asarray(x).dtype, np.integer)
    x = np.ascontiguousarray(x) if integer_x else np.array(x, dtype=np.float64)
    states = [] if state is None else [np.array(s, dtype=np.float64) for s in _as_list(state)]
    layer = isinstance(module, RNNBase)
    holder = {}

    def run():
        args = [x]
        if states:
            args.append(tuple(states) if len(states) > 1 else states[0])
        kw = {"lengths": lengths} if layer else {}
        if lengths is not None and not layer:
            raise ValueError("gradcheck_module: lengths only apply to recurrent layers")
        out = module(*args, **kw)
        if layer:  # out, h_n  |  out, (h_n, c_n)
            return [out[0]] + _as_list(out[1])
        return _as_list(out)  # cell (h | h, c), Linear, Embedding

    def forward():
        ys = run()
        if "R" not in holder:
            holder["R"] = [rng.standard_normal(y.shape) for y in ys]
            if loss_weights is not None:
                holder["R"][0] = np.asarray(loss_weights, np.float64)
        return float(sum(np.sum(y * r) for y, r in zip(ys, holder["R"])))

    def backward():
        R = holder["R"]
        if layer:
            res = module.backward(R[0], tuple(R[1:]) if len(R) > 2 else R[1])
        elif isinstance(module, LSTMCell):
            res = module.backward(R[0], R[1])
        else:
            res = module.backward(R[0])
        return _input_grads(res)

    inputs = {} if integer_x else {"x": x}
    inputs.update({name: s for name, s in zip(("h0", "c0"), states)})
    return gradcheck(forward, backward, module.params, inputs, module.grads, eps, zero_grad=module.zero_grad)
