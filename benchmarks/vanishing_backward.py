"""Backward time of an LSTM/GRU layer when the gradient reaching early steps vanishes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/vanishing_backward.py [--healthy]

T=400, N=32, I=1, H=128, float32; the upstream gradient is 1 at the last step only (or at every
step with --healthy). Prints the median of 5 backward passes and how many steps' ||dL/dh_t|| are
below 1e-30 or in float32's subnormal range (a result of issue 6's experiments: on subnormals the
backward ran ~10x slower until the compiled kernels flushed |g| < 1e-30 to zero).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import rnnlab.nn as rnn  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--healthy", action="store_true", help="a gradient at every step")
    args = ap.parse_args()
    T, N, I, H = 400, 32, 1, 128
    for mode in ("LSTM", "GRU"):
        m = getattr(rnn, mode)(I, H, seed=0)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, N, I)).astype(np.float32)
        dout = np.zeros((T, N, H), np.float32)
        dout[-1] = 1.0
        if args.healthy:
            dout[:] = 1.0
        m(x)
        m.backward(dout)
        times = []
        for _ in range(5):
            m.zero_grad()
            m(x)
            t0 = time.perf_counter()
            m.backward(dout)
            times.append(time.perf_counter() - t0)
        norms = m.hidden_grad_norms()
        print(
            f"{mode}: backward {1e3 * np.median(times):.1f} ms; steps with ||dL/dh_t|| < 1e-30: "
            f"{(norms < 1e-30).sum()}, in the subnormal range: "
            f"{((norms > 0) & (norms < np.finfo(np.float32).tiny)).sum()}"
        )


if __name__ == "__main__":
    main()
