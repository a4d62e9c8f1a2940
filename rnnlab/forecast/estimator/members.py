"""The ensemble's networks: each trained from its own seed, spread over MPI ranks, shrunk.

Network k of a ``Forecaster`` is initialised and shuffled from ``seed + k`` and trained on the
pooled windows, early-stopped on the validation slice (``train.train``). Under MPI
(docs/DISTRIBUTED.md) the networks are independent, so with ``parallel="members"`` rank r
trains networks r, r + K, ... and every rank then receives the others' weights, history and
shrink (bit for bit one process's); with ``parallel="data"`` every rank trains every network on
its shard of every batch, the gradients summed (``train._sharded_step``).

The shrink factor of a network (``fit_shrink``) scales its predicted change towards "no change"
by the least-squares factor on the validation slice::

    alpha = argmin_a sum (y - s0 - a (s_hat - s0))^2,   clipped to [0, 1]
"""

from __future__ import annotations

import time

import numpy as np

from rnnlab import distributed
from rnnlab.errors import UserError
from rnnlab.forecast.estimator.train import Net, predict_scaled, train


def train_all(f, data, pooled, v_inputs, v_nu, progress) -> tuple[list, list, list]:
    """``(nets, histories, shrinks)`` of ``f``'s ensemble on ``data = (X, Y, X_valid, Y_valid)``
    (``pooled``: the pooled windows, for the shrink's "no change"), as the module says."""
    world = distributed.world()
    data_parallel = f.parallel == "data" and world.size > 1
    n_valid = pooled.n_valid
    deadline = None if f.time_budget is None else time.perf_counter() + 60.0 * f.time_budget
    nets, histories, shrinks = [], [], []
    for k in range(f.ensemble):
        mine = None
        if data_parallel or k % world.size == world.rank:
            shards = world if data_parallel else None
            net, history = f._train_member(k, data, n_valid, progress, shards, deadline)
            shrink = 1.0
            if f.shrink and n_valid:
                shrink = fit_shrink(f, net, v_inputs, v_nu, pooled.Y_val, pooled.s0_val)
            mine = (net, history, shrink)
        shared = mine if data_parallel else share_member(f, world, k, mine)
        net, history, shrink = shared  # type: ignore[misc]  # set on every rank by now
        nets.append(net)
        histories.append(history)
        shrinks.append(shrink)
    return nets, histories, shrinks


def train_member(f, k, data, n_valid, progress, shards=None, deadline=None):
    """Network ``k`` of ``f``'s ensemble (seeds from ``seed + k``: initialisation, shuffling),
    trained on ``data = (X, Y, X_valid, Y_valid)``, early-stopped on the validation part;
    ``shards``: data-parallel, ``deadline``: the time budget's end (``train.train``).
    Returns ``(net, history)``."""
    seeds = np.random.SeedSequence(f.seed + k).spawn(2)
    net = Net(
        f.cell,
        f.hidden_size,
        f.num_layers,
        f._n_out * f.head_.P,
        f.dropout,
        f.init,
        np.random.default_rng(seeds[0]),
        f._input_size,
    )
    report = None if progress is None else (lambda *a, k=k: progress(k, *a))
    history = train(
        net,
        *data,
        epochs=epochs_of(f, k, len(data[0])),
        batch_size=f.batch_size,
        lr=f.lr,
        clip=f.clip,
        weight_decay=f.weight_decay,
        patience=budget(f, f.patience, len(data[0]), 10) if n_valid else None,
        shuffle=f.shuffle,
        rng=np.random.default_rng(seeds[1]),
        progress=report,
        loss_fn=f.head_.loss(f._n_out),
        shards=shards,
        deadline=deadline,
    )
    if not all(np.isfinite(v).all() for v in net.state_dict().values()):
        raise UserError(
            f"training diverged: network {k + 1}'s weights became NaN or infinite "
            f"(lower --lr, or clip the gradients with --clip)"
        )
    return net, history


def epochs_of(f, k: int, n_windows: int) -> int:
    """Network ``k``'s epochs: set one by one by a refit (``future.refit``: the epochs its
    backtest found), else ``epochs`` raised to ``min_updates`` (``budget``)."""
    fixed = getattr(f, "member_epochs_", None)
    return int(fixed[k]) if fixed else budget(f, f.epochs, n_windows)


def budget(f, epochs: int, n_windows: int, per: int = 1) -> int:
    """``epochs`` (or patience), raised so that they hold ``min_updates / per`` optimiser
    steps: a short series has few batches an epoch and is undertrained by the epochs alone
    (lynx: docs/MEASUREMENTS.md, "Why the forecaster chooses as it does")."""
    per_epoch = max(1, -(-n_windows // f.batch_size))
    return max(int(epochs), -(-int(f.min_updates) // (per * per_epoch)))


def share_member(f, world, k, mine):
    """Member ``k`` on every rank: ``mine`` where this rank trained it, else its weights,
    history and shrink as its rank sends them (a world of one: ``mine`` itself)."""
    if world.size == 1:
        return mine
    owner = k % world.size
    sent = world.bcast(None if mine is None else (mine[0].state_dict(), mine[1], mine[2]), root=owner)
    if mine is not None:
        return mine
    net = f._empty_net()
    net.load_state_dict(sent[0])
    return net, sent[1], sent[2]


def fit_shrink(f, net, inputs, nu, Yv, s0) -> float:
    """alpha = argmin sum (y - s0 - alpha (s_hat - s0))^2 over the validation slice, in [0, 1];
    ``s0 (M, 1)``: "no change" in each window's scaled units."""
    loc = nu * f.head_.location(predict_scaled(net, inputs), f._n_out)  # (M, K)
    d_hat = loc - s0  # (M, K) predicted change
    d = Yv - s0  # (M, K) actual change
    denom = float(np.sum(d_hat * d_hat))
    return float(np.clip(np.sum(d * d_hat) / denom, 0.0, 1.0)) if denom > 0 else 0.0
