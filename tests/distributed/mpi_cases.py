"""Programs the tests in this folder run under ``mpiexec -n 2`` (``python mpi_cases.py CASE``).

Rank 0 prints one JSON line of results; the pytest side checks them. Every case trains the
same small model three ways from the same initial weights, for ``STEPS`` Adam steps on a global
batch of ``B`` = 7 rows (not divisible by 2: the shards are 4 and 3 rows):

    dist   K ranks, each its shard, gradients weighted b_r / B and allreduced (rnnlab.distributed)
    accum  rank 0 alone, gradient accumulation over the same two shards (w_0 g_0 + w_1 g_1)
    whole  rank 0 alone, the whole batch at once
"""

from __future__ import annotations

import json
import sys

import numpy as np

from rnnlab import distributed
from rnnlab.nn import LSTM, Linear, Module, MSELoss
from rnnlab.optim import Adam, clip_grad_norm

B, T, I, H, K_OUT, STEPS = 7, 3, 4, 5, 2, 6


class Tiny(Module):
    """LSTM over (T, N, I), Linear head on the last step, MSE loss."""

    def __init__(self, dtype, seed):
        super().__init__()
        self.rnn = LSTM(I, H, 2, dtype=dtype, seed=seed)
        self.head = Linear(H, K_OUT, dtype=dtype, seed=seed + 1)

    def loss(self, x, y):
        self._out, _ = self.rnn(x)  # (T, N, H)
        pred = self.head(self._out[-1])  # (N, K_OUT)
        self._mse = MSELoss()
        return self._mse(pred, y)

    def backward(self):
        dlast = self.head.backward(self._mse.backward())  # (N, H)
        dout = np.zeros_like(self._out)
        dout[-1] = dlast
        self.rnn.backward(dout)


def data(dtype, step):
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((T, B, I)).astype(dtype), rng.standard_normal((B, K_OUT)).astype(dtype)


def make(dtype, flat, seed):
    m = Tiny(dtype, seed)
    if flat:
        m.flatten_parameters()
    return m, Adam([m], lr=1e-2)


def step(m, opt, grads_fn, x, y):
    opt.zero_grad()
    grads_fn(x, y)
    clip_grad_norm([m], 1.0)  # clipped on every rank alike, after the allreduce
    opt.step()


def train_dist(w, dtype, flat):
    seed = 1 + 1000 * w.rank  # different on every rank: the broadcast must make them equal
    m, opt = make(dtype, flat, seed)
    w.broadcast_parameters(m)
    for s in range(STEPS):
        x, y = data(dtype, s)

        def grads(x, y):
            sl = w.shard(B)
            m.loss(x[:, sl], y[sl])
            m.backward()
            w.allreduce_gradients(m, (sl.stop - sl.start) / B)

        step(m, opt, grads, x, y)
    return m


def train_accum(dtype, flat, K):
    m, opt = make(dtype, flat, 1)
    for s in range(STEPS):
        x, y = data(dtype, s)

        def grads(x, y):
            total = None
            for r in range(K):
                lo, hi = distributed.shard_bounds(B, r, K)
                m.zero_grad()
                m.loss(x[:, lo:hi], y[lo:hi])
                m.backward()
                part = []
                for _, _, g in m.named_parameters():
                    g *= (hi - lo) / B  # w_r g_r, as allreduce_gradients scales its input
                    part.append(g.copy())
                total = part if total is None else [a + b for a, b in zip(total, part)]
            for (_, _, g), t in zip(m.named_parameters(), total):
                g[...] = t

        step(m, opt, grads, x, y)
    return m


def train_whole(dtype, flat):
    m, opt = make(dtype, flat, 1)
    for s in range(STEPS):
        x, y = data(dtype, s)

        def grads(x, y):
            m.loss(x, y)
            m.backward()

        step(m, opt, grads, x, y)
    return m


def max_diffs(a, b):
    """(max abs difference, max abs difference / max abs value) over all parameters."""
    pa = np.concatenate([p.ravel().astype(np.float64) for _, p, _ in a.named_parameters()])
    pb = np.concatenate([p.ravel().astype(np.float64) for _, p, _ in b.named_parameters()])
    d = float(np.max(np.abs(pa - pb)))
    return d, d / float(np.max(np.abs(pb)))


def case_exact():
    w = distributed.world()
    out = {"size": w.size, "rank_hashes": {}}
    for dtype in ("float64", "float32"):
        for flat in (True, False):
            dist = train_dist(w, np.dtype(dtype), flat)
            h = w.check_same_parameters(dist)
            hashes = w.comm.allgather(h) if w.comm is not None else [h]
            if w.is_root:
                key = f"{dtype}-{'flat' if flat else 'tensors'}"
                accum = train_accum(np.dtype(dtype), flat, w.size)
                whole = train_whole(np.dtype(dtype), flat)
                out[key] = {
                    "accum": max_diffs(dist, accum),
                    "whole": max_diffs(dist, whole),
                    "accum_bitwise": distributed.parameter_hash(dist) == distributed.parameter_hash(accum),
                    "moved": max_diffs(dist, make(np.dtype(dtype), flat, 1)[0])[0],
                }
                out["rank_hashes"][key] = hashes
    if w.is_root:
        print(json.dumps(out), flush=True)


def case_fault():
    """Rank 1 raises before a collective that rank 0 is already waiting in."""
    with distributed.abort_on_error("mpi_cases"):
        w = distributed.world()
        m, _ = make(np.dtype("float64"), True, 1)
        if w.rank == 1:
            raise ValueError("deliberate failure")
        w.broadcast_parameters(m)
        w.allreduce_gradients(m)  # rank 0 would wait here for ever without the abort
    print(f"rank {w.rank} got past the collectives", flush=True)  # must never be printed


def case_killed():
    """Rank 1 dies by SIGKILL (no Python left to report it): the launcher must end the job."""
    import os
    import signal

    w = distributed.world()
    if w.rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    w.allreduce_gradients(make(np.dtype("float64"), True, 1)[0])
    print(f"rank {w.rank} got past the collectives", flush=True)  # must never be printed


if __name__ == "__main__":
    {"exact": case_exact, "fault": case_fault, "killed": case_killed}[sys.argv[1]]()
