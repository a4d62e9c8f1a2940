"""One-step cells with PyTorch's signatures: ``RNNCell``, ``LSTMCell``, ``GRUCell``.

``h = cell(x, h)`` (LSTM: ``h, c = cell(x, (h, c))``) then ``dx, dh_prev = cell.backward(dh)``
(LSTM: ``dx, (dh_prev, dc_prev) = cell.backward(dh, dc)``). They call the same step
functions as the layers. Only the cache of the *last* call is kept, so ``backward`` inverts that
call; to backpropagate through a loop you step by hand, use the pure ``*_step_forward`` /
``*_step_backward`` functions of ``rnn.py``, ``lstm.py``, ``gru.py`` (they return their caches),
or a layer (``LSTM`` etc.), which runs the loop for you.
Parameters: ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh``.
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn import gru, lstm, rnn
from rnnlab.nn.module import Module


class _CellBase(Module):
    n_gates = 1

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bool(bias)
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        G, H = self.n_gates, self.hidden_size
        k = 1.0 / np.sqrt(H)
        self.params["weight_ih"] = self.rng.uniform(-k, k, (G * H, self.input_size)).astype(self.dtype)
        self.params["weight_hh"] = self.rng.uniform(-k, k, (G * H, H)).astype(self.dtype)
        if self.bias:
            self.params["bias_ih"] = self.rng.uniform(-k, k, G * H).astype(self.dtype)
            self.params["bias_hh"] = self.rng.uniform(-k, k, G * H).astype(self.dtype)
        self._init_grads()
        self._zero = np.zeros(G * H, self.dtype)
        self._last = None

    def _prepare(self, x, state):
        x = np.asarray(x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input must have shape (N, {self.input_size}), got {x.shape}"
            )
        N = x.shape[0]
        state = (
            np.zeros((N, self.hidden_size), self.dtype) if state is None else np.asarray(state, self.dtype)
        )
        if state.shape != (N, self.hidden_size):
            raise ValueError(
                f"{type(self).__name__}: state must have shape {(N, self.hidden_size)}, got {state.shape}"
            )
        b_ih = self.params["bias_ih"] if self.bias else self._zero
        b_hh = self.params["bias_hh"] if self.bias else self._zero
        xg = x @ self.params["weight_ih"].T + b_ih  # (N, G*H) U x + b_ih
        return x, state, xg, b_hh

    def _accumulate(self, x, h_prev, dxg, dhg, dW=None):
        g = self.grads
        g["weight_ih"] += dxg.T @ x  # dU = dxg^T x
        g["weight_hh"] += dhg.T @ h_prev if dW is None else dW  # dW = dhg^T h_prev
        if self.bias:
            g["bias_ih"] += dxg.sum(0)
            g["bias_hh"] += dhg.sum(0)
        return dxg @ self.params["weight_ih"]  # dx = U^T dxg

    def _need_forward(self):
        if self._last is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._last


class RNNCell(_CellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float32, seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, dtype, seed)

    def forward(self, x, h=None):
        x, h, xg, b_hh = self._prepare(x, h)
        h_new, cache = rnn.rnn_step_forward(xg, h, self.params["weight_hh"], b_hh, self.nonlinearity)
        self._last = (x, cache)
        return h_new

    def backward(self, dh):
        x, cache = self._need_forward()
        da, dh_prev = rnn.rnn_step_backward(
            np.asarray(dh, self.dtype), cache, self.params["weight_hh"], self.nonlinearity
        )
        return self._accumulate(x, cache.h_prev, da, da), dh_prev


class LSTMCell(_CellBase):
    n_gates = 4

    def forward(self, x, hx=None):
        h, c = (None, None) if hx is None else hx
        x, h, xg, b_hh = self._prepare(x, h)
        _, c, _, _ = self._prepare(x, c)
        h_new, c_new, cache = lstm.lstm_step_forward(xg, h, c, self.params["weight_hh"], b_hh)
        self._last = (x, cache)
        return h_new, c_new

    def backward(self, dh, dc=None):
        x, cache = self._need_forward()
        dh = np.asarray(dh, self.dtype)
        dc = np.zeros_like(dh) if dc is None else np.asarray(dc, self.dtype)
        da, dh_prev, dc_prev = lstm.lstm_step_backward(dh, dc, cache, self.params["weight_hh"])
        return self._accumulate(x, cache.h_prev, da, da), (dh_prev, dc_prev)


class GRUCell(_CellBase):
    n_gates = 3

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None, reset_after=True):
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, bias, dtype, seed)

    def forward(self, x, h=None):
        x, h, xg, b_hh = self._prepare(x, h)
        h_new, cache = gru.gru_step_forward(xg, h, self.params["weight_hh"], b_hh, self.reset_after)
        self._last = (x, cache)
        return h_new

    def backward(self, dh):
        x, cache = self._need_forward()
        W = self.params["weight_hh"]
        dxg, dhg, dh_prev = gru.gru_step_backward(np.asarray(dh, self.dtype), cache, W, self.reset_after)
        dW = None
        if not self.reset_after:
            H = self.hidden_size
            dW = np.concatenate([dhg[:, : 2 * H].T @ cache.h_prev, dhg[:, 2 * H :].T @ cache.hn])
        return self._accumulate(x, cache.h_prev, dxg, dhg, dW), dh_prev
