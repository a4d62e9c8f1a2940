"""Load on `rnnlab translate serve` over loopback: C concurrent clients x R requests each.

    python benchmarks/serve_load.py --model runs/fr [--clients 1 8 32] [--requests 50] [--warmup 8]

For each server configuration (``--configs``; default: ``unbatched``, one request at a time as
before dynamic batching, ``--max-batch 1``, and ``batched``, the defaults) and each client count,
starts the real server process on a free port, waits for /health, then every client posts R
requests of S sentences (taken in turn from a fixed list) and records each latency. Before the
clients start, ``--warmup`` requests are sent one after the other and not counted (the first
calls of a fresh process pay for loading the compiled loops and for first-touch memory: that
cold start is printed on its own, as ``first ms``, instead of landing in the p95 of a short
run). Prints requests/s, sentences/s, p50/p95/max latency of the timed requests, errors (any
status but 200, or a transport error) and the server's peak resident memory (VmHWM); each run
is bounded by --timeout.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

SENTENCES = [
    "Tom is reading a book.",
    "I like cats.",
    "Where is the station?",
    "We will go to the beach tomorrow.",
    "She doesn't want to eat.",
    "It is raining.",
    "Can you help me?",
    "The children are playing in the garden.",
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIGS = {
    "unbatched": ["--max-batch", "1", "--max-wait-ms", "0"],  # one request at a time, as before
    "batched": [],  # the defaults: a batch is every request waiting when the model is free
    "wait10": ["--max-wait-ms", "10"],  # ... and what arrives within 10 ms of the first
    "batched-int8": ["--precision", "int8"],  # the defaults, int8 where it measured faster (issue 32)
    "batched-bf16": ["--precision", "bf16"],  # bf16 where it measured faster
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--sentences", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--warmup", type=int, default=8, help="untimed requests first (default 8; 0: none)")
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    args = ap.parse_args()
    print(f"{os.uname().machine}; {args.requests} requests x {args.sentences} sentences per client")
    print(
        f"{'server':<10} {'clients':>7} {'req/s':>7} {'sent/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'max ms':>7} errors  RSS MiB  first ms"
    )
    for name in args.configs:
        for c in args.clients:
            r = run(args, CONFIGS[name], c)
            print(
                f"{name:<10} {c:>7} {r['rps']:>7.1f} {r['sps']:>7.0f} {r['p50']:>7.0f} {r['p95']:>7.0f} "
                f"{r['max']:>7.0f} {r['errors']:>6}  {r['rss']:>7.0f}  {r['first']:>8.0f}",
                flush=True,
            )


def run(args, extra, clients) -> dict:
    """One server process with ``extra`` options under ``clients`` concurrent clients."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "rnnlab.cli",
        "translate",
        "serve",
        "--model",
        args.model,
        "--port",
        str(port),
    ]
    server = subprocess.Popen([*cmd, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        first = None
        with httpx.Client(timeout=60) as http:
            for w in range(args.warmup):
                t0 = time.perf_counter()
                text = SENTENCES[w % len(SENTENCES) :][: args.sentences]
                http.post(url + "/translate", json={"text": text})
                first = 1e3 * (time.perf_counter() - t0) if first is None else first
        deadline = time.time() + args.timeout

        def client(c):
            out = []
            with httpx.Client(timeout=60) as http:
                for r in range(args.requests):
                    if time.time() > deadline:
                        break
                    k = (c * args.requests + r) % len(SENTENCES)
                    text = (SENTENCES[k:] + SENTENCES[:k])[: args.sentences]
                    t0 = time.perf_counter()
                    try:
                        ok = http.post(url + "/translate", json={"text": text}).status_code == 200
                    except httpx.TransportError:
                        ok = False
                    out.append((time.perf_counter() - t0, ok))
            return out

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = [x for part in pool.map(client, range(clients)) for x in part]
        wall = time.perf_counter() - t0
        with open(f"/proc/{server.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    lat = sorted(t for t, _ in results)
    q = statistics.quantiles(lat, n=20) if len(lat) > 1 else [lat[0]] * 19
    n = len(results)
    return {
        "rps": n / wall,
        "sps": n * args.sentences / wall,
        "p50": 1e3 * statistics.median(lat),
        "p95": 1e3 * q[18],
        "max": 1e3 * lat[-1],
        "errors": sum(not ok for _, ok in results),
        "rss": hwm / 1024,
        "first": float("nan") if first is None else first,
    }


if __name__ == "__main__":
    main()
