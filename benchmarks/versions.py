"""Two versions of rnnlab against each other and PyTorch, in ONE process: did a change cost speed?

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/versions.py OLD_COMMIT [--reps 21]

Timing two commits in two processes, or one after the other, mixes the change with whatever the
machine does meanwhile (on a shared 2-core VM, PyTorch's own time moved by 2x between two runs
minutes apart). Here the commit ``OLD_COMMIT`` is exported from git into a temporary folder as
the package ``rnnlab_old``, and every configuration of benchmarks/run.py is timed as
``old, torch, new, torch, ...`` in alternating blocks (``bench._time``), so both versions share
the machine's load and are each compared with the PyTorch block next to them. Prints, per row,
each version's median ratio to PyTorch, the change, and the plain ratio of the two versions'
medians (which PyTorch's own swings under load from other processes do not enter); then the
streaming rows (single steps of
a ``StackedCell``, ``bench_limits.STREAM``), timed the same way.
"""

import argparse
import importlib
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import numpy as np  # noqa: E402

import rnnlab.nn as new_nn  # noqa: E402
from rnnlab import bench, bench_limits  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def export(commit, folder):
    """The package of ``commit`` as ``folder/rnnlab_old`` (every ``rnnlab`` name renamed)."""
    tar = subprocess.run(["git", "-C", ROOT, "archive", commit, "rnnlab"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", folder], input=tar.stdout, check=True)
    os.rename(os.path.join(folder, "rnnlab"), os.path.join(folder, "rnnlab_old"))
    for base, _, files in os.walk(os.path.join(folder, "rnnlab_old")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(base, name)
                text = open(path).read()
                open(path, "w").write(re.sub(r"\brnnlab\b", "rnnlab_old", text))
    sys.path.insert(0, folder)
    import rnnlab_old.bench

    return rnnlab_old.bench


def streaming_step(nn, kind):
    """benchmarks/run.py's streaming row (``bench_limits.STREAM``: single steps of a
    ``StackedCell`` in inference) on the package ``nn`` (``rnnlab.nn`` or ``rnnlab_old.nn``)."""
    T, N, I, H = (bench_limits.STREAM[k] for k in ("steps", "N", "I", "H"))
    x = np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32)
    cell = nn.StackedCell((nn.LSTM if kind == "lstm" else nn.GRU)(I, H, seed=0))

    def steps():
        state = cell.initial_state(N)
        with nn.inference_mode():
            for t in range(T):
                _, state = cell.step(x[t], state)

    return steps


def torch_streaming_step(kind, threads):
    import torch

    T, N, I, H = (bench_limits.STREAM[k] for k in ("steps", "N", "I", "H"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tcell = (torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell)(I, H)
    xt = torch.from_numpy(np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32))
    return bench_limits.torch_steps(tcell, kind, xt, H)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("commit", help="the old version (any git revision)")
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    ap.add_argument("--configs", nargs="+", type=int, help="indices into bench.FULL (default all)")
    ap.add_argument("--no-stream", action="store_true", help="skip the streaming rows (1,000 single steps)")
    args = ap.parse_args()
    if not bench.have_torch():
        sys.exit("needs torch (pip install -e '.[test]')")
    with tempfile.TemporaryDirectory() as folder:
        old = export(args.commit, folder)
        threads = bench.blas_info()["threads"] or 1
        old.blas_info()  # the old version's threads too
        env = bench.environment()
        print("# " + bench.describe_environment(env))
        print(f"# old = {args.commit}, new = the working tree; {threads} thread(s), {args.reps} reps")
        print(
            "| cell | config (T,N,I,H) | mode | old ratio | new ratio | change | new / old time |\n"
            "|---|---|---|---|---|---|---|"
        )
        configs = bench.FULL if args.configs is None else [bench.FULL[i] for i in args.configs]
        for kind in args.cells:
            for cfg in configs:
                for mode in ("train", "infer"):
                    fns = [
                        old.rnnlab_step(kind, old.Config(**vars(cfg)), mode),
                        bench.torch_step(kind, cfg, mode, threads),
                        bench.rnnlab_step(kind, cfg, mode),
                        bench.torch_step(kind, cfg, mode, threads),
                    ]
                    t = [statistics.median(x) for x in bench._time(fns, args.reps)]
                    r_old, r_new = t[0] / t[1], t[2] / t[3]  # each against the torch block after it
                    change, direct = r_new / r_old - 1, t[2] / t[0]
                    print(
                        f"| {kind} | {cfg.name} | {mode} | {r_old:.3f} | {r_new:.3f} | {change:+.1%} "
                        f"| {direct:.3f} |",
                        flush=True,
                    )
        if not args.no_stream:
            old_nn = importlib.import_module("rnnlab_old.nn")
            for kind in args.cells:
                fns = [
                    streaming_step(old_nn, kind),
                    torch_streaming_step(kind, threads),
                    streaming_step(new_nn, kind),
                    torch_streaming_step(kind, threads),
                ]
                t = [statistics.median(x) for x in bench._time(fns, args.reps)]
                r_old, r_new = t[0] / t[1], t[2] / t[3]
                name = "stream {steps}x(N={N},I={I},H={H})".format(**bench_limits.STREAM)
                print(
                    f"| {kind} | {name} | step | {r_old:.3f} | {r_new:.3f} | {r_new / r_old - 1:+.1%} "
                    f"| {t[2] / t[0]:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
