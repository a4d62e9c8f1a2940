"""Load on `rnnlab translate serve` over loopback: C concurrent clients x R requests each.

    python benchmarks/serve_load.py --model runs/fr [--clients 8] [--requests 50] [--sentences 4]

Starts the real server process on a free port, waits for /health, then every client posts R
requests of S sentences (taken in turn from a fixed list) and records each latency. Prints
requests/s, sentences/s, p50/p95/max latency, errors (any status but 200, or a transport
error) and the server's peak resident memory (VmHWM); the whole run is bounded by --timeout.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--sentences", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
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
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
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
        with ThreadPoolExecutor(args.clients) as pool:
            results = [x for part in pool.map(client, range(args.clients)) for x in part]
        wall = time.perf_counter() - t0
        with open(f"/proc/{server.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    lat = sorted(t for t, _ in results)
    errors = sum(not ok for _, ok in results)
    q = statistics.quantiles(lat, n=20)
    n, p50, p95, S = len(results), 1e3 * statistics.median(lat), 1e3 * q[18], args.sentences
    print(f"{os.uname().machine}: {args.clients} clients x {args.requests} requests x {S} sentences")
    print(f"{n} requests in {wall:.1f} s: {n / wall:.1f} requests/s, {n * S / wall:.0f} sentences/s")
    print(f"latency p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {1e3 * lat[-1]:.0f} ms; errors {errors}")
    print(f"server peak RSS {hwm / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
