"""`rnnlab bench --precision`: which precision runs inference faster than float32 here, per
shape class (issue 32, item 3).

For each inference configuration of ``rnnlab bench`` (the quick three, or ``--full``'s six) and
each cell, the float32 layer (under ``rnnlab.nn.inference_mode``) and its int8 and bf16 copies
(``rnnlab.nn.quantize_dynamic``) run the same data in one process, in alternating blocks (the
harness of ``rnnlab bench``); the table gives the medians, the ratios to float32 and which
reduced precisions are offered for that shape: only those faster than float32 here ("int8
bf16", or "float32" when neither is), which is what ``translate`` and ``forecast predict
--precision`` decide with their own probe. Lines above it say which GEMMs run the products
(oneDNN's ``dnnl_gemm_u8s8s32`` and ``dnnl_gemm_bf16bf16f32``, or NumPy's and why). Nothing is
chosen by the CPU's name.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rnnlab.nn import GRU, LSTM, inference_mode, quantize_dynamic
from rnnlab.nn.backend import bf16gemm, intgemm, packed
from rnnlab.nn.quantize import PRECISIONS

MIN_TIME = 0.2  # seconds of timed calls per row at least (unless ``reps`` give more)
REDUCED = PRECISIONS[1:]
HEADER = (
    "| cell | config (T,N,I,H) | float32 ms (min-max) | int8 ms (min-max) | bf16 ms (min-max) "
    "| int8 / float32 | bf16 / float32 | offered here |\n|---|---|---|---|---|---|---|---|"
)


def add_argument(p) -> None:
    p.add_argument(
        "--precision",
        action="store_true",
        help="time float32 against int8 and bf16 (quantize_dynamic) inference at the configurations, "
        "print which precisions are offered per shape here, and stop (no PyTorch, no training rows)",
    )


def steps(kind: str, cfg: Any, seed: int = 0) -> list[Callable[[], Any]]:
    """The float32, int8 and bf16 inference calls of one ``kind`` layer at ``cfg`` (same data)."""
    cls = LSTM if kind == "lstm" else GRU
    m = cls(cfg.I, cfg.H, num_layers=cfg.layers, bidirectional=cfg.bidirectional, seed=seed)
    m.eval()
    reduced = [quantize_dynamic(m, dtype) for dtype in REDUCED]
    x = np.random.default_rng(seed).standard_normal((cfg.T, cfg.N, cfg.I)).astype(np.float32)

    def float32():
        with inference_mode():
            m(x)

    return [float32, *[lambda q=q: q(x) for q in reduced]]


def row(kind: str, cfg: Any, timer: Callable, reps: int, block: int) -> dict:
    """One row: every precision's median and spread (ms), the ratios to float32 and which
    reduced precisions are offered (faster than float32)."""
    timed = timer(steps(kind, cfg), reps, min_time=MIN_TIME, block=block)
    r: dict[str, Any] = {"kind": kind, "config": cfg.name, "T": cfg.T, "N": cfg.N, "I": cfg.I, "H": cfg.H}
    r.update(layers=cfg.layers, bidirectional=cfg.bidirectional, reps=len(timed[0]), block=block)
    for name, ts in zip(PRECISIONS, timed):
        r[f"{name}_ms"] = 1e3 * statistics.median(ts)
        r[f"{name}_spread_ms"] = [1e3 * min(ts), 1e3 * max(ts)]
    for name in REDUCED:
        r[f"{name}_ratio"] = r[f"{name}_ms"] / r["float32_ms"]
        r[f"{name}_offered"] = r[f"{name}_ratio"] < 1
    return r


def offered(r: dict) -> str:
    """The precisions offered for row ``r``: "int8 bf16", "int8", ..., or "float32"."""
    return " ".join(name for name in REDUCED if r[f"{name}_offered"]) or "float32"


def format_row(r: dict) -> str:
    def ms(name):
        lo, hi = r[f"{name}_spread_ms"]
        return f"{r[f'{name}_ms']:.2f} ({lo:.2f}-{hi:.2f})"

    ratios = [f"**{r[f'{name}_ratio']:.2f}**" for name in REDUCED]
    cells = (r["kind"], r["config"], *[ms(name) for name in PRECISIONS], *ratios, offered(r))
    return "| " + " | ".join(cells) + " |"


def gemm_lines(gemms: dict) -> list[str]:
    """What runs the int8 and the bf16 products, a line each (``intgemm.describe()``,
    ``bf16gemm.describe()``)."""
    i8, b16 = gemms["int8"], gemms["bf16"]
    lines = [
        "int8 GEMM: oneDNN's integer GEMM loaded (dnnl_gemm_u8s8s32, exact here)"
        if i8["int8_gemm"] == "onednn"
        else f"int8 GEMM: NumPy's int32 matmul (oneDNN's integer GEMM not used: {i8['fallback_reason']})"
    ]
    native = {
        True: "the CPU has bf16 dot products",
        False: "the CPU emulates bf16",
        None: "CPU flags unknown",
    }
    if b16["bf16_gemm"] == "onednn":
        lines.append(f"bf16 GEMM: oneDNN's dnnl_gemm_bf16bf16f32 ({native[b16['native_bf16']]})")
    else:
        lines.append(f"bf16 GEMM: NumPy's float32 matmul (oneDNN's not used: {b16['fallback_reason']})")
    for kind, how in gemms.get("packed", {}).items():  # packed.describe(): True or why not
        lines.append(
            f"{kind} steps: oneDNN's matmul primitive on packed weights"
            if how is True
            else f"{kind} steps: the GEMM above (packed weights not used: {how})"
        )
    return lines


def run(
    configs: Sequence[Any],
    kinds: Sequence[str],
    timer: Callable,
    reps: int = 5,
    block: int = 4,
    progress: Callable[[str], Any] = print,
) -> dict:
    """Time every (kind, config) at every precision; ``{"int8": intgemm.describe(), "bf16":
    bf16gemm.describe(), "packed": packed.describe(), "rows": [...]}``. ``timer``:
    ``rnnlab.bench._time`` (alternating blocks after a warm-up)."""
    gemms = {"int8": intgemm.describe(), "bf16": bf16gemm.describe(), "packed": packed.describe()}
    for line in gemm_lines(gemms):
        progress("# " + line)
    progress(HEADER)
    rows = []
    for kind in kinds:
        for cfg in configs:
            rows.append(row(kind, cfg, timer, reps, block))
            progress(format_row(rows[-1]))
    for name in REDUCED:
        n = sum(r[f"{name}_offered"] for r in rows)
        progress(f"# {name} offered for {n} of {len(rows)} shapes (faster than float32 here)")
    return {**gemms, "rows": rows}


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

        env.update(int8=result["int8"], bf16=result["bf16"])
        write_report(args.report, {"environment": env, "precision": result["rows"]})
        print(f"results written to {args.report}")
    return 0
