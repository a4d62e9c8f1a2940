"""Batches of id arrays: sources right-padded with their lengths, targets wrapped in <sos>/<eos>.

Training batches follow the yardstick: pairs sorted by source length (stable), cut into
consecutive batches of ``batch_size``, and the batch order shuffled every epoch with a
generator seeded by ``(seed, epoch)`` (so a resumed run sees the same order).
"""

from __future__ import annotations

import numpy as np

from rnnlab.translate.model import EOS, PAD, SOS


def pad_sources(seqs):
    """Id lists -> ``src (N, S)`` padded with <pad>, ``lengths (N,)``. Empty lists raise."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    if len(seqs) == 0 or lengths.min() < 1:
        raise ValueError("every source sentence needs at least one token")
    src = np.full((len(seqs), int(lengths.max())), PAD, np.int64)
    for n, s in enumerate(seqs):
        src[n, : len(s)] = s
    return src, lengths


def pad_targets(seqs):
    """Id lists -> ``tgt (N, T+1)``: <sos> y_1 .. y_k <eos> <pad> ..., T = max k + 1."""
    T = max(len(s) for s in seqs) + 1
    tgt = np.full((len(seqs), T + 1), PAD, np.int64)
    tgt[:, 0] = SOS
    for n, s in enumerate(seqs):
        tgt[n, 1 : len(s) + 1] = s
        tgt[n, len(s) + 1] = EOS
    return tgt


def make_batches(id_pairs, batch_size):
    """Sort (src ids, tgt ids) pairs by source length, cut into batches of (src, lengths, tgt)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(id_pairs)), key=lambda i: len(id_pairs[i][0]))
    batches = []
    for i in range(0, len(order), batch_size):
        chunk = [id_pairs[j] for j in order[i : i + batch_size]]
        src, lengths = pad_sources([p[0] for p in chunk])
        batches.append((src, lengths, pad_targets([p[1] for p in chunk])))
    return batches


def epoch_order(n_batches, seed, epoch):
    """The shuffled batch order of one epoch (deterministic in seed and epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n_batches)


def shard_batch(batch, rows: slice):
    """The ``rows`` of a batch ``(src, lengths, tgt)``, their padding trimmed to their own
    longest source and target (what the padded steps would compute is masked anyway)."""
    src, lengths, tgt = (a[rows] for a in batch)
    S = int(lengths.max())
    T1 = int(np.flatnonzero((tgt != PAD).any(axis=0)).max()) + 1  # <sos> .. the last <eos>
    return np.ascontiguousarray(src[:, :S]), lengths, np.ascontiguousarray(tgt[:, :T1])


def count_target_tokens(tgt):
    """Target words the loss sees: every non-pad position after <sos> (<eos> included)."""
    return int((tgt[:, 1:] != PAD).sum())
