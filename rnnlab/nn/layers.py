"""Recurrent layers with PyTorch's signatures: ``RNN``, ``LSTM``, ``GRU`` (stacked, bidirectional).

A layer owns its parameters (PyTorch's names and layouts), checks shapes, applies dropout
between layers and reverses the input for the backward direction; the time loop of each layer
and direction is a typed job (``direction.ForwardJob`` / ``BackwardJob``) that
``recurrent.forward`` / ``recurrent.backward`` run, whatever backend runs them. ``step`` /
``step_backward`` (``stepping.py``) advance a unidirectional stack one time step at a time, for
decoders and online inference.
Shapes: T time, N batch, I input, H hidden, D directions (1 or 2), L layers.
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn import recurrent
from rnnlab.nn.direction import BackwardJob, ForwardJob, GRUSpec, LSTMSpec, RNNSpec
from rnnlab.nn.module import Module, is_inference_mode_enabled
from rnnlab.nn.recurrent import reverse_index, take_time
from rnnlab.nn.steps import binding

_SPECS = {"RNN": RNNSpec, "LSTM": LSTMSpec, "GRU": GRUSpec}


def check_input(x, lengths, input_size: int, batch_first: bool, dtype, name: str):
    """A recurrent layer's input ``x`` time-major and contiguous in ``dtype``, its ``lengths``
    (int64, or None when every sequence is whole) and the (T, N, 1) mask of the steps that
    exist (or None); a bad shape or length is a one-line ``ValueError`` naming ``name``."""
    x = np.asarray(x, dtype)
    if x.ndim != 3 or x.shape[2] != input_size:
        order = "(N, T, I)" if batch_first else "(T, N, I)"
        raise ValueError(f"{name}: input must have shape {order} with I={input_size}, got {x.shape}")
    x = np.ascontiguousarray(x.transpose(1, 0, 2) if batch_first else x)
    T, N, _ = x.shape
    if lengths is None:
        return x, None, None
    lengths = np.asarray(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be {N} integers (one per sequence), got {lengths!r}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must lie in [1, {T}], got {lengths.tolist()}")
    mask = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, N, 1)
    if mask.all():
        return x, None, None
    return x, lengths.astype(np.int64), mask


class RNNBase(Module):
    """Stacked, optionally bidirectional recurrent layer with PyTorch's signature.

    ``out, h_n = layer(x, h0=None, lengths=None)`` (LSTM: ``out, (h_n, c_n)``), then
    ``dx, dh0 = layer.backward(dout, dh_n=None)``, which accumulates into ``grads``.
    ``x`` is (T, N, I), or (N, T, I) with ``batch_first``; ``h0`` is (L*D, N, H).
    """

    mode = "RNN"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        dtype=np.float32,
        seed=None,
        **cell_options,
    ):
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = (
            int(input_size),
            int(hidden_size),
            int(num_layers),
        )
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.spec = _SPECS[self.mode](**cell_options)  # the cell, described to the time loop
        self.cell = binding(self.spec)  # its step functions (stepping.StackedCell)
        G, H = self.cell.n_gates, self.hidden_size
        self._zero_bias = np.zeros(G * H, self.dtype)
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else H * self.num_directions
            for sfx in self._suffixes(layer):
                self.params["weight_ih" + sfx] = np.empty((G * H, in_size), self.dtype)
                self.params["weight_hh" + sfx] = np.empty((G * H, H), self.dtype)
                if self.bias:
                    self.params["bias_ih" + sfx] = np.empty(G * H, self.dtype)
                    self.params["bias_hh" + sfx] = np.empty(G * H, self.dtype)
        self._init_grads()
        self.reset_parameters()
        self._cache = None
        self._inferred = False
        self._dh_norms = None

    def backward(self, dout, dfinal=None):  # pragma: no cover - each cell's own (RNN, GRU, LSTM)
        raise NotImplementedError

    def _suffixes(self, layer):
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self):
        """PyTorch's default: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        k = 1.0 / np.sqrt(self.hidden_size)
        for p in self.params.values():
            p[...] = self.rng.uniform(-k, k, p.shape)

    # -- helpers ----------------------------------------------------------------
    def _weights(self, sfx):
        p = self.params
        b_ih = p["bias_ih" + sfx] if self.bias else self._zero_bias
        b_hh = p["bias_hh" + sfx] if self.bias else self._zero_bias
        return p["weight_ih" + sfx], p["weight_hh" + sfx], b_ih, b_hh

    def _check_state(self, s, N, name):
        shape = (self.num_layers * self.num_directions, N, self.hidden_size)
        if s is None:
            return np.zeros(shape, self.dtype)
        s = np.asarray(s, self.dtype)
        if s.shape != shape:
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {shape} "
                f"(num_layers*num_directions, batch, hidden_size), got {s.shape}"
            )
        return s

    def _check_input(self, x, lengths):
        return check_input(x, lengths, self.input_size, self.batch_first, self.dtype, type(self).__name__)

    # -- forward / backward -----------------------------------------------------------
    def _forward(self, x, states0, lengths):
        self._cache = None  # frees the last pass's buffers for reuse (backend/scratch.py)
        infer = is_inference_mode_enabled()  # keep nothing for backward
        x, lengths, mask = self._check_input(x, lengths)
        T, N, _ = x.shape
        states0 = [self._check_state(s, N, n) for s, n in zip(states0, ("h0", "c0"))]
        rev = reverse_index(T, lengths)
        layer_in = x
        caches, finals = [], [np.empty_like(s) for s in states0]
        for layer in range(self.num_layers):
            drop = None
            if layer > 0 and self.training and self.dropout > 0:
                drop = (self.rng.random(layer_in.shape) >= self.dropout) / (1.0 - self.dropout)
                layer_in = layer_in * drop.astype(self.dtype)
            outs, dir_caches, jobs = [], [], []
            for d, sfx in enumerate(self._suffixes(layer)):
                U, W, b_ih, b_hh = self._weights(sfx)
                k = layer * self.num_directions + d
                xin = layer_in if d == 0 else take_time(layer_in, rev)
                s0 = [s[k] for s in states0]
                jobs.append(ForwardJob(self.spec, xin, s0, U, W, b_ih, b_hh, mask, keep=not infer))
            for d, (out, cache) in enumerate(recurrent.forward(jobs)):  # the directions
                k = layer * self.num_directions + d
                for s, S in zip(finals, cache.S):
                    s[k] = S[T]  # the state after the last real step
                outs.append(out if d == 0 else take_time(out, rev))
                if not infer:
                    dir_caches.append(cache)
            caches.append((drop, dir_caches))
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        self._cache = None if infer else (caches, rev, T, N)
        self._inferred = infer
        out = layer_in.transpose(1, 0, 2) if self.batch_first else layer_in
        return out, finals

    def _backward(self, dout, dfinals):
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before forward"
                + (
                    " (the last forward ran under inference_mode, which keeps nothing for backward)"
                    if self._inferred
                    else ""
                )
            )
        caches, rev, T, N = self._cache
        dout = np.asarray(dout, self.dtype)
        if self.batch_first:
            dout = dout.transpose(1, 0, 2)
        expected = (T, N, self.hidden_size * self.num_directions)
        if dout.shape != expected:
            raise ValueError(
                f"{type(self).__name__}.backward: dout must have shape {expected} "
                f"(time-major), got {dout.shape}"
            )
        dfinals = [self._check_state(s, N, n) for s, n in zip(dfinals, ("dh_n", "dc_n"))]
        dstates0 = [np.empty_like(s) for s in dfinals]
        H = self.hidden_size
        self._dh_norms = {}
        for layer in range(self.num_layers - 1, -1, -1):
            drop, dir_caches = caches[layer]
            dx_sum, jobs = None, []
            for d, sfx in enumerate(self._suffixes(layer)):
                U, W, _, _ = self._weights(sfx)
                k = layer * self.num_directions + d
                dout_d = dout[:, :, d * H : (d + 1) * H]
                if d == 1:
                    dout_d = take_time(dout_d, rev)
                jobs.append(BackwardJob(self.spec, dout_d, [s[k] for s in dfinals], dir_caches[d], U, W))
            for d, (sfx, grads) in enumerate(zip(self._suffixes(layer), recurrent.backward(jobs))):
                k = layer * self.num_directions + d
                dx, sq = grads.dx, grads.dh_sq
                if d == 1:
                    dx, sq = take_time(dx, rev), take_time(sq, rev)  # per-sequence time order
                for s, v in zip(dstates0, grads.dstates0):
                    s[k] = v
                g = self.grads
                g["weight_ih" + sfx] += grads.dU
                g["weight_hh" + sfx] += grads.dW
                if self.bias:
                    g["bias_ih" + sfx] += grads.db_ih
                    g["bias_hh" + sfx] += grads.db_hh
                self._dh_norms[(layer, d)] = np.sqrt(sq.sum(1))
                dx_sum = dx if dx_sum is None else dx_sum + dx
            dout = dx_sum if drop is None else dx_sum * drop
        dx = dout.transpose(1, 0, 2) if self.batch_first else dout
        return dx, dstates0

    # -- tools for learners ------------------------------------------------------------
    def hidden_grad_norms(self, layer=0, direction=0):
        """``||dL/dh_t||`` for every step t (time order) from the last ``backward``: (T,)."""
        if not self._dh_norms:
            raise RuntimeError("hidden_grad_norms needs a backward pass first")
        return self._dh_norms[(layer, direction)].copy()

    def gate_trace(self, layer=0, direction=0):
        """Per-step gate activations of the last forward, each (T, N, H) in time order.

        LSTM: ``i, f, g, o, c``; GRU: ``r, z, n``; RNN: ``h``. Steps past a sequence's
        length (``lengths=``) are NaN.
        """
        if self._cache is None:
            raise RuntimeError("gate_trace needs a forward pass first (outside inference_mode)")
        caches, rev, T, N = self._cache
        cache = caches[layer][1][direction]
        trace = self.cell.trace(cache)
        trace = {k: (take_time(v, rev) if direction == 1 else v).copy() for k, v in trace.items()}
        if cache.mask is not None:  # past a sequence's length: no value
            for v in trace.values():
                v[~np.broadcast_to(cache.mask, v.shape)] = np.nan
        return trace


