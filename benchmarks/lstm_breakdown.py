"""Where an LSTM inference pass spends its time (the compiled backend), next to PyTorch's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/lstm_breakdown.py 50 32 32 128

For one configuration (T, N, I, H), medians in ms:
  rnnlab / torch   the whole ``inference_mode`` forward of each library, alternating (bench._time)
  input GEMM       XG = X U^T for all steps (the GEMM library's matmul into the layer's buffer)
  loop             the compiled time loop alone (backend.loops.lstm_forward on the layer's inputs)
  loop GEMMs       the same loop with only its step GEMMs (XG[t] += h_(t-1) W^T)
  gate kernel      the same loop with only backend.kernels.lstm_cell
  rest             whole pass - input GEMM - loop (Python, packing W, allocation)
The loop's parts do not add up exactly: together they share the caches.
"""

import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import rnnlab.nn as rnn  # noqa: E402
from rnnlab import bench  # noqa: E402
from rnnlab.nn import backend  # noqa: E402


def median_ms(fn, reps=41):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main():
    T, N, I, H = (int(a) for a in sys.argv[1:5]) if len(sys.argv) == 5 else (50, 32, 32, 128)
    fast = backend.select(rnn.LSTM(1, 1).spec, np.float32)
    if fast is None:
        sys.exit("needs the compiled backend: pip install -e '.[fast]'")
    from rnnlab.nn.backend import kernels, loops

    info = bench.blas_info()
    cfg = bench.Config(T, N, I, H)
    ours = bench.rnnlab_step("lstm", cfg, "infer")
    fns = [ours]
    if bench.have_torch():
        fns.append(bench.torch_step("lstm", cfg, "infer", info["threads"] or 1))
    timed = bench._time(fns, 41)
    whole = 1e3 * statistics.median(timed[0])

    # the compiled loop's own arguments, caught from one real pass
    m = rnn.LSTM(I, H, seed=0)
    x = np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32)
    caught = []
    real_seq = loops.lstm_forward
    loops.lstm_forward = lambda *a: (caught.append(a), real_seq(*a))[1]
    try:
        with rnn.inference_mode():
            m(x)
    finally:
        loops.lstm_forward = real_seq
    if not caught:
        sys.exit("the one-block compiled loop did not run (row blocks? run with one thread)")
    gemm, _, XG, b, h, c, tanh_c, active, keep, r0, r1 = caught[0]
    W = m.params["weight_hh_l0"]
    P = fast.lib.operand(W.T, N, T)  # kept alive while we time
    Wp = P.operand
    XG0 = XG.copy()
    U = m.params["weight_ih_l0"]

    def loop():
        XG[...] = XG0
        real_seq(gemm, Wp, XG, b, h, c, tanh_c, active, keep, r0, r1)

    def gemms():
        XG[...] = XG0
        for t in range(T):
            loops._gemm(*gemm, h[t], Wp, XG[t], np.float32(1))

    def gates():
        XG[...] = XG0
        for t in range(T):
            kernels.lstm_cell(XG[t], b, c[t], h[t + 1], c[t + 1], tanh_c[0], False)

    restore = median_ms(lambda: XG.__setitem__(Ellipsis, XG0))
    parts = {
        "input GEMM": median_ms(lambda: fast.matmul(x.reshape(T * N, I), U.T, out=XG.reshape(T * N, -1))),
        "loop": median_ms(loop) - restore,
        "loop GEMMs": median_ms(gemms) - restore,
        "gate kernel": median_ms(gates) - restore,
    }
    print(f"LSTM inference (T,N,I,H) = ({T},{N},{I},{H}), {info['threads']} thread(s); ms (median)")
    print(f"  rnnlab whole pass {whole:8.3f}")
    if len(timed) > 1:
        theirs = 1e3 * statistics.median(timed[1])
        print(f"  torch whole pass  {theirs:8.3f}   ratio {whole / theirs:.2f}")
    for k, v in parts.items():
        print(f"  {k:17s} {v:8.3f}")
    print(f"  rest              {whole - parts['input GEMM'] - parts['loop']:8.3f}")
    flop = 2 * T * N * 4 * H * (I + H)
    print(f"  GEMM rate {flop / (parts['input GEMM'] + parts['loop GEMMs']) / 1e6:.0f} GF/s")


if __name__ == "__main__":
    main()
