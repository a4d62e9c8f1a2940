"""The numbers behind the two pictures: gradient norms over time, and the LSTM's gates.

Vanishing gradient (Bengio et al. 1994; Hochreiter & Schmidhuber 1997): with the loss on the
read-out step T only, BPTT carries ``dL/dh_T`` back one step at a time::

    RNN:   dh_{t-1} = W^T (dh_t * (1 - h_t^2))                 a product of T - t Jacobians
    LSTM:  dc_{t-1} = dc_t * f_t  (+ terms through h)          a path scaled only by f_t

so ``||dL/dh_t||`` shrinks geometrically in the RNN and can stay level in the LSTM while
the forget gate stays near 1. ``gradient_norms`` measures it with the layer's own
``hidden_grad_norms()``; ``lstm_gates`` reads ``gate_trace()`` for one example.
"""

from __future__ import annotations

import numpy as np

from rnnlab import nn


def _loss_for(task):
    return nn.MSELoss() if task == "adding" else nn.CrossEntropyLoss()


def hidden_grad_norms(model, x, y, task="adding"):
    """``||dL/dh_t||`` for t = 1..T, (T,), with the task's loss on the read-out step(s) only.

    Runs a float64 copy of the model: a vanished gradient (1e-40 and below) would round to
    exactly 0 in float32. The model itself is not touched.
    """
    loss = _loss_for(task)
    model = model.astype(np.float64)
    x = np.asarray(x, np.float64)
    model.zero_grad()
    loss(model(x), y)
    model.backward(loss.backward())
    return model.rnn.hidden_grad_norms()  # (T,)


def gradient_norms(exp, n_examples=100):
    """For each cell of an ``Experiment``: ``{"untrained": (T,), "trained": (T,)}``.

    Uses the first ``n_examples`` of the experiment's test batch.
    """
    x, y = exp.test
    x, y = x[:, :n_examples], (y[:n_examples][None] if exp.task == "adding" else y[:, :n_examples])
    out = {}
    for cell, model in exp.models.items():
        out[cell] = {
            "untrained": hidden_grad_norms(exp.untrained[cell], x, y, exp.task),
            "trained": hidden_grad_norms(model, x, y, exp.task),
        }
    return out


def lstm_gates(model, x, example=0):
    """Gate activations of one example, each (T, H): forget ``f``, input ``i``, output ``o``,
    candidate ``g`` and cell state ``c``; plus the example's input ``x`` (T, I)."""
    if model.cell != "lstm":
        raise ValueError(f"lstm_gates needs an LSTM model, got a {model.cell!r} model")
    if not 0 <= example < x.shape[1]:
        raise ValueError(f"example must lie in [0, {x.shape[1]}), got {example}")
    xe = x[:, example : example + 1]  # (T, 1, I)
    model(xe)
    trace = model.rnn.gate_trace()  # each (T, 1, H)
    gates = {k: v[:, 0] for k, v in trace.items()}  # each (T, H)
    gates["x"] = xe[:, 0]
    return gates
