"""`rnnlab bench`: time rnnlab's LSTM and GRU against PyTorch's in the same process.

For each configuration (T steps, N batch, I input, H hidden, layers, bidirectional) and mode
(``train``: forward + backward with parameter and input gradients; ``infer``: forward only,
under ``torch.inference_mode`` and ``rnnlab.nn.inference_mode``)
both libraries run the same float32 data, after a warm-up, at least ``reps`` times, in
alternating blocks (a block: one untimed call, then ``block`` timed calls of one library; then
the other's block; so both see the same machine load); we report
the median, the spread (min and max) and the ratio rnnlab / PyTorch (below 1 = rnnlab faster).
PyTorch runs with ``torch.set_num_threads`` equal to NumPy's BLAS threads, and so does rnnlab
(``rnnlab.nn.runtime``: the GEMM library of its compiled loops). Without torch
installed only rnnlab's times are reported. Peak memory of a training step is measured per
library in a fresh subprocess: the resident set sampled during the step, above its value before
(model and data already built, a warm-up step of a tiny model done).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rnnlab import bench_precision, cliargs


@dataclass(frozen=True)
class Config:
    T: int
    N: int
    I: int
    H: int
    layers: int = 1
    bidirectional: bool = False
    note: str = ""

    @property
    def name(self):
        extra = f" L{self.layers}" + (" bi" if self.bidirectional else "")
        return (
            f"({self.T},{self.N},{self.I},{self.H}){extra if self.layers > 1 or self.bidirectional else ''}"
        )


FULL = [
    Config(7, 7, 1, 256, note="the chapter's Bitcoin model"),
    Config(50, 32, 32, 128),
    Config(50, 64, 128, 256),
    Config(100, 64, 256, 512),
    Config(35, 20, 650, 650, note="medium language model"),
    Config(20, 64, 256, 256, 2, True),
]
QUICK = [FULL[0], FULL[1], FULL[2]]


def blas_info():
    """NumPy's BLAS library, kernel (core type) and thread count, via threadpoolctl if present;
    ``threads`` is the thread count every library gets in the benchmark (NumPy's BLAS threads).
    Also sets rnnlab's threads (``runtime.set(threads=...)``) to the same count."""
    from rnnlab.nn import backend, runtime

    mkl_lib = backend.library("mkl")  # loaded, so threadpoolctl sees it
    info: dict[str, Any] = {"threads": os.cpu_count(), "internal_api": "unknown"}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = list
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    for pool in sorted(pools, key=lambda p: "numpy" not in p.get("filepath", "")):
        if pool.get("filepath", "").startswith(numpy_dir) or pool.get("internal_api") != "mkl":
            info = {
                k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")
            }
            info["threads"] = pool.get("num_threads")
            break
    runtime.set(threads=info["threads"] or 1)
    if mkl_lib is not None:
        mkl = [p for p in pools if p.get("internal_api") == "mkl"]
        info["mkl"] = {
            "version": mkl[0].get("version") if mkl else None,
            "threading_layer": mkl[0].get("threading_layer") if mkl else None,
            "num_threads": mkl_lib.get_threads(),
        }
    return info


# Timed calls per block. Rep-by-rep interleaving (block=1) times each library's call right
# after the other's, with its own weights and buffers pushed out of the caches by the other
# library's: not the call a user's loop makes, which calls the same layer again and again.
# The first call after another library's is slower (caches, sleeping OpenMP workers:
# docs/MEASUREMENTS.md, "Where the speed rules come from"). Blocks of calls, each after one
# untimed call, time the library's own loop, still alternating so both share the machine's load.
BLOCK = 4


def _time(fns, reps, min_time=0.5, block=BLOCK):
    """Time several step functions in alternating blocks of ``block`` timed calls, each block
    after one untimed call (``block=1``: rep by rep, no untimed call), so they share whatever
    load the machine has; returns one list of seconds per function."""
    for fn in fns:
        fn()
        fn()  # warm-up (allocations, caches, JIT)
    times: list[list[float]] = [[] for _ in fns]
    t_start = time.perf_counter()
    while len(times[0]) < reps or (time.perf_counter() - t_start < min_time and len(times[0]) < 200):
        for fn, ts in zip(fns, times):
            if block > 1:
                fn()  # after the other library's block
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
    return times


def _make_rnnlab(kind, cfg, seed=0):
    import rnnlab.nn as rnn

    cls = rnn.LSTM if kind == "lstm" else rnn.GRU
    return cls(cfg.I, cfg.H, num_layers=cfg.layers, bidirectional=cfg.bidirectional, seed=seed)


def _data(cfg, seed=0):
    rng = np.random.default_rng(seed)
    D = 2 if cfg.bidirectional else 1
    x = rng.standard_normal((cfg.T, cfg.N, cfg.I)).astype(np.float32)
    dout = rng.standard_normal((cfg.T, cfg.N, D * cfg.H)).astype(np.float32)
    return x, dout


def rnnlab_step(kind, cfg, mode):
    m = _make_rnnlab(kind, cfg)
    x, dout = _data(cfg)
    if mode == "infer":  # torch runs under torch.inference_mode
        import rnnlab.nn as rnn

        m.eval()

        def infer():
            with rnn.inference_mode():
                m(x)

        return infer

    def step():
        m.zero_grad()
        m(x)
        m.backward(dout)

    return step


def torch_step(kind, cfg, mode, threads):
    import torch

    torch.set_num_threads(threads)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    torch.manual_seed(0)
    m = cls(cfg.I, cfg.H, num_layers=cfg.layers, bidirectional=cfg.bidirectional)
    x, dout = (torch.from_numpy(a) for a in _data(cfg))
    if mode == "infer":
        m.eval()

        def infer():
            with torch.inference_mode():
                m(x)

        return infer
    x.requires_grad_(True)  # both libraries compute dx too

    def step():
        m.zero_grad(set_to_none=False)
        out, _ = m(x)
        out.backward(dout)

    return step


def have_torch():
    try:
        import torch  # noqa: F401

        return True
    except ImportError:
        return False


def _rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_child(lib, kind, cfg_json):
    """Run in a subprocess: peak RSS (MiB) above the RSS before one training step.

    A small step of the same library runs first (imports, JIT compilation, thread pools), then a
    thread samples the resident set every 0.2 ms during the measured step. Both libraries are
    measured the same way.
    """
    import threading

    cfg = Config(**json.loads(cfg_json))
    threads = blas_info()["threads"] or 1
    make = (
        (lambda c: rnnlab_step(kind, c, "train"))
        if lib == "rnnlab"
        else (lambda c: torch_step(kind, c, "train", threads))
    )
    # warm-up on tiny problems, one with a batch big enough for rnnlab's parallel row blocks
    # (they start numba's thread pool) and one with the step's own batch (whose loop may be
    # the serial kernel, loaded from numba's cache on first use: ~2.4 MiB that are not the
    # step's memory either)
    for n in sorted({32, cfg.N}):
        make(Config(3, n, 2, 4, cfg.layers, cfg.bidirectional))()
    step = make(cfg)
    before = peak = _rss()
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss())
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    step()
    done.set()
    sampler.join()
    peak = max(peak, _rss())
    return (peak - before) / 2**20


