"""The one base class: a module holds ``params`` and ``grads`` and nothing magic.

Parameters live in ``module.params`` and gradients in ``module.grads``, two
dicts keyed by PyTorch's names with PyTorch's shapes, so that
``{k: v.numpy() for k, v in torch_module.state_dict().items()}`` loads by copy.
Containers (a model made of modules) list their children in ``children`` and
their names are prefixed like PyTorch's (``encoder.weight_ih_l0``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

_mode = threading.local()


@contextlib.contextmanager
def inference_mode(enabled: bool = True):
    """Like ``torch.inference_mode``: inside it, forward passes keep nothing for backward.

    The recurrent layers then reuse one step-sized buffer for the gates instead of
    storing every step's (less memory, fewer cache misses) and ``backward`` raises.
    Per thread; nests; ``inference_mode(False)`` switches it off inside."""
    before = getattr(_mode, "on", False)
    _mode.on = bool(enabled)
    try:
        yield
    finally:
        _mode.on = before


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside ``inference_mode()``."""
    return getattr(_mode, "on", False)


class Module:
    """Base class: parameters, gradients, train/eval mode, state dicts."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    # -- children -------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(name, param, grad)`` for this module and its children."""
        for name, p in self.params.items():
            yield prefix + name, p, self.grads[name]
        for cname, child in self.named_children():
            yield from child.named_parameters(prefix + cname + ".")

    # -- gradients and modes --------------------------------------------------
    def _init_grads(self) -> None:
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def zero_grad(self) -> None:
        for _, _, g in self.named_parameters():
            g.fill(0.0)

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- state dicts ----------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A dict of copies of every parameter, keyed by its (prefixed) name."""
        return {name: p.copy() for name, p, _ in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy ``state`` into the parameters; names and shapes must match exactly."""
        own = {name: p for name, p, _ in self.named_parameters()}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, p in own.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{name}' has shape "
                    f"{value.shape}, expected {p.shape}"
                )
            p[...] = value  # in place: optimisers keep references to p

    def flatten_parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """Move every parameter of this module and its children into ONE contiguous buffer,
        and every gradient into another; ``params`` / ``grads`` then hold views into them (in
        ``named_parameters`` order). Optimisers and ``clip_grad_norm`` given this module then
        work on the whole buffer at once: a few calls per step instead of a few per tensor,
        which matters for small models taking many steps. Returns ``(P, G)``, also kept as
        ``self.flat``. All parameters must share one dtype."""
        owners = list(self._owners())
        dtypes = {m.params[k].dtype for m, k in owners}
        if len(dtypes) != 1:
            raise ValueError(f"flatten_parameters needs one dtype, got {sorted(map(str, dtypes))}")
        n = sum(m.params[k].size for m, k in owners)
        dtype = dtypes.pop()
        P, G = np.empty(n, dtype), np.zeros(n, dtype)
        off = 0
        for m, k in owners:
            p, g = m.params[k], m.grads[k]
            P[off : off + p.size] = p.ravel()
            G[off : off + p.size] = g.ravel()
            m.params[k] = P[off : off + p.size].reshape(p.shape)  # a view: updates reach the layer
            m.grads[k] = G[off : off + p.size].reshape(p.shape)
            off += p.size
        self.flat = (P, G)
        return self.flat

    def _owners(self) -> Iterator[tuple[Module, str]]:
        """``(module, key)`` of every parameter, in ``named_parameters`` order."""
        for k in self.params:
            yield self, k
        for _, child in self.named_children():
            yield from child._owners()

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError
