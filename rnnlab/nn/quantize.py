"""Reduced-precision inference for the LSTM, GRU and RNN (issue 32): int8 weights, every
product's left operand quantised to 8 bits when it is there, exact int32 products; or bf16
weights and operands with float32 sums; the nonlinearities and the state in float32 either way.

    q = quantize_dynamic(lstm)          # an inference-only int8 copy; lstm itself is untouched
    b = quantize_dynamic(lstm, dtype="bf16")
    out, (h_n, c_n) = q(x)              # the float layer's call (hx, lengths= too)
    q.save("lstm-int8.safetensors");  q = QuantizedRNN.load("lstm-int8.safetensors")

What is quantised, and how (docs/QUANTIZATION.md has the errors measured)::

    weights  W (R, K) -> Wq int8, one float32 scale per output row (symmetric, no zero point):
             s_w[r] = max_k |W[r, k]| / 127,      Wq[r, k] = rint(W[r, k] / s_w[r])
    operand  a (M, K) (x_t of every step at once, h_{t-1} at each step), each row on its own
             scale, computed when the row is there (dynamic, asymmetric, uint8):
             lo = min(a_m, 0), hi = max(a_m, 0),  s[m] = (hi - lo) / 255,  z[m] = rint(-lo / s[m])
             aq[m, k] = clip(rint(a[m, k] / s[m]) + z[m], 0, 255)
    product  C = aq Wq^T in int32, exact (``backend/intgemm.py``: oneDNN's u8s8s32 GEMM, or NumPy)
             a W^T ~= s[m] s_w[r] (C[m, r] - z[m] sum_k Wq[r, k])
  bf16 (``BMatrix``):
    weights  W -> bf16(W), rounded to nearest even (8 significant bits; no scales)
    operand  a -> bf16(a) at each step
    product  a W^T ~= bf16(a) bf16(W)^T summed in float32 (``backend/bf16gemm.py``: oneDNN's
             dnnl_gemm_bf16bf16f32, or NumPy's float32 matmul of the same values)

Everything else is the float cell's own step (``lstm.py``, ``gru.py``, ``rnn.py``, called here
with a ``QMatrix`` or ``BMatrix`` in place of ``W``: ``h @ W.T`` is then the reduced product),
so the equations cannot drift apart. Biases stay float32. ``backward`` raises: train the float
model and quantise again. The compiled loops (``backend/int8_loops.py``, ``bf16_loops.py``,
numba) run the same arithmetic in
one call per direction where numba and oneDNN load; this file is the reference they are tested
against (and what runs without them).
Shapes: T time, N batch, I input, H hidden, G gates (1 RNN, 3 GRU, 4 LSTM), D directions.
"""

from __future__ import annotations

import importlib
import os
from importlib.util import find_spec
from typing import Any

import numpy as np

from rnnlab.io import read_tensors, write_tensors
from rnnlab.nn import quantize_io
from rnnlab.nn.backend import bf16gemm, intgemm
from rnnlab.nn.direction import CellSpec, GRUSpec, LSTMSpec, RNNSpec
from rnnlab.nn.layers import RNNBase, check_input
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import reverse_index, take_time
from rnnlab.nn.steps import binding

MODES, GATES, suffixes = quantize_io.MODES, quantize_io.GATES, quantize_io.suffixes
_F32 = np.float32
PRECISIONS = ("float32", "int8", "bf16")  # what the applications' --precision and bench --precision offer
MAX_K = 32_000  # the longest sum the int32 accumulator holds exactly, zero point included


# ----------------------------------------------------------------------------- quantisation


