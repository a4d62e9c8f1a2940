"""Which GEMM library runs which products on this machine: chosen by timing, never by vendor.

The same library is not the fastest everywhere (MKL does not run its AVX-512 kernels on AMD
processors; benchmarks/RESULTS.md has the rates). So the products the loops make are sorted into
classes by the rows of a step (the batch, or a row block) and the size of the weight, and for
each class every GEMM library that loads here is timed on a representative product, both ways
the loops use it (``h @ W^T`` forward, ``da @ W`` backward), with each library's own operand
(MKL packs the weights, OpenBLAS and oneDNN get them C-contiguous). The fastest wins the class.

The choice is cached in ``$XDG_CACHE_HOME/rnnlab/gemm-choice.json`` (``~/.cache`` by default;
``RNNLAB_CACHE_DIR`` moves it), keyed by the CPU model, the thread count and the libraries'
versions: the first use on a machine measures (about 1-3 s), later runs read it.
A measurement that other processes got in the way of is not cached (``contention``).
``rnnlab bench --tune`` measures again and prints the table. ``RNNLAB_TUNE=0`` skips the
measurement (then the first library of ``ORDER`` that loads runs everything).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import time

import numpy as np

from rnnlab.io import write_json

ORDER = ("onednn", "mkl", "openblas")  # the fallback order without a measurement
ROWS = (8, 24, 48, 256)  # row classes: M <= 8, <= 24, <= 48, <= 256, more (the hoisted products)
ROW_REP = (7, 16, 32, 64, 320)
SIZES = (1 << 17, 1 << 20)  # weight classes by K * Nc: <= 128k, <= 1M, more
SIZE_REP = ((128, 512), (384, 1536), (640, 2560))
FORMAT = 1


def shape_class(M: int, K: int, Nc: int) -> str:
    """The class of the product ``(M, K) @ (K, Nc)``, e.g. ``"m1-s2"``."""
    m = sum(M > r for r in ROWS)
    s = sum(K * Nc > z for z in SIZES)
    return f"m{m}-s{s}"


def classes():
    return [f"m{m}-s{s}" for m in range(len(ROW_REP)) for s in range(len(SIZE_REP))]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _key(libs, threads) -> dict:
    return {
        "format": FORMAT,
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "threads": threads,
        "libraries": {name: lib.version() for name, lib in sorted(libs.items())},
    }


def cache_path() -> str:
    folder = os.environ.get("RNNLAB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "rnnlab"
    )
    return os.path.join(folder, "gemm-choice.json")


def _time(lib, M, K, Nc, transposed, budget=0.01):
    """Seconds per product on this library through the compiled loops' own call (``loops``):
    the best of three runs of about ``budget / 4`` each."""
    loops = importlib.import_module("rnnlab.nn.backend.loops")  # numba (optional, slow): only to time
    W, a = _data((Nc, K) if transposed else (K, Nc)), _data((M, K))
    b = W.T if transposed else W  # forward: h @ W^T; backward: da @ W
    out = np.empty((M, Nc), np.float32)
    op = lib.operand(b, M, 1 << 10)
    loops.gemm_repeat(*lib.compiled, a, op.operand, out, 1)  # warm: compiled, pages in, threads up
    n, spent = 1, 0.0
    while spent < budget / 4 and n < 1 << 12:
        n *= 2
        t0 = time.perf_counter()
        loops.gemm_repeat(*lib.compiled, a, op.operand, out, n)
        spent = time.perf_counter() - t0
    for _ in range(2):
        t0 = time.perf_counter()
        loops.gemm_repeat(*lib.compiled, a, op.operand, out, n)
        spent = min(spent, time.perf_counter() - t0)
    return spent / n


def _data(shape):
    """A (shape) block of uniform floats from one buffer made once (the timing's inputs)."""
    if not _buffer:
        size = max(max(K, Nc) * max(ROW_REP + (K, Nc)) for K, Nc in SIZE_REP)
        _buffer.append(np.random.default_rng(0).random(size, dtype=np.float32) - 0.5)
    return _buffer[0][: shape[0] * shape[1]].reshape(shape)


_buffer: list = []


def measure(libs: dict, budget=0.01, threads: int | None = None) -> dict:
    """``{class: {library: GF/s}}`` for every class (both orientations, summed time).

    One library at a time, with a pause between libraries: OpenBLAS' threads spin for a while
    after a call, and an OpenMP library timed meanwhile shares the cores with them and reads
    far too slow. ``threads``: each library is set to that many for its timing (and set back
    after), so that no library is timed on a count some earlier code left behind (a library
    timed on one thread where the key says two made a wrong choice, cached)."""
    table: dict = {c: {} for c in classes()}
    try:
        for i, (name, lib) in enumerate(libs.items()):
            if i:
                time.sleep(0.25)
            before = lib.get_threads()
            if threads is not None:
                lib.set_threads(threads)
            try:
                _measure_one(table, name, lib, budget)
            finally:
                lib.set_threads(before)
    finally:
        _buffer.clear()  # 26 MB of timing data, not kept for the life of the process
    return table


def _measure_one(table, name, lib, budget):
    for m, M in enumerate(ROW_REP):
        for s, (K, Nc) in enumerate(SIZE_REP):
            seconds = _time(lib, M, K, Nc, True, budget) + _time(lib, M, Nc, K, False, budget)
            table[f"m{m}-s{s}"][name] = round(2 * 2.0 * M * K * Nc / seconds / 1e9, 1)


def choose(table: dict, pools: dict) -> dict:
    """``{class: library}``: the fastest library per class, within one thread pool.

    ``pools``: {library: the threads it runs on} (``gemm.Library.pool``: OpenBLAS its own
    pthreads, MKL's GNU layer and oneDNN GNU OpenMP). Libraries on different pools are never
    mixed: alternating them in one loop leaves each pool's spinning threads in the other's way.
    Each pool's best libraries are scored by the time they would take over all classes (one
    product each), and the pool with the least time runs everything."""
    best: dict = {}
    for pool in sorted(set(pools.values())):
        pick, seconds = {}, 0.0
        for c, rates in table.items():
            mine = {n: r for n, r in rates.items() if pools.get(n) == pool and r > 0}
            if not mine:
                break
            pick[c] = max(mine, key=lambda n: mine[n])
            seconds += _flop(c) / mine[pick[c]]
        else:
            if not best or seconds < best["seconds"]:
                best = {"choice": pick, "seconds": seconds}
    return best.get("choice", {})


def _flop(c: str) -> float:
    m, s = int(c[1 : c.index("-")]), int(c[c.index("s") + 1 :])
    K, Nc = SIZE_REP[s]
    return 2.0 * ROW_REP[m] * K * Nc


def load_choice(libs, threads):
    """The cached ``{"choice": {class: library}, "table": ...}`` for these libraries, or None."""
    try:
        with open(cache_path(), encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    entry = saved.get(_digest(_key(libs, threads))) if isinstance(saved, dict) else None
    if not isinstance(entry, dict) or set(entry.get("choice", {}).values()) - set(libs):
        return None
    return entry


CONTENDED = 0.25  # a measurement is not cached when others took this share of its threads' time


def _cpu_jiffies():
    """(busy, total) clock ticks of the whole machine since boot (``/proc/stat``), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def contention(run, threads: int):
    """``(run(), share)``: ``share`` is the part of ``threads`` cores' time during ``run`` that
    other processes took beyond the cores this process leaves free (0: nobody in the way;
    None: not measurable here). A choice is cached for every later run on the machine, so one
    timed while a build or another job held a core would stay wrong (a busy process beside a
    two-thread timing on a two-core machine takes about half)."""
    before, own0, t0 = _cpu_jiffies(), os.times(), time.perf_counter()
    result = run()
    after, own1, wall = _cpu_jiffies(), os.times(), time.perf_counter() - t0
    if before is None or after is None or after[1] <= before[1] or wall <= 0:
        return result, None
    tick = (after[1] - before[1]) / (os.cpu_count() or 1) / wall  # ticks per core-second
    others = (after[0] - before[0]) / tick - (own1.user + own1.system - own0.user - own0.system)
    spare = max((os.cpu_count() or 1) - threads, 0) * wall  # core-seconds we do not use
    return result, max(others - spare, 0.0) / (max(threads, 1) * wall)


def tune(libs: dict, threads: int, budget=0.01) -> dict:
    """Measure, choose, cache; returns the entry (``choice``, ``table``, ``key``, ``date``,
    ``contention``). A measurement that other processes contended (``contention``, above
    ``CONTENDED``) is used by this process only: the next one measures again."""
    table, share = contention(lambda: measure(libs, budget, threads), threads)
    key = _key(libs, threads)
    entry = {
        "choice": choose(table, {n: lib.pool for n, lib in libs.items()}),
        "table": table,
        "key": key,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "contention": None if share is None else round(share, 3),
    }
    if share is not None and share > CONTENDED:
        return entry
    path = cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError):
            saved = {}
        saved = saved if isinstance(saved, dict) else {}
        saved[_digest(key)] = entry
        write_json(path, saved)
    except OSError:
        pass  # a read-only home: measure each run
    return entry


def _digest(key) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def enabled() -> bool:
    return os.environ.get("RNNLAB_TUNE", "1").strip() not in ("0", "no", "off", "false")
