"""Training steps while the machine's load changes under a running process (issue 34).

    python benchmarks/threads_under_load.py --busy 4                  # the load check deciding
    RNNLAB_MIN_THREAD_WORK=1e5 python benchmarks/threads_under_load.py --busy 4  # no check
    python benchmarks/threads_under_load.py --summary benchmarks/raw/threads_under_load-*.json

A process that started on an idle machine has spinning OpenMP workers; this one forces that
(``GOMP_SPINCOUNT=300000``, the library's default, unless the environment sets a policy) and runs
training steps (forward + backward, float32) of one layer without stopping: ``--idle-s`` seconds
alone, ``--busy-s`` with ``--busy K`` ``python -c 'while True: pass'`` processes beside it (at
this process's priority; killed after, also on Ctrl-C or SIGTERM), ``--after-s`` alone again.
Every ``--every`` seconds it prints the 1-minute load average, what ``runtime.describe()``'s
load check saw, the ``min_thread_work`` in force and the ms a step (wall time over the
window's steps: a step stalled by a descheduled thread counts in full); at the end the mean of
each phase. Raw numbers to ``benchmarks/raw/`` (git-ignored).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "300000")  # spinning, as on an idle start
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from threads_by_size import RAW, cpu_model  # noqa: E402

from rnnlab import bench  # noqa: E402


def run(args, loops):
    from rnnlab.nn import runtime

    step = bench.rnnlab_step(args.cell, bench.Config(*args.shape), "train")
    step()
    start, rows, phase_ms = time.monotonic(), [], {"idle": [], "busy": [], "after": []}
    ends = {"idle": args.idle_s, "busy": args.idle_s + args.busy_s}
    print(f"{'t s':>5s} {'phase':5s} {'load':>5s} {'others':>6s} {'busy':>5s} {'min work':>8s} {'ms':>8s}")
    while (now := time.monotonic() - start) < args.idle_s + args.busy_s + args.after_s:
        phase = "idle" if now < ends["idle"] else "busy" if now < ends["busy"] else "after"
        if phase == "busy" and not loops:
            loops.extend(
                subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)
            )
        if phase == "after":
            stop(loops)
        times, t_end = [], time.monotonic() + args.every
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
        check = runtime.describe()["load_check"]
        ms = args.every * 1e3 / len(times)  # wall time a step, stalls included
        phase_ms[phase].append(ms)
        row = {"t": round(now, 1), "phase": phase, "load": os.getloadavg()[0], "ms": ms, "steps": len(times)}
        row["median_ms"] = statistics.median(times)
        row.update(min_thread_work=runtime.min_thread_work(), check=check)
        rows.append(row)
        print(
            f"{now:5.0f} {phase:5s} {row['load']:5.2f} {str(check.get('others', '-')):>6s} "
            f"{str(check.get('busy', '-')):>5s} {row['min_thread_work']:8.0e} {ms:8.3f}",
            flush=True,
        )
    return rows, {k: statistics.mean(v) for k, v in phase_ms.items() if v}


def stop(loops):
    for p in loops:
        p.kill()
        p.wait()
    loops.clear()


def summary(paths):
    for path in paths:
        r = json.load(open(path))
        ms = " ".join(f"{k} {v:.3g}" for k, v in r["phase_ms"].items())
        print(f"{r['label']}: {r['cell']} {tuple(r['shape'])} busy {r['busy']}, mean ms a step: {ms}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru"])
    ap.add_argument("--shape", nargs=4, type=int, default=[10, 32, 64, 64], metavar=("T", "N", "I", "H"))
    ap.add_argument("--busy", type=int, default=4, help="CPU-bound processes in the busy phase")
    ap.add_argument("--idle-s", type=float, default=20.0)
    ap.add_argument("--busy-s", type=float, default=90.0)
    ap.add_argument("--after-s", type=float, default=150.0)
    ap.add_argument("--every", type=float, default=5.0, help="seconds a printed row")
    ap.add_argument("--label", default="run")
    ap.add_argument("--summary", nargs="+", metavar="JSON", help="print these runs' phase means")
    args = ap.parse_args()
    if args.summary:
        return summary(args.summary)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the loops are killed
    loops: list = []
    print(f"{cpu_model()}, {args.cell} {tuple(args.shape)}, busy {args.busy}, env " + str(env()))
    try:
        rows, phase_ms = run(args, loops)
    finally:
        stop(loops)
    print("mean ms a step: " + ", ".join(f"{k} {v:.3f}" for k, v in phase_ms.items()))
    out = {"label": args.label, "cpu": cpu_model(), "cell": args.cell, "shape": args.shape}
    out.update(
        busy=args.busy, env=env(), phase_ms=phase_ms, rows=rows, time=time.strftime("%Y-%m-%dT%H:%M:%S")
    )
    os.makedirs(RAW, exist_ok=True)
    path = os.path.join(RAW, f"threads_under_load-{args.label}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"wrote {path}")


def env():
    names = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "RNNLAB_MIN_THREAD_WORK", "RNNLAB_NUM_THREADS")
    return {k: os.environ[k] for k in names if k in os.environ}


if __name__ == "__main__":
    main()