def peak_memory(lib, kind, cfg):
    code = f"import sys, rnnlab.bench as b; print(b._peak_rss_child({lib!r}, {kind!r}, sys.argv[1]))"
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(asdict(cfg))], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def run(
    configs,
    kinds=("lstm", "gru"),
    modes=("train", "infer"),
    reps=5,
    memory=True,
    with_torch=None,
    progress=print,
    block=BLOCK,
    peak=None,
    stream=True,
):
    """Time every (kind, config, mode), then (``stream``) each kind's streaming row; return a
    list of result dicts. ``peak``: the machine's GF/s (``bench_limits.peak_gflops``), for each
    row's share of it."""
    from rnnlab import bench_limits

    with_torch = have_torch() if with_torch is None else with_torch
    threads = blas_info()["threads"] or 1
    rows = []
    for kind in kinds:
        for cfg in configs:
            for mode in modes:
                r = {"kind": kind, "config": cfg.name, **asdict(cfg), "mode": mode}
                fns = [rnnlab_step(kind, cfg, mode)]
                if with_torch:
                    fns.append(torch_step(kind, cfg, mode, threads))
                timed = _time(fns, reps, block=block)
                ours = timed[0]
                r["rnnlab_ms"] = 1e3 * statistics.median(ours)
                r["rnnlab_spread_ms"] = [1e3 * min(ours), 1e3 * max(ours)]
                r["reps"], r["block"] = len(ours), block
                if with_torch:
                    theirs = timed[1]
                    r["torch_ms"] = 1e3 * statistics.median(theirs)
                    r["torch_spread_ms"] = [1e3 * min(theirs), 1e3 * max(theirs)]
                    r["ratio"] = r["rnnlab_ms"] / r["torch_ms"]
                if memory and mode == "train":
                    r["rnnlab_peak_mib"] = peak_memory("rnnlab", kind, cfg)
                    if with_torch:
                        r["torch_peak_mib"] = peak_memory("torch", kind, cfg)
                rows.append(bench_limits.add_rates(r, kind, cfg, peak))
                progress(format_row(r))
    for kind in kinds if stream else ():
        rows.append(bench_limits.streaming(kind, reps, with_torch, threads))
        progress(format_row(rows[-1]))
    return rows


