"""``--precision {float32,int8,bf16}`` of ``translate run / eval / serve`` (issue 32): decoding
with int8 or bf16 recurrent layers, offered only where it is faster here, chosen by measurement.

``int8`` (``bf16``) replaces what decoding runs of each model (``Seq2Seq.start`` runs
``encoder``, ``Seq2Seq.step`` runs ``_steps``, the decoder one step at a time, and
``h~ @ out.weight.T``) by ``rnnlab.nn.quantize``'s copies: the encoder, the decoder's layers and
the output projection (H x vocabulary: most of a step's time); embeddings, attention and the
attentional layer stay float32, and so do the model on disk and its ONNX export. The copy
decodes only (``start`` / ``step``): training goes on the float model.
Before using it, ``choose`` decodes one probe batch (32 random source sentences of 12 tokens,
greedy, 5 times each, alternating; the fastest of each) at float32 and the precision asked
for; when that is not faster, it says so in one line on stderr and float32 runs. Nothing is
decided from the CPU's name.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

import numpy as np

from rnnlab.cliargs import add_precision
from rnnlab.nn import quantize_dynamic
from rnnlab.nn.quantize import (
    PRECISIONS,
    BMatrix,
    QMatrix,
    bf16_weight,
    fallback_reason,
    quantize_weight,
)
from rnnlab.nn.quantize_stepping import QuantizedStackedCell
from rnnlab.translate.ensemble import EnsembleModel
from rnnlab.translate.model import Seq2Seq, reorder_state
from rnnlab.translate.search import greedy_search

PROBE_SENTENCES, PROBE_TOKENS, PROBE_REPS = 32, 12, 5


def add_argument(p) -> None:
    add_precision(
        p,
        PRECISIONS,
        "int8: the recurrent layers and the output layer quantised (int8 weights, 8-bit "
        "activations, exact int32 products); bf16: their weights and inputs rounded to bf16, "
        "float32 sums; either used only where it decodes faster than float32 here (measured at "
        "start; docs/QUANTIZATION.md)",
    )


def quantized_model(model: Any, dtype: str = "int8") -> Any:
    """A copy of ``model`` (a ``Seq2Seq`` or an ensemble of them) whose decoding runs int8
    (``dtype="bf16"``: bf16) layers; ``model`` itself is unchanged (the copy shares its other
    weights)."""
    if isinstance(model, EnsembleModel):
        return EnsembleModel([quantized_model(m, dtype) for m in model.models])
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"{dtype} decoding takes a Seq2Seq, got {type(model).__name__}")
    q: Any = copy.copy(model)  # duck-typed: its layers are the reduced-precision ones below
    q.encoder = quantize_dynamic(model.encoder, dtype)
    q.decoder = decoder = quantize_dynamic(model.decoder, dtype)
    q._steps = QuantizedStackedCell(decoder)
    q.out = copy.copy(model.out)  # V h~ + b_v, the step's largest product (H x vocabulary)
    W = model.out.params["weight"]
    weight: Any = BMatrix(bf16_weight(W)) if dtype == "bf16" else QMatrix(*quantize_weight(W))
    q.out.params = {"weight": weight, "bias": model.out.params["bias"]}
    return q


def _probe_seconds(model: Any, src: np.ndarray, lengths: np.ndarray) -> float:
    reorder = getattr(model, "reorder", reorder_state)  # an ensemble reorders its members'
    t0 = time.perf_counter()
    greedy_search(model.step, reorder, model.start(src, lengths), len(src), 2 * src.shape[1])
    return time.perf_counter() - t0


def measure(model: Any, src_vocab_size: int, dtype: str = "int8") -> tuple[dict[str, float], Any]:
    """Seconds of one probe batch's greedy decoding at float32 and ``dtype`` (the fastest), and
    the ``dtype`` copy of ``model``."""
    rng = np.random.default_rng(0)
    src = rng.integers(4, max(src_vocab_size, 5), (PROBE_SENTENCES, PROBE_TOKENS))
    lengths = np.full(PROBE_SENTENCES, PROBE_TOKENS, np.int64)
    q = quantized_model(model, dtype)
    model.eval()
    times: dict[str, list[float]] = {"float32": [], dtype: []}
    for m in (model, q):
        _probe_seconds(m, src, lengths)  # warm: compiled loops, buffers
    for _ in range(PROBE_REPS):
        for m, name in ((model, "float32"), (q, dtype)):
            times[name].append(_probe_seconds(m, src, lengths))
    return {name: float(np.min(v)) for name, v in times.items()}, q


def choose(tr: Any, precision: str, out=sys.stderr) -> str:
    """Set ``tr.model_`` for ``precision``; the precision that runs. ``int8`` or ``bf16`` runs
    only when the probe decodes faster with it than with float32 here; otherwise one line says
    why."""
    if precision == "float32":
        return "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    m, q = measure(tr.model_, len(tr.src_vocab_), precision)
    if m[precision] >= m["float32"]:
        why = fallback_reason(precision)
        ms = f"{1e3 * m[precision]:.1f} ms vs {1e3 * m['float32']:.1f} ms on a probe batch"
        print(
            f"rnnlab translate: {precision} decodes slower than float32 on this machine "
            f"({ms}{'; ' + why if why else ''}): running float32",
            file=out,
        )
        return "float32"
    tr.model_ = q
    return precision
