"""Initialisation schemes for the recurrent layers, the cells and ``Linear``.

Every function takes a module and a seed (an int, ``None`` or a ``numpy.random.Generator``)
and writes *in place* into ``module.params`` (optimisers keep references to those arrays).
A recurrent weight ``weight_ih (G*H, I)`` / ``weight_hh (G*H, H)`` is G gate blocks stacked
in PyTorch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``; RNN one block), and the schemes
that care about shape work block by block, because each gate is its own matrix
``U_k`` / ``W_k`` in the chapter's equations.

Schemes (``apply(module, scheme, seed)``)::

    "pytorch"     every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))       (recurrent, H hidden)
                  Linear: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in))    (PyTorch's defaults)
    "orthogonal"  U_k ~ Xavier-uniform: U(-a, a), a = sqrt(6 / (H + I))  per gate block
                  W_k orthogonal: W_k W_k^T = I                            per gate block
                  biases 0, and for the LSTM the forget-gate bias b_f = 1  (Gers et al. 2000;
                  Jozefowicz et al. 2015).  Linear: Xavier-uniform weight, zero bias.
    "book"        every weight ~ N(0, 0.05^2) truncated at 2 std (|w| <= 0.1), biases 0
                  (the book's ``tf.truncated_normal(stddev=0.05)``).

Forget bias with two biases: PyTorch's LSTM has ``bias_ih`` and ``bias_hh`` and uses their
sum ``b_f = b_ih,f + b_hh,f``. ``forget_gate_bias`` writes the 1 into ``bias_ih``'s f block
``[H:2H]`` and 0 into ``bias_hh``'s f block, so the sum is exactly 1.

Walking a model: ``apply`` visits the module and all its children; modules that are neither
recurrent (a ``weight_hh*`` parameter) nor ``Linear`` (e.g. ``Embedding``) are left as they are.
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn.linear import Linear
from rnnlab.nn.module import Module

SCHEMES = ("pytorch", "orthogonal", "book")


# ----------------------------------------------------------------------------- arrays


def orthogonal(n: int, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """An (n, n) orthogonal matrix drawn uniformly (Haar): QR of a Gaussian, signs fixed.

    ``A = Q R``; multiplying column j of Q by sign(R_jj) makes the draw uniform over the
    orthogonal group (Mezzadri 2007), as ``torch.nn.init.orthogonal_`` does.
    """
    a = rng.standard_normal((n, n))  # (n, n)
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # Q diag(sign(diag R))
    return gain * q


def xavier_uniform(fan_out: int, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """(fan_out, fan_in) ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, (fan_out, fan_in))


def truncated_normal(shape, rng: np.random.Generator, std: float = 0.05, cut: float = 2.0) -> np.ndarray:
    """N(0, std^2) with every draw outside ``[-cut*std, cut*std]`` redrawn (TF's truncated_normal).

    ``std`` is that of the normal *before* truncation; the result's std is ``0.880 * std`` at cut 2.
    """
    w = rng.standard_normal(shape)
    bad = np.abs(w) > cut
    while bad.any():  # redraw, never clip (no mass at the edge)
        w[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(w) > cut
    return std * w


# ----------------------------------------------------------------------------- helpers


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)  # a Generator passes through unchanged


def _is_recurrent(module: Module) -> bool:
    return any(k.startswith("weight_hh") for k in module.params)


def _kind(module: Module) -> str:
    if _is_recurrent(module):
        return "recurrent"
    if isinstance(module, Linear):
        return "linear"
    raise TypeError(
        f"rnnlab.nn.init: {type(module).__name__} is neither a recurrent layer/cell "
        f"nor Linear; nothing to initialise"
    )


def _gates(module: Module) -> tuple[int, int]:
    """(G, H): gate blocks and hidden size, read off any weight_hh (G*H, H)."""
    W = next(p for k, p in module.params.items() if k.startswith("weight_hh"))
    return W.shape[0] // W.shape[1], W.shape[1]


def _blocks(p: np.ndarray, G: int, H: int):
    """The G gate blocks of a (G*H, ...) parameter, as views."""
    return [p[k * H : (k + 1) * H] for k in range(G)]


# ----------------------------------------------------------------------------- schemes


def pytorch_default(module: Module, seed=None) -> Module:
    """PyTorch's default: recurrent U(-1/sqrt(H), 1/sqrt(H)); Linear U(-1/sqrt(in), 1/sqrt(in))."""
    rng = _rng(seed)
    if _kind(module) == "recurrent":
        k = 1.0 / np.sqrt(_gates(module)[1])
    else:
        k = 1.0 / np.sqrt(module.params["weight"].shape[1])
    for p in module.params.values():
        p[...] = rng.uniform(-k, k, p.shape)
    return module