HEADER = (
    "| cell | config (T,N,I,H) | mode | rnnlab ms (min-max) | torch ms (min-max) | ratio "
    "| GF/s rnnlab / torch | rnnlab share of peak | peak MiB rnnlab / torch |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def format_row(r):
    ours = f"{r['rnnlab_ms']:.2f} ({r['rnnlab_spread_ms'][0]:.2f}-{r['rnnlab_spread_ms'][1]:.2f})"
    theirs = ratio = "-"
    if "torch_ms" in r:
        theirs = f"{r['torch_ms']:.2f} ({r['torch_spread_ms'][0]:.2f}-{r['torch_spread_ms'][1]:.2f})"
        ratio = f"**{r['ratio']:.2f}**"
    mem = "-"
    if "rnnlab_peak_mib" in r:
        mem = f"{r['rnnlab_peak_mib']:.1f} / {r.get('torch_peak_mib', float('nan')):.1f}"
    rates = share = "-"
    if "rnnlab_gflops" in r:
        rates = f"{r['rnnlab_gflops']:.0f} / " + (f"{r['torch_gflops']:.0f}" if "torch_gflops" in r else "-")
    if "rnnlab_share_of_peak" in r:
        share = f"{100 * r['rnnlab_share_of_peak']:.0f}%"
    cells = (r["kind"], r["config"], r["mode"], ours, theirs, ratio, rates, share, mem)
    return "| " + " | ".join(cells) + " |"


def environment():
    from rnnlab import bench_limits
    from rnnlab.nn import runtime
    from rnnlab.nn.backend import tuning

    blas = blas_info()
    engine = runtime.describe()
    env = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": tuning.cpu_model(),
        "cores": os.cpu_count(),
        "numpy": np.__version__,
        "blas": blas,
        "python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "engine": engine,
        # threads the LSTM's parallel row blocks may use (numba's OpenMP layer), else 1
        "row_block_threads": engine["row_block_threads"],
        "peak_sgemm": bench_limits.peak_gflops(),  # the machine's own large-GEMM rate
    }
    if have_torch():
        import torch

        env["torch"] = torch.__version__
    return env


