"""The forecasting network and its lean training loop.

Network (the chapter's section 8, ``V`` the hidden-to-output weights)::

    h_1 .. h_W = RNN(x_1 .. x_W)          LSTM, GRU or Elman RNN from ``rnnlab.nn``  (W, N, H)
    y_hat      = V h_W + b_v               a Linear head on the last step              (N, K)

K = 1 for the recursive strategy, K = horizon for the direct one.

Training: the head's loss (MSE for a point forecast, a negative log-likelihood or the pinball
loss for a distribution: ``rnnlab.forecast.estimator.heads``), gradients clipped by global norm (the
clipped gradients ARE the ones applied), Adam; each step zero -> forward -> backward -> clip
-> step. At batch 7 the book's recipe runs ~14,000 tiny steps, so the per-step Python cost
matters: the network's parameters and gradients are moved into one flat buffer each
(``Module.flatten_parameters``), so zeroing, clipping and the Adam update are a few
whole-buffer operations.

Data-parallel (``shards``: an MPI world of K ranks, ``rnnlab.distributed``; or K, the same
arithmetic in one process): rank r takes its contiguous shard of b_r of the batch's B windows,
and with w_r = b_r / B the summed gradient is the full batch's (the loss is a mean)::

    L = sum_r w_r L_r          g = sum_r w_r g_r

then clipping and Adam run identically on every rank. With K = 2 the sum has two terms and is
order-independent, so two ranks equal one process accumulating the two shards, bit for bit.
"""

from __future__ import annotations

import math
import time

import numpy as np

from rnnlab.distributed import shard_bounds
from rnnlab.nn import GRU, LSTM, RNN, Linear, Module, MSELoss, RNNBase, inference_mode
from rnnlab.nn import init as nn_init
from rnnlab.nn.backend import scratch
from rnnlab.optim import Adam, clip_grad_norm

CELLS: dict[str, type[RNNBase]] = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
INITS = nn_init.SCHEMES


class Net(Module):
    """RNN over the window, Linear head ``V`` on the last hidden state."""

    def __init__(
        self,
        cell: str,
        hidden_size: int,
        num_layers: int,
        n_out: int,
        dropout: float = 0.0,
        init: str = "pytorch",
        seed=None,
        input_size: int = 1,
    ):
        super().__init__()
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers, dropout=dropout, dtype=np.float32)
        self.head = Linear(hidden_size, n_out, dtype=np.float32)
        nn_init.apply(self, init, seed)
        self._WN: tuple[int, int] = (0, 0)  # (W, N) of the last forward

    def forward(self, x):
        """x (W, N, F) time-major -> (N, K)."""
        self._WN = x.shape[:2]
        out, _ = self.rnn(x)  # (W, N, H)
        return self.head(out[-1])  # (N, K)  V h_W + b_v

    def backward(self, dy):
        """dy (N, K) -> accumulates every gradient; returns nothing (inputs need none)."""
        dlast = self.head.backward(dy)  # (N, H)  V^T dy
        W, N = self._WN
        dout = scratch.empty((W, N, self.rnn.hidden_size), np.float32)
        dout[:-1] = 0.0  # only the last step feeds the head
        dout[-1] = dlast  # (W, N, H)
        self.rnn.backward(dout)


def train(
    net: Net,
    X,
    Y,
    Xv=None,
    Yv=None,
    *,
    epochs,
    batch_size,
    lr,
    clip,
    weight_decay=0.0,
    patience=None,
    shuffle=True,
    rng=None,
    progress=None,
    loss_fn=None,
    shards=None,
    deadline=None,
):
    """Fit ``net`` on scaled windows ``X (M, W)`` -> targets ``Y (M, K)``.

    With a validation set, the weights of the epoch with the lowest validation loss are
    restored at the end and training stops after ``patience`` epochs without improvement.
    ``progress``: a callable ``(epoch, train_loss, valid_loss)`` or None. ``loss_fn``: of
    outputs against targets (``heads.Head.loss``; default MSE). ``shards``: None, an MPI world or
    an int K, data-parallel over K shards of every batch (module docstring). ``deadline``: a
    ``time.perf_counter()`` after which no further epoch starts (the first always runs).
    Returns the history.
    """
    P, G = net.flatten_parameters()  # one buffer each, views in the layers
    opt = Adam([net], lr, weight_decay=weight_decay)
    loss_fn = MSELoss() if loss_fn is None else loss_fn
    Xt, Y = time_major(X), np.asarray(Y, np.float32)  # (W, M, F), (M, K)
    M = Y.shape[0]
    has_valid = Xv is not None and len(Xv) > 0
    history = _new_history()
    best, best_P, waited = math.inf, None, 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(M) if shuffle else None
        total, norms = _train_epoch(net, opt, loss_fn, Xt, Y, order, batch_size, clip, (shards, G))
        history["train_loss"].append(total / M)
        history["grad_norm"].append(norms / math.ceil(M / batch_size))
        vloss = None if not has_valid else evaluate_loss(net, Xv, Yv, loss_fn)
        if vloss is not None:
            history["valid_loss"].append(vloss)
            best, best_P, waited = (vloss, P.copy(), 0) if vloss < best else (best, best_P, waited + 1)
            history["best_epoch"] = epoch + 1 if waited == 0 else history["best_epoch"]
        if progress is not None:
            progress(epoch + 1, total / M, vloss)
        if _stop(history, epoch + 1, epochs, waited if has_valid else None, patience, deadline):
            break
    if best_P is not None:
        P[...] = best_P  # restore the best epoch
    history["seconds"] = time.perf_counter() - t0
    CLOCK["training"] += history["seconds"]
    net.eval()
    return history


