"""SGD, Adam and AdamW over the parameters of a list of modules, as ``torch.optim`` does them.

SGD (Sutskever et al. 2013 momentum; PyTorch's form)::
    g = grad + wd * p;   b = mu * b + (1 - dampening) * g  (b = g on the first step)
    g = g + mu * b (nesterov)  or  g = b;   p -= lr * g
Adam (Kingma & Ba 2015)::
    g = grad + wd * p;   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
AdamW (Loshchilov & Hutter 2019)::  p *= 1 - lr * wd, then Adam with wd = 0.
Parameters are updated in place, so modules keep seeing their own arrays.
"""
from __future__ import annotations

import numpy as np


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


class Optimizer:
    def __init__(self, modules, lr):
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.pairs = _collect(modules)
        self.lr = float(lr)
        self.t = 0

    def zero_grad(self):
        for _, g in self.pairs:
            g.fill(0.0)

    def step(self):
        self.t += 1
        for k, (p, g) in enumerate(self.pairs):
            self._update(k, p, g)

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
        self.buf = [None] * len(self.pairs)

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


class Adam(Optimizer):
    decoupled = False

    def __init__(self, modules, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(modules, lr)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.m = [np.zeros_like(p) for p, _ in self.pairs]
        self.v = [np.zeros_like(p) for p, _ in self.pairs]

    def _update(self, k, p, g):
        if self.weight_decay and self.decoupled:
            p *= 1.0 - self.lr * self.weight_decay            # AdamW: decay the weight itself
        elif self.weight_decay:
            g = g + self.weight_decay * p                     # Adam: L2 through the gradient
        step = self.lr / (1.0 - self.b1 ** self.t)
        s2 = float(np.sqrt(1.0 - self.b2 ** self.t))
        adam_update_(p, g, self.m[k], self.v[k], self._scratch(k, p), self.b1, self.b2, self.eps, step, s2)

    def _scratch(self, k, p):
        """One reusable buffer per parameter: the update makes no temporaries."""
        if not hasattr(self, "_tmp"):
            self._tmp = [None] * len(self.pairs)
        if self._tmp[k] is None:
            self._tmp[k] = np.empty_like(p)
        return self._tmp[k]

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


class AdamW(Adam):
    decoupled = True

    def __init__(self, modules, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(modules, lr, betas, eps, weight_decay)


def adam_update_(p, g, m, v, t, b1, b2, eps, step, s2):
    """One in-place Adam update of ``p`` (any shape or flat chunk) using scratch ``t``.

    ``step = lr / (1 - b1^t)`` and ``s2 = sqrt(1 - b2^t)`` as Python floats (they keep the dtype).
    """
    m *= b1
    np.multiply(g, 1.0 - b1, out=t)
    m += t                                                    # m = b1 m + (1 - b1) g
    v *= b2
    np.multiply(g, g, out=t)
    t *= 1.0 - b2
    v += t                                                    # v = b2 v + (1 - b2) g^2
    np.sqrt(v, out=t)
    t /= s2                                                   # sqrt(v_hat)
    t += eps
    np.divide(m, t, out=t)
    t *= step                                                 # lr m_hat / (sqrt(v_hat) + eps)
    p -= t


def clip_grad_norm(modules, max_norm):
    """Scale all gradients so their global L2 norm is at most ``max_norm``; return the norm
    before clipping (``torch.nn.utils.clip_grad_norm_``: scale = max_norm / (norm + 1e-6))."""
    grads = [g for _, g in _collect(modules)]
    total = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= scale
    return total
