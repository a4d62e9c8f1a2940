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
from rnnlab.optim.optimizers import adam_update_
from rnnlab.translate.batching import count_target_tokens


class ChunkedAdam(Adam):
    """``rnnlab.optim.Adam``'s update, operation for operation, done in place over chunks that
    fit in cache, optionally on several threads (numpy releases the GIL in its loops).

    The engine's Adam makes the same passes over whole parameters; the output layer and the
    two embeddings are 10M of the 11.6M numbers of the yardstick's model, so a pass streams
    them through memory, while a 32k chunk stays in cache for all 13 passes (36 ms instead of
    ~53 ms a step here). Same state and ``state_dict``; the same parameters as the engine's
    (the tests check float64 bitwise, float32 to rounding) whatever ``threads`` is.
    ``step(zero_grad=True)`` also zeroes each gradient chunk once it is used (one pass less).
    """

    chunk = 1 << 15

    def __init__(self, modules, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, threads=1):
        super().__init__(modules, lr, betas, eps, weight_decay)
        self.threads = max(1, int(threads))
        work = [(k, a, min(a + self.chunk, p.size)) for k, (p, _) in enumerate(self.pairs)
                for a in range(0, p.size, self.chunk)]
        share = -(-len(work) // self.threads)
        self._groups = [work[i : i + share] for i in range(0, len(work), share)]
        self._tmp = [{} for _ in self._groups]                # per thread: dtype -> scratch chunk
        self._fast = not weight_decay and all(p.flags.c_contiguous and g.flags.c_contiguous
                                              and p.dtype == g.dtype for p, g in self.pairs)
        self._pool = None
        if self.threads > 1 and len(self._groups) > 1:
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(len(self._groups), thread_name_prefix="adam")

    def step(self, zero_grad=False):
        if not self._fast:
            super().step()
            if zero_grad:
                self.zero_grad()
            return
        self.t += 1
        step = self.lr / (1.0 - self.b1 ** self.t)
        s2 = float(np.sqrt(1.0 - self.b2 ** self.t))          # Python floats keep the dtype
        if self._pool is None:
            for group, tmp in zip(self._groups, self._tmp):
                self._run(group, tmp, step, s2, zero_grad)
        else:
            jobs = [self._pool.submit(self._run, group, tmp, step, s2, zero_grad)
                    for group, tmp in zip(self._groups, self._tmp)]
            for j in jobs:
                j.result()

    def _run(self, group, tmp, step, s2, zero_grad):
        for k, a, b in group:
            p, g = self.pairs[k]
            pf, gf = p.reshape(-1)[a:b], g.reshape(-1)[a:b]
            m, v = self.m[k].reshape(-1)[a:b], self.v[k].reshape(-1)[a:b]
            buf = tmp.get(p.dtype)
            if buf is None:
                buf = tmp[p.dtype] = np.empty(self.chunk, p.dtype)
            adam_update_(pf, gf, m, v, buf[: b - a], self.b1, self.b2, self.eps, step, s2)
            if zero_grad:
                gf.fill(0.0)


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
        if isinstance(opt, ChunkedAdam):
            opt.step(zero_grad=True)                          # zeroes the gradients as it goes
        else:
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
    save_file({k: np.require(v, requirements="C") for k, v in tensors.items()}, str(tmp))  # 0-d stays 0-d
    os.replace(tmp, path)


def read_tensors(path):
    return load_file(str(path))


def rng_state(rng) -> dict:
    """A numpy Generator's state as JSON (PCG64's state is a dict of ints)."""
    return rng.bit_generator.state


def set_rng_state(rng, state):
    rng.bit_generator.state = state
