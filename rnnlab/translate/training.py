"""The training loop: one epoch of teacher-forced updates, and the RNG state of checkpoints.

One update (the yardstick's recipe), in the engine's order zero -> forward -> backward ->
clip -> step::

    L = model(src, lengths, tgt)        mean cross-entropy over the batch's target words
    model.backward()                    every gradient, by hand
    clip_grad_norm(model, clip)         global L2 norm <= clip
    opt.step(zero_grad=True)            Adam, each gradient chunk zeroed right after its use
                                        (the next update's zero, one pass over memory less)

Checkpoints are safetensors (weights, optimiser moments) plus a JSON file (``rnnlab.io``);
nothing is pickled.
"""

from __future__ import annotations

import time

import numpy as np

from rnnlab.errors import UserError
from rnnlab.nn import runtime
from rnnlab.optim import clip_grad_norm
from rnnlab.translate.batching import count_target_tokens, shard_batch


def train_epoch(
    model,
    opt,
    batches,
    order,
    clip=5.0,
    teacher_forcing=1.0,
    deadline=None,
    progress=None,
    on_batch=None,
    world=None,
):
    """One pass over ``batches`` in ``order``. Stops early when ``time.time() > deadline``.

    Returns ``{"loss": mean loss per target word, "tokens", "seconds", "batches", "complete"}``.
    ``progress``: a tqdm bar (updated per batch with loss and target tokens/s) or None.
    ``world``: an MPI world (``rnnlab.distributed``) whose ranks each take their shard of every
    batch (``shard_step``); all ranks then agree on stopping, and the loss is the whole batch's.
    """
    model.train()
    model.zero_grad()
    t0 = time.time()
    total_loss, tokens, n = 0.0, 0, 0
    complete = True
    for j in order:
        src, lengths, tgt = batches[j]
        k = count_target_tokens(tgt)
        if world is None:
            loss, k_mine = model(src, lengths, tgt, teacher_forcing=teacher_forcing), k
            model.backward()
        else:
            loss, k_mine = shard_step(model, world, batches[j], k, teacher_forcing)
        if clip:
            clip_grad_norm([model], clip)
        opt.step(zero_grad=True)  # zeroes the gradients as it goes
        total_loss += loss * k_mine
        tokens += k
        n += 1
        if not np.isfinite(loss):
            raise UserError(f"training diverged: the loss became {loss} at batch {n} (lower --lr, or --clip)")
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / max(time.time() - t0, 1e-9):.0f}")
        if on_batch is not None:
            on_batch(n)
        over = deadline is not None and time.time() > deadline
        if world is not None and deadline is not None:
            over = world.any(over)  # the ranks stop together
        if over:
            complete = len(order) == n
            break
    if world is not None:
        total_loss = world.sum(total_loss)
    return {
        "loss": total_loss / max(tokens, 1),
        "tokens": tokens,
        "seconds": time.time() - t0,
        "batches": n,
        "complete": complete,
    }


def shard_step(model, world, batch, k, teacher_forcing=1.0):
    """This rank's forward and backward on its shard of ``batch`` (``k`` target words in
    all), then the allreduce: every rank holds the whole batch's gradient, as its share
    ``k_r / k`` of the words weights its shard's mean. Returns ``(shard loss, k_r)``."""
    rows = world.shard(len(batch[0]))
    loss, k_mine = 0.0, 0
    if rows.stop > rows.start:  # a batch smaller than the world leaves some ranks empty
        src, lengths, tgt = shard_batch(batch, rows)
        loss = model(src, lengths, tgt, teacher_forcing=teacher_forcing)
        model.backward()
        k_mine = count_target_tokens(tgt)
    world.allreduce_gradients(model, k_mine / k)  # sum_r (k_r / k) g_r
    return loss, k_mine


def one_blas_thread(threads):
    """With threads > 1 rnnlab splits the big GEMMs itself: hold every GEMM library at one
    thread meanwhile, so the two do not oversubscribe the cores."""
    import contextlib

    if not threads or threads < 2:
        return contextlib.nullcontext()
    return runtime.override(threads=1)


# ----------------------------------------------------------------------------- checkpoints


def rng_state(rng) -> dict:
    """A numpy Generator's state as JSON (PCG64's state is a dict of ints)."""
    return rng.bit_generator.state


def set_rng_state(rng, state):
    rng.bit_generator.state = state
