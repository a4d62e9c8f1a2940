"""The forecasting network and its lean training loop.

Network (the chapter's section 8, ``V`` the hidden-to-output weights)::

    h_1 .. h_W = RNN(x_1 .. x_W)          LSTM, GRU or Elman RNN from ``rnnlab.nn``  (W, N, H)
    y_hat      = V h_W + b_v               a Linear head on the last step              (N, K)

K = 1 for the recursive strategy, K = horizon for the direct one.

Training: MSE loss, gradients clipped by global norm (the clipped gradients ARE the ones
applied), Adam. At batch 7 the book's recipe runs ~14,000 tiny steps, so the per-step Python
and allocation cost matters: every parameter and gradient of the network is laid out in ONE
flat float32 buffer (the modules' ``params``/``grads`` dicts hold views into it), so zeroing,
clipping and the Adam update are a handful of whole-buffer operations in preallocated scratch.
``FlatAdam`` is ``rnnlab.optim.Adam``'s update (same equations; a test checks it step for
step, equal to float32 rounding) without the per-step temporaries.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from rnnlab.nn import GRU, LSTM, RNN, Linear, MSELoss, Module, inference_mode
from rnnlab.nn import init as nn_init
from rnnlab.optim import clip_grad_norm

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
INITS = nn_init.SCHEMES


class Net(Module):
    """RNN over the window, Linear head ``V`` on the last hidden state."""

    def __init__(self, cell: str, hidden_size: int, num_layers: int, n_out: int,
                 dropout: float = 0.0, init: str = "pytorch", seed=None):
        super().__init__()
        self.rnn = CELLS[cell](1, hidden_size, num_layers, dropout=dropout, dtype=np.float32)
        self.head = Linear(hidden_size, n_out, dtype=np.float32)
        nn_init.apply(self, init, seed)
        self._douts = {}
        self._WN = None

    def forward(self, x):
        """x (W, N, 1) time-major -> (N, K)."""
        self._WN = x.shape[:2]
        out, _ = self.rnn(x)                                 # (W, N, H)
        return self.head(out[-1])                            # (N, K)  V h_W + b_v

    def backward(self, dy):
        """dy (N, K) -> accumulates every gradient; returns nothing (inputs need none)."""
        dlast = self.head.backward(dy)                       # (N, H)  V^T dy
        W, N = self._WN
        dout = self._douts.get((W, N))
        if dout is None:                                     # only the last step feeds the head
            dout = self._douts[(W, N)] = np.zeros((W, N, self.rnn.hidden_size), np.float32)
        dout[-1] = dlast                                     # (W, N, H), zeros before W
        self.rnn.backward(dout)


class FlatParams(Module):
    """All parameters of ``net`` moved into one flat buffer ``P`` (gradients into ``G``)."""

    def __init__(self, net: Module):
        super().__init__()
        named = [(m, k) for m in _walk(net) for k in m.params]
        n = sum(m.params[k].size for m, k in named)
        P, G = np.empty(n, np.float32), np.zeros(n, np.float32)
        off = 0
        for m, k in named:
            p = m.params[k]
            P[off : off + p.size] = p.ravel()
            m.params[k] = P[off : off + p.size].reshape(p.shape)   # a view: updates reach the layer
            m.grads[k] = G[off : off + p.size].reshape(p.shape)
            off += p.size
        self.params = {"flat": P}
        self.grads = {"flat": G}


def _walk(module):
    yield module
    for _, child in module.named_children():
        yield from _walk(child)


def _numba_adam():
    """The whole Adam update as ONE pass over the buffer, compiled by Numba when it is there
    (the optional extra ``rnnlab[fast]``; ``RNNLAB_NO_FUSED=1`` turns it off like the engine's
    fused kernels). Returns None when not available: the NumPy path below is then used."""
    if os.environ.get("RNNLAB_NO_FUSED"):
        return None
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "arcp"})
    def adam_step(P, G, m, v, b1, b2, eps_k, step):   # pragma: no cover - compiled
        for i in range(P.shape[0]):
            g = G[i]
            mi = b1 * m[i] + g                              # m~ = b1 m~ + g
            vi = b2 * v[i] + g * g                          # v~ = b2 v~ + g^2
            m[i] = mi
            v[i] = vi
            P[i] -= step * mi / (np.sqrt(vi) + eps_k)       # p -= step m~ / (sqrt(v~) + eps / k)

    try:
        z = np.zeros(3, np.float32)
        f = np.float32
        adam_step(z.copy(), z, z.copy(), z.copy(), f(0.9), f(0.999), f(1e-8), f(1e-3))
    except Exception:  # noqa: BLE001  any compile failure: use NumPy
        return None
    return adam_step


_ADAM_KERNEL = "unset"


class FlatAdam:
    """Adam (Kingma & Ba 2015) on one flat buffer; the update of ``rnnlab.optim.Adam``::

        g = grad + wd p;   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    computed with the moments kept unnormalised, ``m~ = m / (1 - b1)`` and
    ``v~ = v / (1 - b2)``, which saves three passes over the buffer::

        m~ = b1 m~ + g;   v~ = b2 v~ + g^2;   k = sqrt((1 - b2) / (1 - b2^t))
        p -= [lr (1 - b1) / ((1 - b1^t) k)] * m~ / (sqrt(v~) + eps / k)

    (the same numbers up to float32 rounding; a test checks it against ``rnnlab.optim.Adam``).
    With Numba the update is one compiled pass over the buffer; without it, NumPy walks the
    buffer in chunks that stay in the L2 cache (ten passes per chunk).
    """

    CHUNK = 32768

    def __init__(self, flat: FlatParams, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.P, self.G = flat.params["flat"], flat.grads["flat"]
        self.lr, (self.b1, self.b2), self.eps, self.weight_decay = float(lr), betas, eps, weight_decay
        self.m, self.v = np.zeros_like(self.P), np.zeros_like(self.P)   # m~, v~
        self.tmp = np.empty_like(self.P)
        self.t = 0

    def step(self):
        self.t += 1
        b1, b2 = self.b1, self.b2
        k = math.sqrt((1.0 - b2) / (1.0 - b2 ** self.t))
        eps_k = self.eps / k
        step = self.lr * (1.0 - b1) / ((1.0 - b1 ** self.t) * k)
        if self.weight_decay:
            self.G += self.weight_decay * self.P                     # g = grad + wd p (L2)
        global _ADAM_KERNEL
        if _ADAM_KERNEL == "unset":
            _ADAM_KERNEL = _numba_adam()
        if _ADAM_KERNEL is not None and self.P.dtype == np.float32:
            f = np.float32
            _ADAM_KERNEL(self.P, self.G, self.m, self.v, f(b1), f(b2), f(eps_k), f(step))
            return
        for lo in range(0, len(self.P), self.CHUNK):
            s = slice(lo, lo + self.CHUNK)
            P, g, m, v, tmp = self.P[s], self.G[s], self.m[s], self.v[s], self.tmp[s]
            m *= b1
            m += g                                                   # m~ = b1 m~ + g
            v *= b2
            np.square(g, out=tmp)
            v += tmp                                                 # v~ = b2 v~ + g^2
            np.sqrt(v, out=tmp)
            tmp += eps_k                                             # sqrt(v~) + eps / k
            np.divide(m, tmp, out=tmp)
            tmp *= step
            P -= tmp                                                 # p -= step m~ / (...)


def train(net: Net, X, Y, Xv=None, Yv=None, *, epochs, batch_size, lr, clip, weight_decay=0.0,
          patience=None, shuffle=True, rng=None, progress=None):
    """Fit ``net`` on scaled windows ``X (M, W)`` -> targets ``Y (M, K)``.

    With a validation set, the weights of the epoch with the lowest validation loss are
    restored at the end and training stops after ``patience`` epochs without improvement.
    ``progress``: a callable ``(epoch, train_loss, valid_loss)`` or None.
    Returns the history dict.
    """
    flat = FlatParams(net)
    opt = FlatAdam(flat, lr, weight_decay=weight_decay)
    loss_fn = MSELoss()
    Xt = np.ascontiguousarray(np.asarray(X, np.float32).T[:, :, None])   # (W, M, 1) time-major
    Y = np.asarray(Y, np.float32)                                        # (M, K)
    M = Y.shape[0]
    has_valid = Xv is not None and len(Xv) > 0
    history = {"train_loss": [], "valid_loss": [], "grad_norm": [], "best_epoch": None,
               "stopped_epoch": None, "seconds": 0.0}
    best, best_P, waited = math.inf, None, 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(M) if shuffle else None
        total, norms = 0.0, 0.0
        for start in range(0, M, batch_size):
            if order is None:
                xb, yb = Xt[:, start : start + batch_size], Y[start : start + batch_size]
            else:
                idx = order[start : start + batch_size]
                xb, yb = Xt[:, idx], Y[idx]
            flat.grads["flat"].fill(0.0)
            loss = loss_fn(net(xb), yb)                              # mean (y_hat - y)^2
            net.backward(loss_fn.backward())
            norms += clip_grad_norm(flat, clip) if clip else 0.0      # scales G in place
            opt.step()                                               # ... and G is what Adam reads
            total += loss * len(yb)
        history["train_loss"].append(total / M)
        history["grad_norm"].append(norms / math.ceil(M / batch_size))
        vloss = None
        if has_valid:
            vloss = evaluate_loss(net, Xv, Yv)
            history["valid_loss"].append(vloss)
            if vloss < best:
                best, best_P, waited = vloss, flat.params["flat"].copy(), 0
                history["best_epoch"] = epoch + 1
            else:
                waited += 1
        if progress is not None:
            progress(epoch + 1, total / M, vloss)
        if has_valid and patience is not None and waited >= patience:
            history["stopped_epoch"] = epoch + 1
            break
    if best_P is not None:
        flat.params["flat"][...] = best_P                            # restore the best epoch
    history["seconds"] = time.perf_counter() - t0
    net.eval()
    return history


def predict_scaled(net: Net, X, batch: int = 4096) -> np.ndarray:
    """Scaled windows ``X (M, W)`` -> network outputs ``(M, K)`` (eval mode)."""
    was_training = net.training
    net.eval()
    X = np.asarray(X, np.float32)
    with inference_mode():                 # nothing kept for a backward that never comes
        out = [net(np.ascontiguousarray(X[i : i + batch].T[:, :, None]))
               for i in range(0, len(X), batch)]
    net.train(was_training)
    return np.concatenate(out, axis=0).astype(np.float64)


def evaluate_loss(net: Net, X, Y) -> float:
    d = predict_scaled(net, X) - np.asarray(Y, np.float64)
    return float(np.mean(d * d))
