"""rnnlab.experiments: the chapter's central claim, measured.

A plain RNN forgets across long sequences because its gradients vanish; the gates of the
LSTM and GRU keep them alive. ``run_adding`` and ``run_copy`` train each cell on the two
long-memory benchmarks and return the curves as data; ``gradient_norms`` and
``lstm_gates`` return the pictures' numbers; ``rnnlab.experiments.plots`` draws them::

    from rnnlab.experiments import run_adding, gradient_norms
    exp = run_adding("all", length=100)          # exp.report(): the --report JSON
    norms = gradient_norms(exp)                  # {cell: {"untrained": (T,), "trained": (T,)}}
"""

from rnnlab.experiments.models import CELLS, SequenceModel
from rnnlab.experiments.probes import gradient_norms, hidden_grad_norms, lstm_gates
from rnnlab.experiments.tasks import ADDING_BASELINE_MSE, adding_problem, copy_chance, copy_problem
from rnnlab.experiments.train import Experiment, run_adding, run_copy

__all__ = [
    "CELLS",
    "SequenceModel",
    "ADDING_BASELINE_MSE",
    "adding_problem",
    "copy_problem",
    "copy_chance",
    "Experiment",
    "run_adding",
    "run_copy",
    "gradient_norms",
    "hidden_grad_norms",
    "lstm_gates",
]
