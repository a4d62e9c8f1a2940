"""The training loop's pieces: one epoch of teacher-forced updates, the optimiser, checkpoints.

One update (the yardstick's recipe)::

    L = model(src, lengths, tgt)        mean cross-entropy over the batch's target words
    model.backward()                    every gradient, by hand
    clip_grad_norm(model, clip)         global L2 norm <= clip
    Adam step                           then zero the gradients

Checkpoints are safetensors (weights, optimiser moments) plus a JSON file; nothing is pickled.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from rnnlab.optim import Adam, clip_grad_norm
from rnnlab.translate.batching import count_target_tokens


class ChunkedAdam(Adam):
    """``rnnlab.optim.Adam``'s arithmetic, operation for operation, done in place over chunks
    that fit in cache. The engine's version makes six temporaries the size of every
    parameter per step; for a 15k-word output layer and two embeddings that memory traffic
    costs as much as the matmuls. Same state, same ``state_dict``, bitwise the same result."""

    chunk = 1 << 15

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        dtypes = {p.dtype for p, _ in self.pairs}
        self._tmp = {dt: np.empty(self.chunk, dt) for dt in dtypes}

    def _update(self, k, p, g):
        if self.weight_decay or not (p.flags.c_contiguous and g.flags.c_contiguous):
            return super()._update(k, p, g)
        pf, gf, mf, vf = p.reshape(-1), g.reshape(-1), self.m[k].reshape(-1), self.v[k].reshape(-1)
        step = self.lr / (1.0 - self.b1 ** self.t)
        s2 = np.sqrt(1.0 - self.b2 ** self.t)
        tmp = self._tmp[p.dtype]
        for a in range(0, pf.size, self.chunk):
            b = min(a + self.chunk, pf.size)
            m, v, gg, t = mf[a:b], vf[a:b], gf[a:b], tmp[: b - a]
            m *= self.b1
            np.multiply(gg, 1.0 - self.b1, out=t)
            m += t                                            # m = b1 m + (1 - b1) g
            v *= self.b2
            np.multiply(gg, gg, out=t)
            t *= 1.0 - self.b2
            v += t                                            # v = b2 v + (1 - b2) g^2
            np.sqrt(v, out=t)
            t /= s2
            t += self.eps                                     # sqrt(v_hat) + eps
            np.divide(m, t, out=t)
            t *= step
            pf[a:b] -= t                                      # p -= lr m_hat / (sqrt(v_hat) + eps)


def train_epoch(model, opt, batches, order, clip=5.0, teacher_forcing=1.0, deadline=None,
                progress=None, on_batch=None):
    """One pass over ``batches`` in ``order``. Stops early when ``time.time() > deadline``.

    Returns ``{"loss": mean loss per target word, "tokens", "seconds", "batches", "complete"}``.
    ``progress``: a tqdm bar (updated per batch with loss and target tokens/s) or None.
    """
    model.train()
    t0 = time.time()
    total_loss, tokens, n = 0.0, 0, 0
    complete = True
    for j in order:
        src, lengths, tgt = batches[j]
        loss = model(src, lengths, tgt, teacher_forcing=teacher_forcing)
        model.backward()
        if clip:
            clip_grad_norm([model], clip)
        opt.step()
        model.zero_grad()
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
    return {"loss": total_loss / max(tokens, 1), "tokens": tokens, "seconds": time.time() - t0,
            "batches": n, "complete": complete}


# ----------------------------------------------------------------------------- files


def write_json(path, obj):
    """Write JSON atomically (a temporary file, then a rename): a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def write_tensors(path, tensors):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def read_tensors(path):
    return load_file(str(path))


def rng_state(rng) -> dict:
    """A numpy Generator's state as JSON (PCG64's state is a dict of ints)."""
    return rng.bit_generator.state


def set_rng_state(rng, state):
    rng.bit_generator.state = state
