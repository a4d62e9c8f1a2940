"""``forecast predict --precision {float32,int8,bf16}`` (issue 32): the networks' recurrent
layers quantised (``rnnlab.nn.quantize_dynamic``: int8 weights, 8-bit activations per step,
exact int32 products; or bf16 weights and inputs, float32 sums; float32 gates and state), used
only where that is faster here.

``choose`` swaps each network's ``rnn`` for its reduced-precision copy in the loaded model (the
linear head, the scaling and the intervals stay float32; nothing is written back: the saved
model and its ONNX export stay float32), after timing one probe batch (64 random windows, every
network, 5 times each, alternating; the fastest of each) at float32 and the precision asked
for. When that is not faster it says so in one line on stderr and float32 runs: chosen by
measurement, not by the CPU's name.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from rnnlab.cliargs import add_precision
from rnnlab.nn import inference_mode, quantize_dynamic
from rnnlab.nn.quantize import PRECISIONS, fallback_reason

PROBE_WINDOWS, PROBE_REPS = 64, 5


def add_argument(p) -> None:
    add_precision(
        p,
        PRECISIONS,
        "int8 or bf16: the recurrent layers in that precision, used only where that is faster "
        "than float32 here (measured at start; docs/QUANTIZATION.md)",
    )


def _forecasters(model: Any) -> list:
    return list(getattr(model, "members_", None) or [model])


def _seconds(nets: list, rnns: list, x: np.ndarray) -> float:
    t0 = time.perf_counter()
    with inference_mode():
        for net, rnn in zip(nets, rnns):
            rnn(x[:, :, : net.rnn.input_size])
    return time.perf_counter() - t0


def measure(model: Any, dtype: str = "int8") -> tuple[dict[str, float], list]:
    """The fastest of ``PROBE_REPS`` passes of every network over one probe batch, float32 and
    ``dtype``, and the ``dtype`` copies of the networks' recurrent layers."""
    nets = [net for f in _forecasters(model) for net in f.nets_]
    quantized = [quantize_dynamic(net.rnn, dtype) for net in nets]
    floats = [net.rnn for net in nets]
    width = max(net.rnn.input_size for net in nets)
    window = int(getattr(model, "window", 7))
    x = np.random.default_rng(0).standard_normal((window, PROBE_WINDOWS, width)).astype(np.float32)
    times: dict[str, list[float]] = {"float32": [], dtype: []}
    for _ in range(PROBE_REPS + 1):  # the first of each warms (compiled loops, buffers)
        for name, rnns in (("float32", floats), (dtype, quantized)):
            times[name].append(_seconds(nets, rnns, x))
    return {name: float(np.min(v[1:])) for name, v in times.items()}, quantized


def choose(model: Any, precision: str, out=sys.stderr) -> str:
    """Swap ``model``'s recurrent layers for ``precision`` ones ("int8", "bf16") when that is
    faster here; the precision that runs (one line on ``out`` when it is refused)."""
    if precision == "float32":
        return "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    t, quantized = measure(model, precision)
    if t[precision] >= t["float32"]:
        why = fallback_reason(precision)
        print(
            f"rnnlab forecast predict: {precision} runs slower than float32 on this machine "
            f"({1e3 * t[precision]:.1f} ms vs {1e3 * t['float32']:.1f} ms on a probe batch"
            f"{'; ' + why if why else ''}): running float32",
            file=out,
        )
        return "float32"
    nets = [net for f in _forecasters(model) for net in f.nets_]
    for net, q in zip(nets, quantized):
        net.rnn = q
    return precision
