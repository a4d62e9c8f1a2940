"""``--precision {float32,int8}`` of ``translate run / eval / serve`` (issue 32): decoding with
int8 recurrent layers, offered only where it is faster here, chosen by measurement.

``int8`` replaces what decoding runs of each model (``Seq2Seq.start`` runs ``encoder``,
``Seq2Seq.step`` runs ``_steps``, the decoder one step at a time, and ``h~ @ out.weight.T``) by
``rnnlab.nn.quantize``'s int8 copies: the encoder, the decoder's layers and the output
projection (H x vocabulary: most of a step's time); embeddings, attention and the attentional
layer stay float32, and so do the model on disk and its ONNX export. The copy decodes only
(``start`` / ``step``): training goes on the float model.
Before using it, ``choose`` decodes one probe batch (32 random source sentences of 12 tokens,
greedy, 5 times each, alternating; the fastest of each) at both precisions; when int8 is not
faster, it says so in one line on stderr and float32 runs. Nothing is decided from the CPU's name.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

import numpy as np

from rnnlab.cliargs import add_precision
from rnnlab.nn import quantize_dynamic
from rnnlab.nn.backend import intgemm
from rnnlab.nn.quantize import PRECISIONS, QMatrix, QuantizedStackedCell, quantize_weight
from rnnlab.translate.ensemble import EnsembleModel
from rnnlab.translate.model import Seq2Seq, reorder_state
from rnnlab.translate.search import greedy_search

PROBE_SENTENCES, PROBE_TOKENS, PROBE_REPS = 32, 12, 5


def add_argument(p) -> None:
    add_precision(
        p,
        PRECISIONS,
        "int8: the recurrent layers quantised (int8 weights, 8-bit activations, exact int32 "
        "products), used only where it decodes faster than float32 here (measured at start; "
        "docs/QUANTIZATION.md)",
    )


def quantized_model(model: Any) -> Any:
    """A copy of ``model`` (a ``Seq2Seq`` or an ensemble of them) whose decoding runs int8
    recurrent layers; ``model`` itself is unchanged (the copy shares its other weights)."""
    if isinstance(model, EnsembleModel):
        return EnsembleModel([quantized_model(m) for m in model.models])
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"int8 decoding takes a Seq2Seq, got {type(model).__name__}")
    q: Any = copy.copy(model)  # duck-typed: its layers are the int8 ones below
    q.encoder = quantize_dynamic(model.encoder)
    q.decoder = decoder = quantize_dynamic(model.decoder)
    q._steps = QuantizedStackedCell(decoder)
    q.out = copy.copy(model.out)  # V h~ + b_v, the step's largest product (H x vocabulary)
    weight: Any = QMatrix(*quantize_weight(model.out.params["weight"]))  # ``h @ weight.T`` works
    q.out.params = {"weight": weight, "bias": model.out.params["bias"]}
    return q


def _probe_seconds(model: Any, src: np.ndarray, lengths: np.ndarray) -> float:
    reorder = getattr(model, "reorder", reorder_state)  # an ensemble reorders its members'
    t0 = time.perf_counter()
    greedy_search(model.step, reorder, model.start(src, lengths), len(src), 2 * src.shape[1])
    return time.perf_counter() - t0


def measure(model: Any, src_vocab_size: int) -> tuple[dict[str, float], Any]:
    """Seconds of one probe batch's greedy decoding at float32 and int8 (the fastest), and the
    int8 copy of ``model``."""
    rng = np.random.default_rng(0)
    src = rng.integers(4, max(src_vocab_size, 5), (PROBE_SENTENCES, PROBE_TOKENS))
    lengths = np.full(PROBE_SENTENCES, PROBE_TOKENS, np.int64)
    q = quantized_model(model)
    model.eval()
    times: dict[str, list[float]] = {"float32": [], "int8": []}
    for m in (model, q):
        _probe_seconds(m, src, lengths)  # warm: compiled loops, buffers
    for _ in range(PROBE_REPS):
        for m, name in ((model, "float32"), (q, "int8")):
            times[name].append(_probe_seconds(m, src, lengths))
    return {name: float(np.min(v)) for name, v in times.items()}, q


def choose(tr: Any, precision: str, out=sys.stderr) -> str:
    """Set ``tr.model_`` for ``precision``; the precision that runs. ``int8`` runs only when the
    probe decodes faster with it than with float32 here; otherwise one line says why."""
    if precision == "float32":
        return "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    m, q = measure(tr.model_, len(tr.src_vocab_))
    gemm = intgemm.describe()
    if m["int8"] >= m["float32"]:
        why = "" if gemm["fallback_reason"] is None else f"; {gemm['fallback_reason']}"
        ms = f"{1e3 * m['int8']:.1f} ms vs {1e3 * m['float32']:.1f} ms on a probe batch{why}"
        print(
            f"rnnlab translate: int8 decodes slower than float32 on this machine ({ms}): running float32",
            file=out,
        )
        return "float32"
    tr.model_ = q
    return "int8"
