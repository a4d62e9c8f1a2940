"""Several trained translators as one: checkpoint averaging and ensemble decoding.

``average(translators)``: one model whose every parameter is the mean of the members' (the
members must share vocabularies and architecture: checkpoints of one run, typically the last
few epochs; averaging independently trained models gives nonsense, since their hidden units do
not correspond). ``ensemble(translators)``: a translator whose decoder runs every member at each
step and uses the mean of their log-probabilities::

    log p_ens(w | y_<t, x) = (1/K) sum_k log p_k(w | y_<t, x)

for greedy and beam search alike (the attention weights returned are the first member's).
"""

from __future__ import annotations

import copy

import numpy as np

from rnnlab.translate.model import reorder_state


def _check_compatible(translators, need_same_shapes: bool):
    if len(translators) < 1:
        raise ValueError("give at least one translator")
    for t in translators:
        t._check_fitted()
    first = translators[0]
    for k, t in enumerate(translators[1:], 1):
        if t.src_vocab_.itos != first.src_vocab_.itos or t.tgt_vocab_.itos != first.tgt_vocab_.itos:
            raise ValueError(f"translator {k} has other vocabularies than translator 0: cannot combine them")
        if t.truecaser_ != first.truecaser_:
            raise ValueError(f"translator {k} truecases otherwise than translator 0: cannot combine them")
        if need_same_shapes and t.model_.config() != first.model_.config():
            raise ValueError(f"translator {k}'s architecture is not translator 0's: {t.model_.config()}")


def average(translators):
    """A new translator whose parameters are the mean of the members' (float64 sums)."""
    translators = list(translators)
    _check_compatible(translators, need_same_shapes=True)
    out = copy.deepcopy(translators[0])
    out.model_.load_state_dict(mean_state([t.model_.state_dict() for t in translators]))
    return out


def mean_state(states: list[dict]) -> dict:
    """The mean of state dicts of one architecture (summed in float64, cast back)."""
    return {
        k: (sum(s[k].astype(np.float64) for s in states) / len(states)).astype(v.dtype)
        for k, v in states[0].items()
    }


class EnsembleModel:
    """The decoder interface of ``Seq2Seq`` (``start``, ``step``, ``reorder``) over K models."""

    def __init__(self, models):
        self.models = list(models)

    def eval(self):
        for m in self.models:
            m.eval()
        return self

    def start(self, src, lengths):
        return tuple(m.start(src, lengths) for m in self.models)

    def step(self, tokens, states):
        outs = [m.step(tokens, s) for m, s in zip(self.models, states)]
        logp = np.mean([o[0] for o in outs], axis=0)  # (1/K) sum_k log p_k
        return logp, tuple(o[1] for o in outs), outs[0][2]

    def reorder(self, states, idx):
        return tuple(reorder_state(s, idx) for s in states)

    def state_dict(self):
        raise TypeError("an ensemble is not saved as one model: save its members (or average them)")


def ensemble(translators):
    """A translator that decodes with every member at each step (``translate``, ``evaluate``)."""
    translators = list(translators)
    _check_compatible(translators, need_same_shapes=False)
    out = copy.copy(translators[0])
    out.model_ = EnsembleModel([t.model_ for t in translators])
    return out