def quantize_weight(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W (R, K)`` as int8 per output row: ``(Wq (R, K) int8, s_w (R,) float32)`` with
    ``W ~= s_w[:, None] * Wq``; a zero row gets scale 1."""
    W = np.asarray(W, _F32)
    if W.size and not np.isfinite(W).all():
        raise ValueError("quantize_weight: the weights hold NaN or inf")
    amax = np.abs(W).max(axis=1) if W.shape[1] else np.zeros(W.shape[0], _F32)
    scale = np.where(amax > 0, amax / _F32(127), _F32(1)).astype(_F32)
    return np.clip(np.rint(W / scale[:, None]), -127, 127).astype(np.int8), scale


def bf16_weight(W: np.ndarray) -> np.ndarray:
    """``W`` rounded to bf16 (uint16 bits, ``backend/bf16gemm.py``); refuses NaN, inf and
    values past bf16's range (they would round to inf)."""
    b = bf16gemm.to_bf16(np.asarray(W, _F32))
    if b.size and ((b & 0x7F80) == 0x7F80).any():
        raise ValueError("bf16_weight: the weights hold NaN, inf or values beyond bf16's range")
    return b


def quantize_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a (M, K)`` float, each row on its own scale: ``(aq uint8, s (M,) float32, z (M,)
    int32)`` with ``a ~= s[:, None] * (aq - z[:, None])`` (the module docstring's formulas).
    A row with NaN or inf gives NaN outputs downstream (its scale is NaN), never a wrong number."""
    lo = np.minimum(a.min(axis=1), 0)
    hi = np.maximum(a.max(axis=1), 0)
    s = np.where(hi > lo, (hi - lo) / _F32(255), _F32(1)).astype(_F32)
    s[~np.isfinite(lo + hi)] = np.nan
    inv = (_F32(1) / s).astype(_F32)
    z = np.rint(np.nan_to_num(-lo * inv)).astype(np.int32)  # in [0, 255]: lo <= 0 <= hi
    q = np.rint(np.nan_to_num(a * inv[:, None])) + z[:, None]
    return np.clip(q, 0, 255).astype(np.uint8), s, z


class QMatrix:
    """One weight matrix, quantised. ``a @ m.T ~= a @ W.T`` with ``a`` quantised per row (the
    float cell's own expression works on it); ``m[rows]`` is a block of rows (the chapter's GRU
    multiplies by ``W[:2H]`` and ``W[2H:]``)."""

    __array_ufunc__ = None  # ``ndarray @ QMatrix`` defers to ``__rmatmul__``
    kernels = "int8"  # the compiled loops that multiply by it (``compiled_loops``)

    def __init__(self, q: np.ndarray, scale: np.ndarray):
        self.q, self.scale = q, scale  # (R, K) int8, (R,) float32
        self.qT = np.ascontiguousarray(q.T)  # (K, R): the GEMM's B
        self.colsum = q.sum(axis=1, dtype=np.int32)  # (R,) sum_k Wq[r, k], for the zero point
        self.zero = np.zeros(q.shape[0], _F32)  # no bias

    @property
    def T(self) -> QMatrix:
        return self  # the product below is always a @ W^T

    def __getitem__(self, rows: slice) -> QMatrix:
        return QMatrix(self.q[rows], self.scale[rows])

    def __rmatmul__(self, a: np.ndarray) -> np.ndarray:
        """``a (..., K) @ W^T``: the compiled kernels where they load, else ``matmul``."""
        a = np.asarray(a, _F32)
        shape = a.shape
        a2 = np.ascontiguousarray(a.reshape(-1, shape[-1]))
        loops = compiled_loops(self.kernels)
        out = self.matmul(a2) if loops is None else loops.input_gates(self, a2, self.zero)
        return out.reshape(*shape[:-1], out.shape[-1])

    def matmul(self, a: np.ndarray) -> np.ndarray:
        """``a (M, K) @ W^T`` through the exact int8 product: ``(M, R)`` float32."""
        aq, s, z = quantize_rows(a)
        C = intgemm.gemm()(aq, self.qT)  # (M, R) int32, exact
        C -= np.outer(z, self.colsum).astype(np.int32)  # aq - z: the zero point, still exact
        out = C.astype(_F32)
        out *= s[:, None]
        out *= self.scale
        return out


class BMatrix:
    """One weight matrix in bf16 (``dtype="bf16"``): ``a @ m.T ~= a @ W.T`` with ``a`` rounded to
    bf16 and the sum in float32, as ``QMatrix`` (the float cell's expression works on it)."""

    __array_ufunc__ = None
    kernels = "bf16"

    def __init__(self, b: np.ndarray):
        self.b = b  # (R, K) uint16: bf16 bits
        self.bT = np.ascontiguousarray(b.T)  # (K, R): the GEMM's B
        self.zero = np.zeros(b.shape[0], _F32)

    @property
    def T(self) -> BMatrix:
        return self

    def __getitem__(self, rows: slice) -> BMatrix:
        return BMatrix(self.b[rows])

    __rmatmul__ = QMatrix.__rmatmul__

    def matmul(self, a: np.ndarray) -> np.ndarray:
        """``a (M, K) @ W^T`` through the bf16 product: ``(M, R)`` float32."""
        return bf16gemm.gemm()(bf16gemm.to_bf16(a), self.bT)


# ----------------------------------------------------------------------------- one direction


def direction_forward(spec: CellSpec, x, states0, U: QMatrix, W: QMatrix, b_ih, b_hh, mask):
    """One layer, one direction over ``x (T, N, K)``: ``(out (T, N, H), final states)``; the
    loop of ``recurrent.direction_forward`` with quantised products and nothing kept."""
    T, N, K = x.shape
    cell = binding(spec)
    XG = U.matmul(x.reshape(T * N, K)).reshape(T, N, -1)  # U x_t for all t: one product
    XG += b_ih
    states = list(states0)
    out = np.empty((T, N, states[0].shape[1]), _F32)
    for t in range(T):
        new, _ = cell.step(XG[t], states, W, b_hh)  # the float cell's equations, W h quantised
        if mask is not None:  # past a sequence's length: carry the state
            new = [np.where(mask[t], s_new, s) for s_new, s in zip(new, states)]
        states = [np.asarray(s, _F32) for s in new]
        out[t] = states[0]
    if mask is not None:
        out *= mask  # zero output past the length
    return out, states


_LOOPS: dict[str, Any] = {}
_GEMMS = {"int8": intgemm, "bf16": bf16gemm}


def compiled_loops(dtype: str = "int8") -> Any:
    """``backend/int8_loops.py`` (``bf16_loops.py``) where numba imports and that precision's
    GEMM is oneDNN's (the compiled loops call it from compiled code), else None: the reference
    loop above runs."""
    if dtype not in _LOOPS:
        loops = None
        if not _LOOPS.get("off") and find_spec("numba") is not None and _GEMMS[dtype].gemm().name == "onednn":
            try:
                loops = (
                    importlib.import_module("rnnlab.nn.backend.bf16_loops")
                    if dtype == "bf16"
                    else importlib.import_module("rnnlab.nn.backend.int8_loops")
                )
            except ImportError:  # numba installed but broken: the reference loop
                loops = None
        _LOOPS[dtype] = loops
    return _LOOPS[dtype]


def fallback_reason(dtype: str) -> str | None:
    """Why ``dtype``'s products ("int8", "bf16") run on NumPy here (None: oneDNN's run them)."""
    return _GEMMS[dtype].describe()["fallback_reason"]


def use_compiled(enabled: bool | None) -> None:
    """Force the reference loop (False), the compiled one where it loads (True), or choose
    again (None): tests and the benchmark compare them."""
    _LOOPS.clear()
    if enabled is False:
        _LOOPS["off"] = True


# ----------------------------------------------------------------------------- the module


def cell_spec(config: dict) -> CellSpec:
    if config["mode"] == "LSTM":
        return LSTMSpec()
    if config["mode"] == "GRU":
        return GRUSpec(reset_after=bool(config["option"]))
    return RNNSpec(nonlinearity="relu" if config["option"] else "tanh")


class QuantizedRNN(Module):
    """An inference-only LSTM / GRU / RNN with int8 or bf16 weights (``quantize_dynamic`` makes
    one; ``weight_dtype`` says which).

    ``params`` holds PyTorch's names for the float layer's tensors: ``weight_ih_l0`` (int8, or
    bf16's bits as uint16), ``weight_ih_l0.scale`` (int8: float32, per row), the float32
    biases...; the call is the float
    layer's: ``out, h_n = q(x, h0, lengths=)`` (LSTM: ``out, (h_n, c_n) = q(x, (h0, c0))``)."""

    def __init__(self, config: dict, tensors: dict[str, np.ndarray]):
        super().__init__()
        self.config = dict(config)
        self.mode = config["mode"]
        self.input_size, self.hidden_size = config["input_size"], config["hidden_size"]
        self.num_layers, self.batch_first = config["num_layers"], config["batch_first"]
        self.bidirectional, self.bias = config["bidirectional"], config["bias"]
        self.num_directions = 2 if self.bidirectional else 1
        self.dtype, self.dropout = np.dtype(_F32), 0.0  # what it takes and returns
        self.weight_dtype = self.config.setdefault("dtype", "int8")  # what its weights are
        self.spec = cell_spec(config)
        self.training = False
        self.params = dict(tensors)
        self._build()

    def _build(self) -> None:
        p, zero = self.params, np.zeros(GATES[self.mode] * self.hidden_size, _F32)
        self.mats: dict[str, tuple[Any, Any, np.ndarray, np.ndarray]] = {}
        for layer in range(self.num_layers):
            for sfx in suffixes(self.config, layer):
                U, W = (self._matrix(w + sfx) for w in ("weight_ih", "weight_hh"))
                b_ih, b_hh = (p["bias_ih" + sfx], p["bias_hh" + sfx]) if self.bias else (zero, zero)
                self.mats[sfx] = (U, W, b_ih, b_hh)

    def _matrix(self, name: str) -> QMatrix | BMatrix:
        if self.weight_dtype == "bf16":
            return BMatrix(self.params[name])
        return QMatrix(self.params[name], self.params[name + ".scale"])

    def named_parameters(self, prefix: str = ""):
        for name, p in self.params.items():
            yield prefix + name, p, None  # no gradients: inference only

    def train(self, mode: bool = True) -> QuantizedRNN:
        if mode:
            raise RuntimeError("QuantizedRNN is inference-only: train the float layer, then quantise it")
        return self

    def backward(self, *args, **kwargs):
        raise RuntimeError(
            "QuantizedRNN is inference-only (int8 weights have no gradient): train the float "
            "layer and call quantize_dynamic on it again"
        )

    def run_direction(self, sfx: str, x, states0, mask):
        """One direction of one layer: the compiled loop where it loads, else the reference."""
        return self.run_directions([(sfx, x, states0)], mask)[0]

    def run_directions(self, jobs: list, mask) -> list:
        """The directions ``[(suffix, x, states0)]`` of one layer: the compiled loops where they
        load, else the reference loop."""
        loops = compiled_loops(self.weight_dtype)
        full = [(self.spec, x, s0, *self.mats[sfx], mask) for sfx, x, s0 in jobs]
        if loops is not None and loops.supports(self.spec):
            return loops.directions_forward(full)
        return [direction_forward(*job) for job in full]

    def forward(self, x, hx=None, lengths=None, h0=None):
        """``out, h_n`` (LSTM: ``out, (h_n, c_n)``), as the float layer's forward (``h0=``, the
        GRU's and RNN's keyword, is ``hx``)."""
        hx = h0 if hx is None else hx
        given = ([None, None] if hx is None else list(hx)) if self.mode == "LSTM" else [hx]
        x, mask, rev = self._check_input(x, lengths)
        T, N, _ = x.shape
        states0 = [self._check_state(s, N) for s in given]
        finals = [np.empty_like(s) for s in states0]
        layer_in = x
        for layer in range(self.num_layers):
            sfxs, k0 = suffixes(self.config, layer), layer * self.num_directions
            xs = [layer_in, np.ascontiguousarray(take_time(layer_in, rev))][: len(sfxs)]
            jobs = [(sfx, xd, [s[k0 + d] for s in states0]) for d, (sfx, xd) in enumerate(zip(sfxs, xs))]
            outs = []
            for d, (out, states) in enumerate(self.run_directions(jobs, mask)):
                for f, s in zip(finals, states):
                    f[k0 + d] = s
                outs.append(out if d == 0 else take_time(out, rev))
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        out = layer_in.transpose(1, 0, 2) if self.batch_first else layer_in
        return out, ((finals[0], finals[1]) if self.mode == "LSTM" else finals[0])

    def _check_input(self, x, lengths):
        """``x`` time-major, contiguous float32; the mask (T, N, 1) or None; the reversal index."""
        x, lengths, mask = check_input(x, lengths, self.input_size, self.batch_first, _F32, "QuantizedRNN")
        return x, mask, (None if mask is None else reverse_index(x.shape[0], lengths))

    def _check_state(self, s, N):
        shape = (self.num_layers * self.num_directions, N, self.hidden_size)
        if s is None:
            return np.zeros(shape, _F32)
        s = np.asarray(s, _F32)
        if s.shape != shape:
            raise ValueError(f"QuantizedRNN: a state must have shape {shape}, got {s.shape}")
        return s

    def save(self, path) -> str:
        """Write the module as safetensors, atomically: int8 weights, float32 scales and biases,
        the configuration and a SHA-256 of all of it (``quantize_io.pack``); no pickle."""
        return write_tensors(path, quantize_io.pack(self.config, self.params))

    @classmethod
    def load(cls, path) -> QuantizedRNN:
        """Read a file ``save`` wrote, checked (``quantize_io.unpack``: ``ValueError`` naming the
        first problem: not such a file, a digest that does not match, a wrong name, dtype or
        shape, non-finite values, scales <= 0)."""
        config, tensors = quantize_io.unpack(read_tensors(path), os.path.basename(str(path)))
        return cls(config, tensors)


DTYPES = {"int8": "int8", "qint8": "int8", "bf16": "bf16", "bfloat16": "bf16"}


def quantize_dynamic(module: RNNBase, dtype: str = "int8") -> QuantizedRNN:
    """An inference-only copy of ``module`` (an rnnlab ``LSTM``, ``GRU`` or ``RNN``: any layers,
    directions, ``batch_first``) with reduced-precision weights: ``dtype="int8"`` (also "qint8")
    per output row, each product's operand quantised per row at every step; ``dtype="bf16"``
    (also "bfloat16") every weight and operand rounded to bf16, float32 sums (the module
    docstring)."""
    if not isinstance(module, RNNBase) or module.mode not in MODES:
        raise TypeError(f"quantize_dynamic takes an rnnlab LSTM, GRU or RNN, got {type(module).__name__}")
    if dtype not in DTYPES:
        raise ValueError(f"quantize_dynamic: dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    config = {**quantize_io.config_of(module), "dtype": DTYPES[dtype]}
    widest = max(module.input_size, module.hidden_size * (2 if module.bidirectional else 1))
    if config["dtype"] == "int8" and widest > MAX_K:  # |aq Wq^T - z colsum| <= 2 K 255 127 fits int32
        raise ValueError(
            f"quantize_dynamic: a product over {widest} inputs could overflow int32 (at most {MAX_K})"
        )
    tensors: dict[str, np.ndarray] = {}
    for layer in range(module.num_layers):
        for sfx in suffixes(config, layer):
            for w in ("weight_ih", "weight_hh"):
                W = module.params[w + sfx]
                if config["dtype"] == "bf16":
                    tensors[w + sfx] = bf16_weight(W)
                else:
                    tensors[w + sfx], tensors[w + sfx + ".scale"] = quantize_weight(W)
            if module.bias:
                for b in ("bias_ih", "bias_hh"):
                    tensors[b + sfx] = np.array(module.params[b + sfx], _F32)
    return QuantizedRNN(config, tensors)
