"""A/B test of one runtime setting of rnnlab's engine against PyTorch, timed the way run.py times.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab.py lstm infer 7 7 1 256 \\
        min_rows 16 1000000000 [--reps 41]
    python benchmarks/ab.py lstm train 35 20 650 650 gemm mkl openblas

Sets the ``rnnlab.nn.runtime`` setting to the old value, then to the new one (through
``runtime.override``, as a user would), and times an rnnlab step with each,
in blocks alternating with PyTorch's as benchmarks/run.py times them (old, torch, new, torch,
...; bench._time: each block after one untimed call). Prints each variant's median and its
ratio to PyTorch's.

Why not simply time old and new one after the other (measured here, 2026-11-27): the new
variant then runs on the caches the old one just warmed (the same model, data and buffers).
Two changes that looked like gains that way, a packing rule (LSTM (7,7,1,256) inference
0.94 -> 0.81 of torch) and parallel gate math ((35,20,650,650) 0.98 -> 0.94), were worth
nothing once each variant ran after a PyTorch step (1.06 -> 1.04; 0.97 -> 0.98), and were
reverted.
"""

import argparse
import dataclasses
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rnnlab import bench  # noqa: E402


def value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cell", choices=["lstm", "gru"])
    ap.add_argument("mode", choices=["train", "infer"])
    ap.add_argument("shape", nargs=4, type=int, metavar="T N I H")
    ap.add_argument("setting", help="a field of rnnlab.nn.runtime.Settings, e.g. min_rows, gemm, align")
    ap.add_argument("old", type=value)
    ap.add_argument("new", type=value)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--bidirectional", action="store_true")
    ap.add_argument("--reps", type=int, default=41)
    args = ap.parse_args()
    if not bench.have_torch():
        sys.exit("needs torch (pip install -e '.[test]')")
    from rnnlab.nn import runtime

    fields = [f.name for f in dataclasses.fields(runtime.Settings)]
    if args.setting not in fields:
        sys.exit(f"no runtime setting {args.setting!r}; there are {', '.join(fields)}")
    cfg = bench.Config(*args.shape, layers=args.layers, bidirectional=args.bidirectional)
    threads = bench.blas_info()["threads"] or 1
    ours = bench.rnnlab_step(args.cell, cfg, args.mode)
    theirs = bench.torch_step(args.cell, cfg, args.mode, threads)

    def variant(v):
        def step():
            with runtime.override(**{args.setting: v}):
                ours()

        return step

    timed = bench._time([variant(args.old), theirs, variant(args.new), theirs], args.reps)
    ms = [1e3 * statistics.median(t) for t in timed]
    print(f"{args.cell} {args.mode} {cfg.name}, {threads} thread(s), {len(timed[0])} reps; {args.setting}")
    for label, v, mine, torch_ms in (("old", args.old, ms[0], ms[3]), ("new", args.new, ms[2], ms[1])):
        print(
            f"  {label} = {v!r:>12}: rnnlab {mine:9.3f} ms  torch {torch_ms:9.3f} ms  "
            f"ratio {mine / torch_ms:.3f}"
        )


if __name__ == "__main__":
    main()
