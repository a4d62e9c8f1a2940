"""SGD, Adam and AdamW over the parameters of a list of modules, as ``torch.optim`` does them.

SGD (Sutskever et al. 2013 momentum; PyTorch's form)::
    g = grad + wd * p;   b = mu * b + (1 - dampening) * g  (b = g on the first step)
    g = g + mu * b (nesterov)  or  g = b;   p -= lr * g
Adam (Kingma & Ba 2015)::
    g = grad + wd * p;   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
AdamW (Loshchilov & Hutter 2019)::  p *= 1 - lr * wd, then Adam with wd = 0.

Parameters are updated in place, so modules keep seeing their own arrays. How the update runs
is an option, never a different optimiser: Adam's update is one pass over each parameter (or
over the single buffer of ``Module.flatten_parameters()``), compiled when numba is installed
(``compiled``: the same operations in the same order, so the same bits as NumPy's), else NumPy
on chunks that stay in cache (``chunk`` numbers); with ``threads`` > 1 the chunks are shared
between threads of ``runtime.pool()``. ``step(zero_grad=True)`` also zeroes each gradient
chunk right after its use (one pass less than a separate ``zero_grad``).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from rnnlab.nn import runtime


def _collect(modules):
    if hasattr(modules, "named_parameters"):
        modules = [modules]
    seen, pairs = set(), []
    for m in modules:
        for _, p, g in m.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                pairs.append((p, g))
    if not pairs:
        raise ValueError("optimizer got no parameters")
    return pairs


def flat_buffers(modules):
    """``(P, G)``: the one parameter and one gradient buffer of a module whose parameters were
    moved there by ``Module.flatten_parameters()``; else None."""
    if hasattr(modules, "named_parameters"):
        modules = [modules]
    modules = list(modules)
    if len(modules) != 1:
        return None
    return getattr(modules[0], "flat", None)


class Optimizer:
    def __init__(self, modules, lr, threads=1, chunk=1 << 15):
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        if int(threads) != threads or threads < 1 or int(chunk) != chunk or chunk < 1:
            raise ValueError(f"threads and chunk must be positive integers, got {threads}, {chunk}")
        self.pairs = _collect(modules)
        self.lr = float(lr)
        self.t = 0
        self.threads, self.chunk = int(threads), int(chunk)
        self.flat = flat_buffers(modules)

    def zero_grad(self):
        if self.flat is not None:
            self.flat[1].fill(0.0)
            return
        for _, g in self.pairs:
            g.fill(0.0)

    def step(self, zero_grad=False):
        self.t += 1
        for k, (p, g) in enumerate(self.pairs):
            self._update(k, p, g)
        if zero_grad:
            self.zero_grad()

    def _update(self, k, p, g):
        raise NotImplementedError

    def state_dict(self):
        """Optimizer state as plain arrays (for checkpoints; safetensors-friendly)."""
        return {"t": np.array(self.t), "lr": np.array(self.lr)}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.lr = float(state["lr"])


class SGD(Optimizer):
    def __init__(self, modules, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(modules, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buf: list = [None] * len(self.pairs)

    def _update(self, k, p, g):
        d = g + self.weight_decay * p if self.weight_decay else g
        if self.momentum:
            b = self.buf[k]
            if b is None:
                b = self.buf[k] = np.array(d, copy=True)
            else:
                b *= self.momentum
                b += (1.0 - self.dampening) * d
            d = d + self.momentum * b if self.nesterov else b
        p -= self.lr * d

    def state_dict(self):
        s = super().state_dict()
        for k, b in enumerate(self.buf):
            if b is not None:
                s[f"momentum.{k}"] = b.copy()
        return s

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.buf = [
            np.array(state[f"momentum.{k}"], p.dtype) if f"momentum.{k}" in state else None
            for k, (p, _) in enumerate(self.pairs)
        ]


class Adam(Optimizer):
    """Adam; ``threads``, ``chunk`` and ``compiled`` ("auto", True, False) choose how the update
    runs (see the module's docstring), never what it computes."""

    decoupled = False

    def __init__(
        self,
        modules,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        threads=1,
        chunk=1 << 15,
        compiled="auto",
    ):
        super().__init__(modules, lr, threads, chunk)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        if self.flat is not None:  # one buffer: m and v flat too
            self._m, self._v = np.zeros_like(self.flat[0]), np.zeros_like(self.flat[0])
            self.m, self.v = _views(self._m, self.pairs), _views(self._v, self.pairs)
        else:
            self.m = [np.zeros_like(p) for p, _ in self.pairs]
            self.v = [np.zeros_like(p) for p, _ in self.pairs]
        self.compiled = compiled
        self._work = self._plan()

    def _plan(self):
        """Work units ``(p, g, m, v)`` (1-D), cut into chunks, shared out between threads."""
        if self.flat is not None:
            tensors = [(self.flat[0], self.flat[1], self._m, self._v)]
        else:
            tensors = [
                tuple(a.reshape(-1) for a in (p, g, m, v)) for (p, g), m, v in zip(self.pairs, self.m, self.v)
            ]
        units = [
            tuple(a[lo : lo + self.chunk] for a in t)
            for t in tensors
            for lo in range(0, t[0].size, self.chunk)
        ]
        share = -(-len(units) // self.threads)
        groups = [units[i : i + share] for i in range(0, len(units), share)]
        self._tmp: list[dict] = [{} for _ in groups]  # per group: dtype -> scratch chunk
        return groups

    def step(self, zero_grad=False):
        self.t += 1
        step = self.lr / (1.0 - self.b1**self.t)
        s2 = float(np.sqrt(1.0 - self.b2**self.t))  # Python floats keep the dtype
        from rnnlab.optim import _compiled

        kernel = _compiled.adam_kernel() if self.compiled in ("auto", True) else None
        jobs = [
            partial(self._run, group, tmp, kernel, step, s2, zero_grad)
            for group, tmp in zip(self._work, self._tmp)
        ]
        runtime.run(jobs, parallel=self.threads > 1)

    def _run(self, group, tmp, kernel, step, s2, zero_grad):
        wd, lr_wd = self.weight_decay, self.lr * self.weight_decay
        for p, grad, m, v in group:
            if kernel is not None and p.dtype in (np.float32, np.float64):
                f = p.dtype.type
                kernel(
                    p,
                    grad,
                    m,
                    v,
                    f(self.b1),
                    f(1.0 - self.b1),
                    f(self.b2),
                    f(1.0 - self.b2),
                    f(self.eps),
                    f(step),
                    f(s2),
                    f(wd),
                    f(1.0 - lr_wd),
                    self.decoupled,
                    zero_grad,
                )
                continue
            g = grad
            if wd and self.decoupled:
                p *= 1.0 - lr_wd  # AdamW: decay the weight itself
            elif wd:
                g = grad + wd * p  # Adam: L2 through the gradient
            buf = tmp.get(p.dtype)
            if buf is None:
                buf = tmp[p.dtype] = np.empty(self.chunk, p.dtype)
            adam_update_(p, g, m, v, buf[: p.size], self.b1, self.b2, self.eps, step, s2)
            if zero_grad:
                grad.fill(0.0)

    def state_dict(self):
        s = super().state_dict()
        for k in range(len(self.pairs)):
            s[f"m.{k}"], s[f"v.{k}"] = self.m[k].copy(), self.v[k].copy()
        return s

    def load_state_dict(self, state):
        super().load_state_dict(state)
        for k in range(len(self.pairs)):
            self.m[k][...] = state[f"m.{k}"]
            self.v[k][...] = state[f"v.{k}"]


def _views(flat, pairs):
    out, off = [], 0
    for p, _ in pairs:
        out.append(flat[off : off + p.size].reshape(p.shape))
        off += p.size
    return out


class AdamW(Adam):
    decoupled = True

    def __init__(
        self,
        modules,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        threads=1,
        chunk=1 << 15,
        compiled="auto",
    ):
        super().__init__(modules, lr, betas, eps, weight_decay, threads, chunk, compiled)


def adam_update_(p, g, m, v, t, b1, b2, eps, step, s2):
    """One in-place Adam update of ``p`` (any shape or flat chunk) using scratch ``t``.

    ``step = lr / (1 - b1^t)`` and ``s2 = sqrt(1 - b2^t)`` as Python floats (they keep the dtype).
    """
    m *= b1
    np.multiply(g, 1.0 - b1, out=t)
    m += t  # m = b1 m + (1 - b1) g
    v *= b2
    np.multiply(g, g, out=t)
    t *= 1.0 - b2
    v += t  # v = b2 v + (1 - b2) g^2
    np.sqrt(v, out=t)
    t /= s2  # sqrt(v_hat)
    t += eps
    np.divide(m, t, out=t)
    t *= step  # lr m_hat / (sqrt(v_hat) + eps)
    p -= t


def clip_grad_norm(modules, max_norm):
    """Scale all gradients so their global L2 norm is at most ``max_norm``; return the norm
    before clipping (``torch.nn.utils.clip_grad_norm_``: scale = max_norm / (norm + 1e-6))."""
    flat = flat_buffers(modules)
    grads = [flat[1]] if flat is not None else [g for _, g in _collect(modules)]
    total = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= scale
    return total
