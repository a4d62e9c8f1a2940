"""The model both experiments train: one recurrent layer and a linear read-out V.

    h_1 .. h_T = cell(x_1 .. x_T)             RNN, LSTM or GRU, (T, N, H)
    y_hat_t    = V h_t + b_V                  only on the last ``n_out`` steps, (n_out, N, O)

The adding problem reads out once (``n_out = 1``, the loss is on h_T only); the copy task
reads out on its K recall steps. Backward sends ``dy_hat`` through V into those steps of
``dout`` (zero elsewhere) and then through the recurrent layer.
"""

from __future__ import annotations

import numpy as np

from rnnlab import nn
from rnnlab.nn import init

CELLS = ("rnn", "lstm", "gru")
_LAYERS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceModel(nn.Module):
    """``cell`` layer of ``hidden_size`` units and a Linear read-out on the last ``n_out`` steps."""

    def __init__(self, cell, input_size, hidden_size, output_size, n_out=1, seed=0, dtype=np.float32):
        super().__init__()
        if cell not in _LAYERS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        self.cell, self.n_out = cell, int(n_out)
        self.args = (cell, input_size, hidden_size, output_size, self.n_out)
        self.rnn = _LAYERS[cell](input_size, hidden_size, seed=seed, dtype=dtype)
        # orthogonal W_k, Xavier U_k, zero biases, LSTM forget bias b_f = 1 (Gers et al. 2000):
        # the LSTM starts out remembering; every cell gets the same scheme
        init.apply(self.rnn, "orthogonal", seed)
        self.init = "orthogonal"
        self.head = nn.Linear(hidden_size, output_size, seed=seed + 1, dtype=dtype)  # V, b_V
        self._shape: tuple[int, ...] = ()  # (T, N, H) of the last forward

    def astype(self, dtype):
        """A copy of this model with every parameter in ``dtype`` (e.g. float64 for probing)."""
        twin = SequenceModel(*self.args, dtype=dtype)
        twin.load_state_dict(self.state_dict())
        return twin

    def forward(self, x):
        """x (T, N, I) -> y_hat (n_out, N, O)."""
        out, _ = self.rnn(x)  # (T, N, H)
        self._shape = out.shape
        return self.head(out[-self.n_out :])  # (n_out, N, O)  V h_t + b_V

    def backward(self, dy):
        """dy (n_out, N, O): accumulate every gradient; the read-out steps get V^T dy."""
        dout = np.zeros(self._shape, self.rnn.dtype)  # (T, N, H)  no loss on other steps
        dout[-self.n_out :] = self.head.backward(dy)  # dh_t = V^T dy_t
        self.rnn.backward(dout)
