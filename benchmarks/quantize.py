"""int8 inference (issue 32), in one process: rnnlab int8 vs rnnlab float32 vs PyTorch float32 vs
PyTorch's dynamically quantised LSTM/GRU (``torch.ao.nn.quantized.dynamic``, the same weights),
on ``benchmarks/run.py``'s inference rows; the largest relative output error of each layer type;
and the translation BLEU at float32 and int8 of a trained model (``--model``).

    flock /tmp/rnnlab-cpu.lock nice python benchmarks/quantize.py [--reps 9] [--model ~/runs/fr-tc]

Prints Markdown rows for benchmarks/RESULTS.md and writes the raw numbers as JSON under
benchmarks/raw/ (git-ignored).
"""

import argparse
import os
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rnnlab import bench  # noqa: E402
from rnnlab.io import write_json  # noqa: E402
from rnnlab.nn import GRU, LSTM, RNN, inference_mode, quantize_dynamic, runtime  # noqa: E402
from rnnlab.nn.backend import intgemm  # noqa: E402

NAMES = ("rnnlab_int8", "rnnlab_f32", "torch_f32", "torch_int8")


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")


def _fns(kind, cfg, threads):
    import torch

    from rnnlab.interop import to_torch

    torch.set_num_threads(threads)
    m = bench._make_rnnlab(kind, cfg)
    x, _ = bench._data(cfg)
    q, t = quantize_dynamic(m), to_torch(m).eval()
    t.qconfig = torch.ao.quantization.default_dynamic_qconfig
    dyn = torch.ao.nn.quantized.dynamic.LSTM if kind == "lstm" else torch.ao.nn.quantized.dynamic.GRU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq = dyn.from_float(t)
    xt = torch.from_numpy(x)

    def ours_f32():
        with inference_mode():
            m(x)

    def torch_run(mod):
        def run():
            with torch.inference_mode():
                mod(xt)

        return run

    return [lambda: q(x), ours_f32, torch_run(t), torch_run(tq)]


def speed_rows(reps, threads, configs):
    rows = []
    for kind in ("lstm", "gru"):
        for cfg in configs:
            fns = _fns(kind, cfg, threads)
            times = [[] for _ in fns]
            for fn in fns:
                fn()
                fn()  # warm-up: compiled loops, buffers
            for _ in range(reps):  # alternating, rep by rep: all four see the same load
                for fn, ts in zip(fns, times):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
            ms = {n: 1e3 * float(np.median(ts)) for n, ts in zip(NAMES, times)}
            row = {"kind": kind, "config": cfg.name, "ms": ms}
            row["int8_vs_torch_f32"] = ms["rnnlab_int8"] / ms["torch_f32"]
            row["int8_vs_torch_int8"] = ms["rnnlab_int8"] / ms["torch_int8"]
            row["int8_vs_rnnlab_f32"] = ms["rnnlab_int8"] / ms["rnnlab_f32"]
            rows.append(row)
            print(
                f"| {kind} | {cfg.name} | "
                + " | ".join(f"{ms[n]:.2f}" for n in NAMES)
                + f" | **{row['int8_vs_torch_f32']:.2f}** | **{row['int8_vs_torch_int8']:.2f}** |",
                flush=True,
            )
    return rows


def error_rows(trials=24):
    """max |int8 - float| / max |float| per layer type, over random shapes (the test's kinds)."""
    rng = np.random.default_rng(32)
    out = {}
    for name, cls, kw in (
        ("LSTM", LSTM, {}),
        ("GRU", GRU, {}),
        ("GRU reset-before", GRU, {"reset_after": False}),
        ("RNN tanh", RNN, {}),
        ("RNN relu", RNN, {"nonlinearity": "relu"}),
    ):
        worst = []
        for _ in range(trials):
            T, N, I, H = (int(rng.integers(a, b)) for a, b in ((2, 60), (1, 65), (1, 300), (8, 400)))
            L, bi = int(rng.integers(1, 3)), bool(rng.integers(0, 2))
            layer = cls(I, H, num_layers=L, bidirectional=bi, seed=int(rng.integers(10_000)), **kw)
            x = rng.standard_normal((T, N, I)).astype(np.float32)
            lengths = rng.integers(1, T + 1, N)
            with inference_mode():
                y = layer(x, lengths=lengths)[0]
            yq = quantize_dynamic(layer)(x, lengths=lengths)[0]
            worst.append(float(np.abs(yq - y).max() / max(np.abs(y).max(), 1e-30)))
        out[name] = {"max": max(worst), "median": float(np.median(worst)), "trials": trials}
        print(f"{name}: largest relative error {max(worst):.4f} (median {np.median(worst):.4f})", flush=True)
    return out


def bleu_rows(model_dir, beams):
    from rnnlab.translate import corpus
    from rnnlab.translate.precision import quantized_model
    from rnnlab.translate.translator import Translator

    runtime.set(threads=1)  # as `translate eval` runs (translate/cli.py, _threads)
    tr = Translator.load(model_dir)
    pairs = corpus.split_pairs(corpus.read_pairs(None), "sha1", tr.lower)["test"]
    float_model, out = tr.model_, []
    for beam in beams:
        for name, model in (("float32", float_model), ("int8", quantized_model(float_model))):
            tr.model_ = model
            tr.evaluate(pairs[:64], beam, 1.0, n_samples=0)  # warm: compiled loops, buffers
            r = tr.evaluate(pairs, beam, 1.0, n_samples=0)
            row = {"beam": beam, "precision": name, "sacrebleu": r["sacrebleu"]["bleu"]}
            row.update(chrf=r["sacrebleu"]["chrf"], bleu_lc=r["bleu"], decode_seconds=r["decode_seconds"])
            out.append(row)
            print(
                f"beam {beam} {name}: sacreBLEU {row['sacrebleu']:.2f} chrF {row['chrf']:.2f} "
                f"BLEU(lc) {row['bleu_lc']:.2f}, {row['decode_seconds']:.2f} s",
                flush=True,
            )
    tr.model_ = float_model
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--configs", nargs="+", type=int, help="indices into bench.FULL (default all)")
    ap.add_argument("--model", default=os.path.expanduser("~/runs/fr-tc"), help="a trained translator")
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    ap.add_argument("--skip", nargs="*", default=[], choices=["speed", "errors", "bleu"])
    args = ap.parse_args()
    threads = bench.blas_info()["threads"] or 1
    env = {"cpu": cpu_model(), "threads": threads, **intgemm.describe(), "commit": bench_commit()}
    print(env, flush=True)
    print("| cell | (T,N,I,H) | " + " | ".join(NAMES) + " | int8 / torch f32 | int8 / torch int8 |")
    configs = bench.FULL if args.configs is None else [bench.FULL[i] for i in args.configs]
    res = {"environment": env, "command": sys.argv}
    if "speed" not in args.skip:
        res["speed"] = speed_rows(args.reps, threads, configs)
    if "errors" not in args.skip:
        res["errors"] = error_rows()
    if "bleu" not in args.skip and os.path.isdir(args.model):
        res["bleu"] = bleu_rows(args.model, args.beams)
    write_raw("quantize", res)


def write_raw(prefix: str, obj) -> None:
    """``obj`` as benchmarks/raw/<prefix>-<time>.json (git-ignored), its path printed."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "raw")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    write_json(path, obj)
    print(f"JSON: {path}")


def bench_commit():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
