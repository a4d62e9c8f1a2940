"""Speed of rnnlab's LSTM/GRU against PyTorch's, all configurations of issue 3, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py [--reps 7] [--out FILE.json]

Prints the environment (CPU, BLAS library, its kernel and threads, what rnnlab's engine runs on) and
a Markdown table ready for benchmarks/RESULTS.md, and writes the raw results as JSON (default
benchmarks/results/DATE-TIME.json, a git-ignored folder: RESULTS.md keeps the tables).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rnnlab import bench  # noqa: E402
from rnnlab.io import write_json  # noqa: E402


def _commit():
    import subprocess

    try:
        out = subprocess.run(
            ["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=["lstm", "gru"])
    ap.add_argument("--configs", nargs="+", type=int, help="indices into bench.FULL (default all)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-stream", action="store_true", help="skip the streaming rows")
    ap.add_argument(
        "--block",
        type=int,
        default=bench.BLOCK,
        help="timed calls in a row per library, alternating (1: rep by rep)",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    env = bench.environment()
    print(bench.describe_environment(env) + f"; OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}")
    print(f"engine: {env['engine']}")
    print(f"command: {' '.join(sys.argv)}; commit {_commit()}")
    print(bench.HEADER, flush=True)
    configs = bench.FULL if args.configs is None else [bench.FULL[i] for i in args.configs]
    rows = bench.run(
        configs,
        tuple(args.cells),
        reps=args.reps,
        memory=not args.no_memory,
        progress=lambda s: print(s, flush=True),
        block=args.block,
        peak=env["peak_sgemm"]["gflops"],
        stream=not args.no_stream,
    )
    folder = os.path.join(os.path.dirname(__file__), "results")
    out = args.out or os.path.join(folder, f"{time.strftime('%Y%m%d-%H%M')}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_json(out, {"environment": env, "command": sys.argv, "commit": _commit(), "results": rows})
    worst = max(r.get("ratio", 0) for r in rows)
    train = [r["ratio"] for r in rows if r["mode"] == "train" and "ratio" in r]
    if train:
        print(f"worst training ratio {max(train):.2f}")
    print(f"worst ratio {worst:.2f}; JSON: {out}")


if __name__ == "__main__":
    main()
