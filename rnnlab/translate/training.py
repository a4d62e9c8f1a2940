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

from rnnlab.optim import clip_grad_norm
from rnnlab.translate.batching import count_target_tokens


def train_epoch(
    model, opt, batches, order, clip=5.0, teacher_forcing=1.0, deadline=None, progress=None, on_batch=None
):
    """One pass over ``batches`` in ``order``. Stops early when ``time.time() > deadline``.

    Returns ``{"loss": mean loss per target word, "tokens", "seconds", "batches", "complete"}``.
    ``progress``: a tqdm bar (updated per batch with loss and target tokens/s) or None.
    """
    model.train()
    model.zero_grad()
    t0 = time.time()
    total_loss, tokens, n = 0.0, 0, 0
    complete = True
    for j in order:
        src, lengths, tgt = batches[j]
        loss = model(src, lengths, tgt, teacher_forcing=teacher_forcing)
        model.backward()
        if clip:
            clip_grad_norm([model], clip)
        opt.step(zero_grad=True)  # zeroes the gradients as it goes
        k = count_target_tokens(tgt)
        total_loss += loss * k
        tokens += k
        n += 1
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at batch {n}: lower the learning rate")
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / max(time.time() - t0, 1e-9):.0f}")
        if on_batch is not None:
            on_batch(n)
        if deadline is not None and time.time() > deadline:
            complete = len(order) == n
            break
    return {
        "loss": total_loss / max(tokens, 1),
        "tokens": tokens,
        "seconds": time.time() - t0,
        "batches": n,
        "complete": complete,
    }


# ----------------------------------------------------------------------------- checkpoints


def rng_state(rng) -> dict:
    """A numpy Generator's state as JSON (PCG64's state is a dict of ints)."""
    return rng.bit_generator.state


def set_rng_state(rng, state):
    rng.bit_generator.state = state
