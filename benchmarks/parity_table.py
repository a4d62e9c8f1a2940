"""Max relative error of rnnlab's recurrent layers against PyTorch, as a Markdown table.

For each layer kind and mode, several random shapes (all sizes different) are run forward
and backward with nonzero biases and initial states and random upstream gradients on the
outputs and final states; the number reported is the max, over seeds and over every compared
tensor (outputs, final states, dx, dh0/dc0, every parameter gradient), of

    max |ours - torch| / max |torch|

The reference is ``torch.nn.RNN/LSTM/GRU`` (with ``pack_padded_sequence`` for lengths), and
for the chapter's GRU (``reset_after=False``) the torch autograd loop of
``tests/nn/test_gru_chapter.py``. The comparisons are the test suite's own (``run_case`` of
``tests/nn/test_recurrent_parity.py`` and ``tests/nn/test_gru_chapter.py``), run here with
the tolerance switched off so that the error is measured rather than asserted. float32 runs
are compared with torch in float32 (both round), float64 with torch in float64.

    python benchmarks/parity_table.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "nn")]

import test_gru_chapter as chapter  # noqa: E402
import test_recurrent_parity as parity  # noqa: E402
import torch  # noqa: E402

KINDS = [
    ("RNN tanh", "RNN_TANH"),
    ("RNN relu", "RNN_RELU"),
    ("LSTM", "LSTM"),
    ("GRU reset_after", "GRU"),
    ("GRU chapter form", "GRU_CHAPTER"),
]
MODES = [  # (label, num_layers, bidirectional, variable lengths)
    ("1 layer, uni", 1, False, False),
    ("2 layers, bidir", 2, True, False),
    ("2 layers, bidir, lengths", 2, True, True),
]
NO_TOL = {np.float64: np.inf, np.float32: np.inf}


def draw(rng, var):
    T, N, I, H = (int(v) for v in rng.choice(np.arange(2, 12), 4, replace=False))
    lengths = None
    if var:
        lengths = rng.integers(1, T + 1, N)
        lengths[rng.integers(N)] = T
    return T, N, I, H, lengths


def max_error(mode, L, bidir, var, dtype, seeds, seed):
    rng = np.random.default_rng(seed)  # the same shapes for both dtypes
    worst = 0.0
    for s in range(seeds):
        T, N, I, H, lengths = draw(rng, var)
        bf = bool(s % 2)  # alternate batch_first
        if mode == "GRU_CHAPTER":
            errs = chapter.run_case(T, N, I, H, L, bidir, bf, lengths, True, dtype, 100 + s)
            e = max(errs.values())
        else:
            e = parity.run_case(mode, T, N, I, H, L, bidir, bf, lengths, dtype, 100 + s)
        worst = max(worst, e)
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="random shapes per cell of the table")
    args = ap.parse_args(argv)
    parity.TOL, chapter.TOL = NO_TOL, NO_TOL  # measure, don't assert
    torch.set_num_threads(1)
    print(
        f"Max relative error vs PyTorch {torch.__version__} over all compared tensors "
        f"({args.seeds} random shapes per cell, T,N,I,H in [2, 11], batch_first alternating)\n"
    )
    print("| layer | mode | float64 | float32 |")
    print("|---|---|---:|---:|")
    for k, (label, mode) in enumerate(KINDS):
        for j, (mlabel, L, bidir, var) in enumerate(MODES):
            seed = 10 * k + j
            e64 = max_error(mode, L, bidir, var, np.float64, args.seeds, seed)
            e32 = max_error(mode, L, bidir, var, np.float32, args.seeds, seed)
            print(f"| {label} | {mlabel} | {e64:.1e} | {e32:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