def describe_environment(env) -> str:
    """One line: the machine, NumPy's BLAS, what rnnlab's engine runs on, torch, the machine's
    large-SGEMM rate and which GEMM library runs which products."""
    from rnnlab import bench_limits

    b, e = env["blas"], env["engine"]
    gemm = f"GEMM {e['gemm']} x{e['threads']}" if e["gemm"] else "no GEMM library for the compiled loops"
    return (
        f"{env['date']} on {env['cpu']} ({env['cores']} cores), numpy {env['numpy']}, "
        f"BLAS {b.get('internal_api')} {b.get('architecture', '')} x{b.get('threads')}, "
        f"rnnlab backend {e['backend']}, {gemm}, row blocks x{env['row_block_threads']}, "
        f"torch {env.get('torch', 'not installed')}; largest SGEMM {env['peak_sgemm']['gflops']} GF/s "
        f"({env['peak_sgemm']['library']}); {bench_limits.format_choice(e)}"
    )


def add_parser(sub):
    p = sub.add_parser(
        "bench",
        help="time rnnlab's LSTM/GRU (and PyTorch's, if installed)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--full", action="store_true", help="all six configurations of benchmarks/ (slower)")
    p.add_argument(
        "--reps", type=cliargs.positive_int, default=5, help="timed repetitions after warm-up (default 5)"
    )
    p.add_argument(
        "--block",
        type=cliargs.positive_int,
        default=BLOCK,
        help=f"timed calls in a row per library, alternating (default {BLOCK}; 1: rep by rep)",
    )
    p.add_argument("--cells", choices=["lstm", "gru", "both"], default="both")
    p.add_argument("--no-torch", action="store_true", help="time rnnlab only")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-stream", action="store_true", help="skip the streaming rows (1,000 single steps)")
    bench_precision.add_argument(p)
    p.add_argument(
        "--tune",
        action="store_true",
        help="time the GEMM libraries again on this machine, cache the choice and print the table first",
    )
    p.add_argument(
        "--report",
        "--json",
        metavar="FILE.json",
        type=cliargs.output_file(".json"),
        help="also write the results as JSON here (- : standard output, the table then goes to stderr)",
    )
    p.set_defaults(func=_cli)
    return p


def _tune() -> None:
    """``--tune``: time the GEMM libraries again and print the table of the choice."""
    from rnnlab import bench_limits
    from rnnlab.nn.backend.tuning import CONTENDED

    entry = bench_limits.retune()
    if not entry:
        print("# --tune: no GEMM library loads here (the NumPy loop runs)")
        return
    print(f"# GEMM libraries timed on {entry['key']['cpu']}, {entry['key']['threads']} threads")
    print(bench_limits.tune_table(entry) + "\n")
    share = entry.get("contention")
    if share is not None and share > CONTENDED:
        print(
            f"# other processes took {share:.0%} of the timed threads' time: this choice is"
            " used by this run only, not cached (run --tune again when the machine is quiet)\n"
        )


def _cli(args):
    if args.report:
        from rnnlab.io import check_output_path

        check_output_path(args.report, ".json", "--report")  # before the run, not after it
    if args.tune:
        _tune()
    if args.precision:  # after --tune: the float32 side runs the GEMM choice just timed
        return bench_precision.cli(args, FULL if args.full else QUICK, _time, blas_info()["threads"] or 1)
    env = environment()
    print("# " + describe_environment(env))
    print(HEADER)
    kinds = ("lstm", "gru") if args.cells == "both" else (args.cells,)
    rows = run(
        FULL if args.full else QUICK,
        kinds,
        reps=args.reps,
        memory=not args.no_memory,
        with_torch=False if args.no_torch else None,
        block=args.block,
        peak=env["peak_sgemm"]["gflops"],
        stream=not args.no_stream,
    )
    if args.report:
        from rnnlab.io import write_report

        write_report(args.report, {"environment": env, "results": rows})
        print(f"results written to {args.report}")
    return 0