def xavier_input(module: Module, seed=None) -> Module:
    """Input weights U_k ~ Xavier-uniform per gate block (H, I); Linear: the whole weight."""
    rng = _rng(seed)
    if _kind(module) == "linear":
        W = module.params["weight"]
        W[...] = xavier_uniform(W.shape[0], W.shape[1], rng)
        return module
    G, H = _gates(module)
    for name, p in module.params.items():
        if name.startswith("weight_ih"):
            for U_k in _blocks(p, G, H):  # (H, I) one gate's U_k
                U_k[...] = xavier_uniform(H, p.shape[1], rng)
    return module


def orthogonal_recurrent(module: Module, seed=None, gain: float = 1.0) -> Module:
    """Recurrent weights W_k orthogonal per gate block: W_k W_k^T = I for every (H, H) block."""
    rng = _rng(seed)
    if _kind(module) != "recurrent":
        raise ValueError(f"orthogonal_recurrent needs a recurrent layer or cell, got {type(module).__name__}")
    G, H = _gates(module)
    for name, p in module.params.items():
        if name.startswith("weight_hh"):
            for W_k in _blocks(p, G, H):  # (H, H) one gate's W_k
                W_k[...] = orthogonal(H, rng, gain)
    return module


def zero_biases(module: Module) -> Module:
    """Every bias to 0 (``bias*`` parameters)."""
    for name, p in module.params.items():
        if name.startswith("bias"):
            p[...] = 0.0
    return module


def forget_gate_bias(module: Module, value: float = 1.0) -> Module:
    """LSTM only: b_f = value, written as bias_ih[H:2H] = value and bias_hh[H:2H] = 0.

    The other gates' biases are left as they are. Raises ``ValueError`` for a non-LSTM
    module or an LSTM built with ``bias=False`` (there is no bias to set).
    """
    if _kind(module) != "recurrent" or _gates(module)[0] != 4:
        raise ValueError(f"forget_gate_bias needs an LSTM layer or cell, got {type(module).__name__}")
    if not any(k.startswith("bias_ih") for k in module.params):
        raise ValueError(f"{type(module).__name__} was built with bias=False: no forget-gate bias to set")
    _, H = _gates(module)
    for name, p in module.params.items():
        if name.startswith("bias_ih"):
            p[H : 2 * H] = value  # f block of b_ih (order i, f, g, o)
        elif name.startswith("bias_hh"):
            p[H : 2 * H] = 0.0  # f block of b_hh: the sum is `value`
    return module


def book_truncated_normal(module: Module, seed=None, std: float = 0.05) -> Module:
    """The book's recipe: every weight ~ truncated N(0, std^2) (cut at 2 std), biases 0."""
    rng = _rng(seed)
    _kind(module)
    for name, p in module.params.items():
        if name.startswith("weight"):
            p[...] = truncated_normal(p.shape, rng, std)
    return zero_biases(module)


def _orthogonal_scheme(module: Module, rng: np.random.Generator) -> None:
    xavier_input(module, rng)
    if _kind(module) == "recurrent":
        orthogonal_recurrent(module, rng)
    zero_biases(module)
    if (
        _kind(module) == "recurrent"
        and _gates(module)[0] == 4
        and any(k.startswith("bias_ih") for k in module.params)
    ):
        forget_gate_bias(module, 1.0)


def _walk(module: Module):
    yield module
    for _, child in module.named_children():
        yield from _walk(child)


def apply(module: Module, scheme: str, seed=None) -> Module:
    """Initialise ``module`` and every recurrent or Linear module below it with ``scheme``.

    ``scheme`` is one of ``"pytorch"``, ``"orthogonal"``, ``"book"`` (see the module docstring).
    One generator drawn from ``seed`` serves all modules, in the order they are found.
    Returns ``module``.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    rng = _rng(seed)
    targets = [m for m in _walk(module) if _is_recurrent(m) or isinstance(m, Linear)]
    if not targets:
        raise TypeError(f"rnnlab.nn.init.apply: {type(module).__name__} holds no recurrent or Linear module")
    for m in targets:
        if scheme == "pytorch":
            pytorch_default(m, rng)
        elif scheme == "orthogonal":
            _orthogonal_scheme(m, rng)
        else:
            book_truncated_normal(m, rng)
    return module
