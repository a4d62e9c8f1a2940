"""`rnnlab bench --precision`: which precision runs inference faster than float32 here, per
shape class (issue 32, item 3).

For each inference configuration of ``rnnlab bench`` (the quick three, or ``--full``'s six) and
each cell, the float32 layer (under ``rnnlab.nn.inference_mode``) and its int8 copy
(``rnnlab.nn.quantize_dynamic``) run the same data in one process, in alternating blocks (the
harness of ``rnnlab bench``); the table gives both medians, the ratio int8 / float32 and whether
int8 is offered for that shape: only where it was faster here ("faster here"), else
"slower: float32", which is what ``translate`` and ``forecast predict --precision int8`` decide
with their own probe. A line above it says which integer GEMM runs the products (oneDNN's
``dnnl_gemm_u8s8s32``, or NumPy's int32 matmul and why). Nothing is chosen by the CPU's name.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rnnlab.nn import GRU, LSTM, inference_mode, quantize_dynamic
from rnnlab.nn.backend import intgemm
from rnnlab.nn.quantize import PRECISIONS

MIN_TIME = 0.2  # seconds of timed calls per row at least (unless ``reps`` give more)
HEADER = (
    "| cell | config (T,N,I,H) | float32 ms (min-max) | int8 ms (min-max) | int8 / float32 | int8 |\n"
    "|---|---|---|---|---|---|"
)
FASTER, SLOWER = "faster here", "slower: float32"


def add_argument(p) -> None:
    p.add_argument(
        "--precision",
        action="store_true",
        help="time float32 against int8 (quantize_dynamic) inference at the configurations, print "
        "which precision is offered per shape here, and stop (no PyTorch, no training rows)",
    )


def steps(kind: str, cfg: Any, seed: int = 0) -> list[Callable[[], Any]]:
    """The float32 and the int8 inference call of one ``kind`` layer at ``cfg`` (same data)."""
    cls = LSTM if kind == "lstm" else GRU
    m = cls(cfg.I, cfg.H, num_layers=cfg.layers, bidirectional=cfg.bidirectional, seed=seed)
    m.eval()
    q = quantize_dynamic(m)
    x = np.random.default_rng(seed).standard_normal((cfg.T, cfg.N, cfg.I)).astype(np.float32)

    def float32():
        with inference_mode():
            m(x)

    return [float32, lambda: q(x)]


def row(kind: str, cfg: Any, timer: Callable, reps: int, block: int) -> dict:
    """One row: both precisions' medians and spreads (ms), the ratio and whether int8 is offered."""
    timed = timer(steps(kind, cfg), reps, min_time=MIN_TIME, block=block)
    r: dict[str, Any] = {"kind": kind, "config": cfg.name, "T": cfg.T, "N": cfg.N, "I": cfg.I, "H": cfg.H}
    r.update(layers=cfg.layers, bidirectional=cfg.bidirectional, reps=len(timed[0]), block=block)
    for name, ts in zip(PRECISIONS, timed):
        r[f"{name}_ms"] = 1e3 * statistics.median(ts)
        r[f"{name}_spread_ms"] = [1e3 * min(ts), 1e3 * max(ts)]
    r["ratio"] = r["int8_ms"] / r["float32_ms"]
    r["int8_offered"] = r["ratio"] < 1
    return r


def format_row(r: dict) -> str:
    def ms(name):
        lo, hi = r[f"{name}_spread_ms"]
        return f"{r[f'{name}_ms']:.2f} ({lo:.2f}-{hi:.2f})"

    offered = FASTER if r["int8_offered"] else SLOWER
    cells = (r["kind"], r["config"], ms("float32"), ms("int8"), f"**{r['ratio']:.2f}**", offered)
    return "| " + " | ".join(cells) + " |"


def gemm_line(gemm: dict) -> str:
    """What runs the int8 products, in one line (``intgemm.describe()``)."""
    if gemm["int8_gemm"] == "onednn":
        return "int8 GEMM: oneDNN's integer GEMM loaded (dnnl_gemm_u8s8s32, exact here)"
    return f"int8 GEMM: NumPy's int32 matmul (oneDNN's integer GEMM not used: {gemm['fallback_reason']})"


def run(
    configs: Sequence[Any],
    kinds: Sequence[str],
    timer: Callable,
    reps: int = 5,
    block: int = 4,
    progress: Callable[[str], Any] = print,
) -> dict:
    """Time every (kind, config) at both precisions; ``{"int8_gemm": ..., "rows": [...]}``.
    ``timer``: ``rnnlab.bench._time`` (alternating blocks after a warm-up)."""
    gemm = intgemm.describe()
    progress("# " + gemm_line(gemm))
    progress(HEADER)
    rows = []
    for kind in kinds:
        for cfg in configs:
            rows.append(row(kind, cfg, timer, reps, block))
            progress(format_row(rows[-1]))
    offered = sum(r["int8_offered"] for r in rows)
    progress(f"# int8 offered for {offered} of {len(rows)} shapes (faster than float32 here)")
    return {**gemm, "rows": rows}


def environment(threads: int) -> dict:
    import os
    import time

    from rnnlab.nn.backend import tuning

    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": tuning.cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
    }


def cli(args: Any, configs: Sequence[Any], timer: Callable, threads: int) -> int:
    """``rnnlab bench --precision``: print the table (and write ``--report`` JSON). ``threads``:
    what ``rnnlab.bench.blas_info`` set rnnlab's loops to."""
    env = environment(threads)
    print(f"# {env['date']} on {env['cpu']} ({env['cores']} cores), {threads} threads, inference only")
    kinds = ("lstm", "gru") if args.cells == "both" else (args.cells,)
    result = run(configs, kinds, timer, reps=args.reps, block=args.block)
    if args.report:
        from rnnlab.io import write_report

        env.update(int8_gemm=result["int8_gemm"], fallback_reason=result["fallback_reason"])
        write_report(args.report, {"environment": env, "precision": result["rows"]})
        print(f"results written to {args.report}")
    return 0