class RNN(RNNBase):
    """Elman RNN, ``h_t = tanh(U x_t + b_ih + W h_{t-1} + b_hh)`` (or relu)."""

    mode = "RNN"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        dtype=np.float32,
        seed=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            seed,
            nonlinearity=nonlinearity,
        )

    def forward(self, x, h0=None, lengths=None):
        out, (h_n,) = self._forward(x, [h0], lengths)
        return out, h_n

    def backward(self, dout, dh_n=None):
        dx, (dh0,) = self._backward(dout, [dh_n])
        return dx, dh0


class GRU(RNNBase):
    """GRU; ``reset_after=True`` is PyTorch's formula, ``False`` the chapter's."""

    mode = "GRU"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        dtype=np.float32,
        seed=None,
        reset_after=True,
    ):
        self.reset_after = bool(reset_after)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            seed,
            reset_after=self.reset_after,
        )

    def forward(self, x, h0=None, lengths=None):
        out, (h_n,) = self._forward(x, [h0], lengths)
        return out, h_n

    def backward(self, dout, dh_n=None):
        dx, (dh0,) = self._backward(dout, [dh_n])
        return dx, dh0


class LSTM(RNNBase):
    """LSTM: ``out, (h_n, c_n) = lstm(x, (h0, c0))``, then
    ``dx, (dh0, dc0) = lstm.backward(dout, (dh_n, dc_n))``."""

    mode = "LSTM"

    def forward(self, x, hx=None, lengths=None):
        h0, c0 = (None, None) if hx is None else hx
        out, (h_n, c_n) = self._forward(x, [h0, c0], lengths)
        return out, (h_n, c_n)

    def backward(self, dout, dhx=None):
        dh_n, dc_n = (None, None) if dhx is None else dhx
        dx, (dh0, dc0) = self._backward(dout, [dh_n, dc_n])
        return dx, (dh0, dc0)