def _stop(history: dict, done: int, epochs: int, waited, patience, deadline) -> bool:
    """Whether training stops after epoch ``done``: early stopping (``waited`` epochs without
    improvement, None without a validation set) or the time budget; says which in ``history``."""
    if waited is not None and patience is not None and waited >= patience:
        history["stopped_epoch"] = done
        return True
    if deadline is not None and time.perf_counter() >= deadline and done < epochs:
        history["stopped_epoch"], history["out_of_time"] = done, True
        return True
    return False


# seconds this process has spent training networks (``train``), sampling their intervals
# (``uncertainty``: calibration and quantiles) and running the statistical classics
# (``evaluation.classical``): a report's phases are differences of it (``since``)
CLOCK = {"training": 0.0, "intervals": 0.0, "classics": 0.0}


def since(start: dict) -> dict:
    """The seconds of each phase of ``CLOCK`` after the snapshot ``start = dict(CLOCK)``."""
    return {k: round(CLOCK[k] - start[k], 3) for k in CLOCK}


def _new_history() -> dict:
    """The history ``train`` fills in: per-epoch losses and gradient norms, early stopping."""
    return {
        "train_loss": [],
        "valid_loss": [],
        "grad_norm": [],
        "best_epoch": None,
        "stopped_epoch": None,
        "seconds": 0.0,
    }


def _train_epoch(net: Net, opt, loss_fn, Xt, Y, order, batch_size, clip, sharding=(None, None)):
    """One pass over the windows ``Xt (W, M, 1)`` -> ``Y (M, K)``, in ``order`` (None: as stored);
    ``sharding = (shards, G)``: data-parallel (``train``) with the flat gradient buffer ``G``.

    Returns ``(total, norms)``: the summed ``loss * batch size`` and the summed pre-clip
    gradient norms (0 when clipping is off).
    """
    shards, G = sharding
    M = Y.shape[0]
    total, norms = 0.0, 0.0
    for start in range(0, M, batch_size):
        if order is None:
            xb, yb = Xt[:, start : start + batch_size], Y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            xb, yb = Xt[:, idx], Y[idx]
        opt.zero_grad()
        if shards is None:
            loss = loss_fn(net(xb), yb)  # mean (y_hat - y)^2, or the distribution's loss
            net.backward(loss_fn.backward())
        else:
            loss = _sharded_step(net, loss_fn, xb, yb, shards, G)
        norms += clip_grad_norm(net, clip) if clip else 0.0  # scales the gradients in place
        opt.step()  # ... and those are what Adam reads
        total += loss * len(yb)
    return total, norms


def _sharded_step(net: Net, loss_fn, xb, yb, shards, G) -> float:
    """Forward and backward of a batch in shards; ``G`` then holds ``sum_r w_r g_r`` and the
    returned loss is ``sum_r w_r L_r`` (``train``'s docstring). ``shards``: an MPI world (this
    rank's shard, then one allreduce) or an int K (every shard here, summed in rank order)."""
    B = len(yb)

    def shard_loss(rank, size):  # L_r, with g_r in G; 0 for an empty shard
        lo, hi = shard_bounds(B, rank, size)
        if hi == lo:
            return 0.0, 0.0
        loss = loss_fn(net(xb[:, lo:hi]), yb[lo:hi])
        net.backward(loss_fn.backward())
        return float(loss), (hi - lo) / B

    if not isinstance(shards, int):  # an MPI world: this rank's shard
        loss, w = shard_loss(shards.rank, shards.size)
        shards.allreduce_gradients(net, w)  # G <- sum_r w_r g_r, on every rank
        return shards.sum(w * loss)
    acc, total = None, 0.0
    for r in range(shards):
        G[...] = 0.0
        loss, w = shard_loss(r, shards)
        G *= w  # w_r g_r, as allreduce_gradients scales it
        acc = G.copy() if acc is None else acc + G
        total += w * loss
    G[...] = acc
    return total


def time_major(X) -> np.ndarray:
    """Windows ``(M, W)`` (one value per step) or ``(M, W, F)`` (F features) -> ``(W, M, F)``
    float32, contiguous: what the recurrent layers read."""
    X = np.asarray(X, np.float32)
    X = X[:, :, None] if X.ndim == 2 else X
    return np.ascontiguousarray(X.transpose(1, 0, 2))


def predict_scaled(net: Net, X, batch: int = 4096) -> np.ndarray:
    """Scaled windows ``X (M, W)`` or ``(M, W, F)`` -> network outputs ``(M, K)`` (eval mode)."""
    was_training = net.training
    net.eval()
    X = np.asarray(X, np.float32)
    with inference_mode():  # nothing kept for a backward that never comes
        out = [net(time_major(X[i : i + batch])) for i in range(0, len(X), batch)]
    net.train(was_training)
    return np.concatenate(out, axis=0).astype(np.float64)


def evaluate_loss(net: Net, X, Y, loss_fn=None) -> float:
    """The loss (default MSE) of ``net``'s outputs on windows ``X`` against targets ``Y``."""
    if loss_fn is None:
        d = predict_scaled(net, X) - np.asarray(Y, np.float64)
        return float(np.mean(d * d))
    return float(loss_fn(predict_scaled(net, X), np.asarray(Y, np.float64)))
