"""What ``Translator.fit`` does differently under MPI (``rnnlab.distributed``), in one place.

Every rank builds the same vocabularies and model from the same pairs, then:

- ``prepare``: the model's parameters and gradients move into one flat buffer each (the
  allreduce's one message) and rank 0's initial weights are broadcast;
- each batch: rank r takes its contiguous shard of the sentences, its loss is weighted by its
  share of the batch's target words, and the gradients are summed (``training.train_epoch``),
  so clipping and Adam see the full batch's gradient on every rank;
- ``epoch_rng``: at the start of every epoch rank 0's generator state is sent to all and rank r
  jumps it r times (PCG64's ``jumped``), so dropout and teacher-forcing draws differ between
  shards, and a resumed run with the same number of ranks repeats the uninterrupted one;
- ``share_checkpoint``: on ``resume`` rank 0 reads the checkpoint and sends it (weights,
  Adam's state, the training state), so only rank 0's disk needs it;
- ``valid_bleu``: the validation sources are translated in shards, one per rank, and the
  hypotheses gathered, so every rank computes the same BLEU (the learning-rate decay and early
  stopping depend on it and must agree).

Only rank 0 prints and writes (checkpoints, the model). In a world of one every function here
returns at once and ``fit`` is the single-process one, bit for bit.
"""

from __future__ import annotations

import numpy as np

from rnnlab import distributed
from rnnlab.translate.bleu import corpus_scores

VALIDATION = "sharded"  # or "root": rank 0 alone translates, the others wait for its BLEU


def prepare(model, world) -> None:
    """Under MPI: one flat parameter and gradient buffer, rank 0's weights on every rank."""
    if world.size == 1:
        return
    model.flatten_parameters()
    world.broadcast_parameters(model)


def share_checkpoint(model, opt, st, best_state, recent):
    """Rank 0's resumed weights, optimiser state, training state, best weights and the last
    epochs' weights (``average_last``) on every rank; returns ``(st, best_state, recent)``."""
    world = distributed.world()
    if world.size == 1:
        return st, best_state, recent
    world.broadcast_parameters(model)
    opt.load_state_dict(world.bcast(opt.state_dict() if world.is_root else None))
    return world.bcast((st, best_state, recent) if world.is_root else None)


def epoch_rng(rng: np.random.Generator, world) -> None:
    """Under MPI: every rank starts the epoch from rank 0's generator state, jumped rank times."""
    if world.size == 1:
        return
    bits = type(rng.bit_generator)()
    bits.state = world.bcast(rng.bit_generator.state)
    if not isinstance(bits, (np.random.PCG64, np.random.PCG64DXSM, np.random.Philox, np.random.MT19937)):
        raise TypeError(
            f"the epoch generator must be jumpable (PCG64, Philox ...), got {type(bits).__name__}"
        )
    if world.rank:
        bits = bits.jumped(world.rank)
    rng.bit_generator.state = bits.state


def valid_bleu(tr, refs: dict, world) -> float:
    """The validation score (BLEU or chrF) of greedy translations, the same on every rank."""
    if world.size == 1:
        return tr._valid_score(refs)
    if VALIDATION == "root":
        return world.bcast(tr._valid_score(refs) if world.is_root else None)
    srcs = list(refs)
    mine = srcs[world.shard(len(srcs))]
    hyps = [" ".join(h) for h in tr._translate_tokens([s.split() for s in mine], beam_size=1)] if mine else []
    every = [h for part in world.comm.allgather(hyps) for h in part]
    return corpus_scores(every, [refs[s] for s in srcs])[tr.valid_metric]
