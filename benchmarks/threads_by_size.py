"""One GEMM thread against all of them, by the size of a time step (issue 34, "Oversubscription").

    python benchmarks/threads_by_size.py --label idle             # the grid, nothing beside it
    python benchmarks/threads_by_size.py --label loaded --busy 4  # four CPU-bound loops beside it
    python benchmarks/threads_by_size.py --table benchmarks/raw/threads_by_size-*.json

For each cell (LSTM, GRU) and shape (T, N, I, H) it times a training step (forward + backward of
one ``rnnlab.nn`` layer, float32) with every pass on one GEMM thread
(``runtime.override(min_thread_work=inf)``) and with every pass on the configured count
(``min_thread_work=0``), the two alternating in blocks of about ``--block-ms`` so that both see
the same load; the GEMM choice is the same for both (the one timed for the configured count).
Prints each shape's step work ``N G H (I + H)`` (the quantity ``min_thread_work`` is compared
with), the median milliseconds a training step of each and their ratio, and writes the raw
numbers with the machine's description to ``benchmarks/raw/`` (git-ignored). ``--busy K`` runs K
``python -c 'while True: pass'`` processes, at this process's priority, for the run and kills
them after (also on Ctrl-C or SIGTERM). ``--table`` joins the JSON of several runs into one
Markdown table (docs/MEASUREMENTS.md, "Threads by work size").
"""

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rnnlab import bench  # noqa: E402

RAW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "raw")
VARIANTS = {"one": {"min_thread_work": math.inf}, "all": {"min_thread_work": 0.0}}
GATES = {"lstm": 4, "gru": 3}


def grid(Ns, Hs, T):
    """The shapes timed: (T, N, H, H) for every N and H, and the forecaster's default (7, 32, 1, 16)."""
    return [(7, 32, 1, 16)] + [(T, N, H, H) for N in Ns for H in Hs]


def time_shape(kind, shape, reps, block_ms):
    """Median seconds a training step for each variant, the variants alternating in blocks."""
    from rnnlab.nn import runtime

    step = bench.rnnlab_step(kind, bench.Config(*shape), "train")
    calls = {}
    for name, variant in VARIANTS.items():
        with runtime.override(**variant):
            step()  # compiles, fills the buffer pool
            t0 = time.perf_counter()
            step()
            calls[name] = max(1, int(block_ms / 1e3 / max(time.perf_counter() - t0, 1e-6)))
    times: dict = {name: [] for name in VARIANTS}
    for _ in range(reps):
        for name, variant in VARIANTS.items():
            with runtime.override(**variant):
                step()  # untimed: after the other variant's block
                t0 = time.perf_counter()
                for _ in range(calls[name]):
                    step()
                times[name].append((time.perf_counter() - t0) / calls[name])
    return {name: statistics.median(ts) for name, ts in times.items()}


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "?"
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")


def measure(args):
    from rnnlab.nn import runtime

    rows = []
    print(
        f"{cpu_model()}, load {os.getloadavg()[0]:.2f}, busy {args.busy}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}"
    )
    print(
        f"{'cell':5s} {'(T,N,I,H)':18s} {'step work':>10s} {'1 thread':>9s} {'all':>9s} {'all/1':>6s}  load"
    )
    for kind in args.cells:
        for shape in grid(args.N, args.H, args.T):
            T, N, I, H = shape
            work = N * GATES[kind] * H * (I + H)
            ms = {k: v * 1e3 for k, v in time_shape(kind, shape, args.reps, args.block_ms).items()}
            load = os.getloadavg()[0]
            rows.append({"cell": kind, "shape": shape, "step_work": work, "ms": ms, "load": load})
            print(
                f"{kind:5s} {str(shape):18s} {work:10.3g} {ms['one']:9.3f} {ms['all']:9.3f} "
                f"{ms['all'] / ms['one']:6.2f}  {load:.2f}",
                flush=True,
            )
    return {
        "label": args.label,
        "cpu": cpu_model(),
        "busy": args.busy,
        "nice": os.nice(0),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "RNNLAB_NUM_THREADS")},
        "runtime": runtime.describe(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "rows": rows,
    }


def table(paths):
    """One Markdown row per (cell, shape): 1 thread and all, ms a training step, in each run."""
    runs = [json.load(open(p)) for p in paths]
    head = " | ".join(f"{r['label']}: 1 / all (ratio)" for r in runs)
    print(f"| cell | (T,N,I,H) | step work | {head} |\n|---|---|---|" + "---|" * len(runs))
    for i, row in enumerate(runs[0]["rows"]):
        cells = []
        for r in runs:
            ms = r["rows"][i]["ms"]
            cells.append(f"{ms['one']:.3g} / {ms['all']:.3g} ({ms['all'] / ms['one']:.2f})")
        print(
            f"| {row['cell']} | {tuple(row['shape'])} | {row['step_work']:.2g} | " + " | ".join(cells) + " |"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=sorted(GATES))
    ap.add_argument("--N", nargs="+", type=int, default=[1, 8, 32, 64])
    ap.add_argument("--H", nargs="+", type=int, default=[32, 64, 128, 256, 512])
    ap.add_argument("--T", type=int, default=10)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--block-ms", type=float, default=30.0)
    ap.add_argument("--busy", type=int, default=0, help="CPU-bound processes beside the run")
    ap.add_argument("--label", default="run")
    ap.add_argument("--table", nargs="+", metavar="JSON", help="print the table of these runs instead")
    args = ap.parse_args()
    if args.table:
        return table(args.table)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the loops are killed
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(1.0 if loops else 0.0)
        out = measure(args)
    finally:
        for p in loops:
            p.kill()
            p.wait()
    os.makedirs(RAW, exist_ok=True)
    path = os.path.join(RAW, f"threads_by_size-{args.label}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
