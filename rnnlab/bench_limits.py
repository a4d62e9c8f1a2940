"""What bounds the benchmark (``rnnlab bench``, ``benchmarks/run.py``): the work of a pass, the
machine's own GEMM rate, the latency of one step, and which GEMM library runs.

- **FLOP of a pass.** Per layer and direction, a step multiplies ``[x_t, h_{t-1}]`` (I_l + H)
  by the G gate blocks (LSTM G = 4, GRU 3): ``2 G T N H (I_l + H)`` FLOP forward (LSTM one
  layer: ``8 T N H (I + H)``). Training adds the two products of backward (``dx, dh`` and
  ``dU, dW``) of the same size: three times the forward. The gate arithmetic is not counted.
- **The machine's rate.** The best large square float32 GEMM (1024 and 2048) of any library
  that loads here, measured in the same run: a pass at that rate would be all GEMM at
  the machine's best, so ``achieved / peak`` says how close to the hardware a row is.
- **Streaming.** 1,000 single steps at N = 1 (an online forecaster's call) through
  ``StackedCell.step``, against ``torch.nn.LSTMCell`` / ``GRUCell`` in a Python loop: what
  is timed there is per-step overhead.
"""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Any

import numpy as np

STREAM = {"steps": 1000, "N": 1, "I": 8, "H": 256}
GATES = {"lstm": 4, "gru": 3}


def flop(kind: str, cfg, mode: str) -> float:
    """FLOP of one pass (``mode`` "infer": forward; "train": forward + backward)."""
    D = 2 if cfg.bidirectional else 1
    total = 0.0
    for layer in range(cfg.layers):
        inputs = cfg.I if layer == 0 else D * cfg.H
        total += D * 2.0 * GATES[kind] * cfg.T * cfg.N * cfg.H * (inputs + cfg.H)
    return total * (3 if mode == "train" else 1)


def peak_gflops(sizes=(1024, 2048), reps: int = 3) -> dict:
    """``{"gflops", "library", "size"}``: the best rate of a square float32 product of each size
    over every GEMM library that loads (and NumPy's own), best of ``reps`` each."""
    from rnnlab.nn import backend
    from rnnlab.nn.backend import tuning

    libs = {"numpy": None, **{n: lib for n in tuning.ORDER if (lib := backend.library(n)) is not None}}
    rng = np.random.default_rng(0)
    best: dict[str, float | str | None] = {"gflops": 0.0, "library": None, "size": None}
    for name, lib in libs.items():
        for size in sizes:
            a, b = (rng.random((size, size), dtype=np.float32) for _ in range(2))
            out = np.empty((size, size), np.float32)
            fn = partial(np.matmul, a, b, out=out) if lib is None else partial(lib.matmul, a, b, out)
            fn()  # warm: threads up, pages in
            rate = 2.0 * size**3 / min(_seconds(fn) for _ in range(reps)) / 1e9
            if rate > best["gflops"]:
                best.update(gflops=round(rate, 1), library=name, size=size)
        time.sleep(0.2)  # one library's spinning threads out of the next one's way
    return best


def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def add_rates(row: dict, kind: str, cfg, peak: float | None) -> dict:
    """GF/s of both libraries' medians, and rnnlab's share of ``peak``, into ``row``."""
    work = flop(kind, cfg, row["mode"])
    row["gflop"] = work / 1e9
    row["rnnlab_gflops"] = work / (row["rnnlab_ms"] * 1e6)
    if "torch_ms" in row:
        row["torch_gflops"] = work / (row["torch_ms"] * 1e6)
    if peak:
        row["rnnlab_share_of_peak"] = row["rnnlab_gflops"] / peak
    return row


def torch_steps(tcell, kind: str, xt, H: int, bf16: bool = False):
    """A function that steps PyTorch's ``tcell`` (an ``LSTMCell`` or ``GRUCell``, ``kind``
    "lstm" or "gru") over every step of ``xt`` (T, N, I) from zero states, in inference mode,
    under bf16 autocast when ``bf16`` (the streaming rows' PyTorch side)."""
    import torch

    def run():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            h = c = torch.zeros(xt.shape[1], H)
            for t in range(xt.shape[0]):
                if kind == "lstm":
                    h, c = tcell(xt[t], (h, c))
                else:
                    h = tcell(xt[t], h)

    return run


