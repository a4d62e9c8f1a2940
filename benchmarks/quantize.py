"""int8 and bf16 inference (issue 32), in one process: rnnlab int8 and bf16 vs rnnlab float32 vs
PyTorch float32 vs PyTorch's dynamically quantised LSTM/GRU (``torch.ao.nn.quantized.dynamic``)
and PyTorch under bf16 autocast (``torch.autocast("cpu", torch.bfloat16)``), the same weights,
on ``benchmarks/run.py``'s inference rows and the streaming row (1,000 single steps, N=1); the
largest relative output error of each layer type at each precision; and the translation BLEU
at float32, int8 and bf16 of a trained model (``--model``).

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
from rnnlab import bench, bench_limits  # noqa: E402
from rnnlab.io import write_json  # noqa: E402
from rnnlab.nn import GRU, LSTM, RNN, inference_mode, quantize_dynamic, runtime  # noqa: E402
from rnnlab.nn.backend import bf16gemm, intgemm, packed  # noqa: E402
from rnnlab.nn.quantize_stepping import QuantizedStackedCell  # noqa: E402
from rnnlab.nn.stepping import StackedCell  # noqa: E402

NAMES = ("rnnlab_int8", "rnnlab_bf16", "rnnlab_f32", "torch_f32", "torch_int8", "torch_bf16")
RATIOS = (  # (name, numerator, denominator): the goals are the first two (<= 0.6, <= 1.0)
    ("int8 / torch f32", "rnnlab_int8", "torch_f32"),
    ("int8 / torch int8", "rnnlab_int8", "torch_int8"),
    ("bf16 / torch f32", "rnnlab_bf16", "torch_f32"),
    ("bf16 / torch bf16", "rnnlab_bf16", "torch_bf16"),
)
STREAM = {"steps": 1000, "N": 1, "I": 64, "H": 128}


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")


def _torch_int8(t, kind):
    import torch

    t.qconfig = torch.ao.quantization.default_dynamic_qconfig
    dyn = getattr(torch.ao.nn.quantized.dynamic, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dyn.from_float(t)


def _fns(kind, cfg, threads):
    import torch

    from rnnlab.interop import to_torch

    torch.set_num_threads(threads)
    m = bench._make_rnnlab(kind, cfg)
    x, _ = bench._data(cfg)
    t = to_torch(m).eval()
    tq = _torch_int8(t, "LSTM" if kind == "lstm" else "GRU")
    q, b = quantize_dynamic(m), quantize_dynamic(m, "bf16")
    xt = torch.from_numpy(x)

    def ours_f32():
        with inference_mode():
            m(x)

    def torch_run(mod, bf16=False):
        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                mod(xt)

        return run

    return [lambda: q(x), lambda: b(x), ours_f32, torch_run(t), torch_run(tq), torch_run(t, bf16=True)]


def _stream_fns(kind, threads):
    """1,000 single steps at N=1 (``rnnlab bench``'s streaming row): rnnlab's StackedCell at
    each precision, PyTorch's LSTMCell / GRUCell at float32, dynamically quantised and bf16."""
    import torch

    T, N, I, H = (STREAM[k] for k in ("steps", "N", "I", "H"))
    torch.set_num_threads(threads)
    layer = (LSTM if kind == "lstm" else GRU)(I, H, seed=0)
    x = np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32)
    cells = [QuantizedStackedCell(quantize_dynamic(layer, d)) for d in ("int8", "bf16")] + [
        StackedCell(layer)
    ]
    torch.manual_seed(0)
    name = "LSTMCell" if kind == "lstm" else "GRUCell"
    tcell = getattr(torch.nn, name)(I, H).eval()
    xt = torch.from_numpy(x)

    def ours(cell):
        def run():
            state = cell.initial_state(N)
            with inference_mode():
                for t in range(T):
                    _, state = cell.step(x[t], state)

        return run

    def theirs(c, bf16=False):
        return bench_limits.torch_steps(c, kind, xt, H, bf16)

    return [*map(ours, cells), theirs(tcell), theirs(_torch_int8(tcell, name)), theirs(tcell, bf16=True)]


def _timed_row(kind, config, fns, reps, block):
    # alternating blocks (``bench._time``): all six see the same load, and each is timed in its
    # own loop, not right after another library's call (rep by rep, ``--block 1``, the int8
    # (50,32,32,128) LSTM ran 1.0-1.6 ms against 0.9 in blocks; torch's times moved as much)
    times = bench._time(fns, reps, block=block)
    ms = {n: 1e3 * float(np.median(ts)) for n, ts in zip(NAMES, times)}
    row = {"kind": kind, "config": config, "ms": ms}
    row["ratios"] = {label: ms[a] / ms[b] for label, a, b in RATIOS}
    row["vs_rnnlab_f32"] = {d: ms[f"rnnlab_{d}"] / ms["rnnlab_f32"] for d in ("int8", "bf16")}
    cells = [f"{ms[n]:.2f}" for n in NAMES] + [f"**{v:.2f}**" for v in row["ratios"].values()]
    print(f"| {kind} | {config} | " + " | ".join(cells) + " |", flush=True)
    return row


def speed_rows(reps, threads, configs, stream=True, block=bench.BLOCK):
    rows = []
    for kind in ("lstm", "gru"):
        for cfg in configs:
            rows.append(_timed_row(kind, cfg.name, _fns(kind, cfg, threads), reps, block))
        if stream:
            config = f"stream {STREAM['steps']}x(N={STREAM['N']},I={STREAM['I']},H={STREAM['H']})"
            rows.append(_timed_row(kind, config, _stream_fns(kind, threads), reps, block))
    return rows


def error_rows(trials=24):
    """max |int8 - float| / max |float| (and bf16's) per layer type, over random shapes."""
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
            for d in ("int8", "bf16"):
                yq = quantize_dynamic(layer, d)(x, lengths=lengths)[0]
                worst.append((d, float(np.abs(yq - y).max() / max(np.abs(y).max(), 1e-30))))
        for d in ("int8", "bf16"):
            e = [v for k, v in worst if k == d]
            out[f"{name} {d}"] = {"max": max(e), "median": float(np.median(e)), "trials": trials}
            print(f"{name} {d}: largest relative error {max(e):.4f} (median {np.median(e):.4f})", flush=True)
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
        models = [(d, quantized_model(float_model, d)) for d in ("int8", "bf16")]
        for name, model in [("float32", float_model), *models]:
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
    ap.add_argument("--block", type=int, default=bench.BLOCK, help="timed calls per block (1: rep by rep)")
    ap.add_argument("--configs", nargs="+", type=int, help="indices into bench.FULL (default all)")
    ap.add_argument("--model", default=os.path.expanduser("~/runs/fr-tc"), help="a trained translator")
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    ap.add_argument("--skip", nargs="*", default=[], choices=["speed", "stream", "errors", "bleu"])
    args = ap.parse_args()
    threads = bench.blas_info()["threads"] or 1
    env = {"cpu": cpu_model(), "threads": threads, "commit": bench_commit(), "block": args.block}
    env.update(int8=intgemm.describe(), bf16=bf16gemm.describe(), packed=packed.describe())
    print(env, flush=True)
    print("| cell | (T,N,I,H) | " + " | ".join(NAMES) + " | " + " | ".join(r[0] for r in RATIOS) + " |")
    configs = bench.FULL if args.configs is None else [bench.FULL[i] for i in args.configs]
    res = {"environment": env, "command": sys.argv}
    if "speed" not in args.skip:
        res["speed"] = speed_rows(args.reps, threads, configs, "stream" not in args.skip, args.block)
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