def streaming(kind: str, reps: int = 5, with_torch: bool = True, threads: int = 1) -> dict:
    """Median ms of ``STREAM["steps"]`` single steps, rnnlab's and PyTorch's, and their ratio."""
    import rnnlab.nn as rnn
    from rnnlab.nn.stepping import StackedCell

    T, N, I, H = STREAM["steps"], STREAM["N"], STREAM["I"], STREAM["H"]
    x = np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32)
    cell = StackedCell((rnn.LSTM if kind == "lstm" else rnn.GRU)(I, H, seed=0))

    def ours():
        state = cell.initial_state(N)
        with rnn.inference_mode():
            for t in range(T):
                _, state = cell.step(x[t], state)

    fns = [ours]
    if with_torch:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
        tcell = (torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell)(I, H)
        fns.append(torch_steps(tcell, kind, torch.from_numpy(x), H))
    times: list = [[] for _ in fns]
    for fn in fns:
        fn()  # warm-up
    for _ in range(reps):  # alternating, rep by rep: both see the same load
        for fn, ts in zip(fns, times):
            ts.append(_seconds(fn))
    row: dict[str, Any] = {
        "kind": kind,
        "config": f"stream {T}x(N={N},I={I},H={H})",
        "mode": "step",
        "reps": reps,
    }
    row["rnnlab_ms"] = 1e3 * statistics.median(times[0])
    row["rnnlab_spread_ms"] = [1e3 * min(times[0]), 1e3 * max(times[0])]
    if with_torch:
        row["torch_ms"] = 1e3 * statistics.median(times[1])
        row["torch_spread_ms"] = [1e3 * min(times[1]), 1e3 * max(times[1])]
        row["ratio"] = row["rnnlab_ms"] / row["torch_ms"]
    return row


def format_choice(engine: dict) -> str:
    """Which library runs which class of products, as a line (``runtime.describe()``)."""
    choice = engine.get("gemm_choice") or {}
    if not choice:
        return "GEMM choice: none (no GEMM library for the compiled loops)"
    by_lib: dict = {}
    for c, name in sorted(choice.items()):
        by_lib.setdefault(name, []).append(c)
    versions = engine.get("gemm_versions") or {}
    parts = [f"{n} ({versions.get(n, '?')}): {len(cs)} of {len(choice)} classes" for n, cs in by_lib.items()]
    return "GEMM choice: " + "; ".join(parts)


def tune_table(entry: dict) -> str:
    """The measured ``{class: {library: GF/s}}`` as a Markdown table, the chosen one in bold."""
    from rnnlab.nn.backend import tuning

    table, choice = entry["table"], entry["choice"]
    names = sorted({n for rates in table.values() for n in rates})
    lines = [
        "| class | rows M | weight (K, Nc) | " + " | ".join(f"{n} GF/s" for n in names) + " |",
        "|---|---|---|" + "---:|" * len(names),
    ]
    for c in tuning.classes():
        m, s = int(c[1 : c.index("-")]), int(c[c.index("s") + 1 :])
        rates = [f"**{table[c][n]}**" if choice.get(c) == n else f"{table[c].get(n, '-')}" for n in names]
        K, Nc = tuning.SIZE_REP[s]
        lines.append(f"| {c} | {tuning.ROW_REP[m]} | ({K}, {Nc}) | " + " | ".join(rates) + " |")
    return "\n".join(lines)


def retune() -> dict:
    """Measure the GEMM libraries again (``rnnlab bench --tune``): the new cache entry."""
    from rnnlab.nn import backend
    from rnnlab.nn.backend import tuning

    libs = {n: lib for n in tuning.ORDER if (lib := backend.library(n)) is not None}
    if not libs:
        return {}
    threads = next(iter(libs.values())).get_threads()
    entry = tuning.tune(libs, threads)
    backend.forget_choice()
    return entry
