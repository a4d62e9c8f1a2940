"""rnnlab/translate/export.py: a trained Translator as an encoder graph and a decoder-step
graph; the pure-onnxruntime greedy decoder of docs/examples/onnx_translate.py reproduces
``Translator.translate(beam_size=1)`` word for word on held-out sentences, for both cells,
every attention score, input feeding, one or two layers and directions."""

import importlib.util
import json
import os

import numpy as np
import pytest

from rnnlab.translate import Translator
from rnnlab.translate.export import FILES, export_translator

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

WORDS = "le chat chien voit mange petit grand un la souris".split()
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "onnx_translate.py")


def toy_pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = list(rng.choice(WORDS, rng.integers(2, 6)))
        out.append((" ".join(s) + " .", " ".join(w.upper() for w in s[::-1]) + " ."))
    return out


def _example():
    spec = importlib.util.spec_from_file_location("onnx_translate", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES = [
    dict(cell="gru", attention="general"),
    dict(cell="lstm", attention="additive", bidirectional=True),
    dict(cell="gru", attention="cosine", num_layers=2, input_feed=True),
    dict(cell="lstm", attention="dot", num_layers=2),  # dot-like scores: one direction (sizes)
    dict(cell="gru", attention="scaled_dot", input_feed=True),
    dict(cell="lstm", attention="none"),
    dict(cell="gru", attention="general", vocab="bpe", vocab_size=300),  # pieces by sentencepiece
]


@pytest.mark.filterwarnings("ignore:1 empty")
@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_onnx_greedy_decoding_equals_rnnlab(kw, tmp_path):
    tr = Translator(
        hidden_size=16,
        embedding_size=8,
        epochs=3,
        batch_size=16,
        min_freq=1,
        lower=False,
        seed=0,
        lr=3e-3,
        **kw,
    ).fit(toy_pairs(300))
    paths = export_translator(tr, tmp_path / "onnx")
    assert [os.path.basename(p) for p in paths] == list(FILES)
    for p in paths[:2]:
        onnx.checker.check_model(onnx.load(p))
    test = [s for s, _ in toy_pairs(60, seed=7)] + ["souris inconnu !", ""]
    want = tr.translate(test, beam_size=1)
    got = _example().translate(str(tmp_path / "onnx"), test)
    assert got == want
    assert any(w for w in want)  # not all empty: the comparison is about real words


def test_decoder_step_log_probs_equal_rnnlab(tmp_path):
    """One step's numbers, not only the argmax: log p, the new state and the weights."""
    tr = Translator(
        hidden_size=12,
        embedding_size=6,
        epochs=1,
        min_freq=1,
        lower=False,
        seed=1,
        cell="lstm",
        attention="additive",
    ).fit(toy_pairs(80))
    export_translator(tr, tmp_path)
    model = tr.model_
    src = np.array([[4, 5, 6, 0], [7, 8, 9, 10]], np.int64)
    lengths = np.array([3, 4])
    state = model.start(src, lengths)
    logp, new, w = model.step(np.array([2, 2]), state)
    enc = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    e = dict(zip([o.name for o in enc.get_outputs()], enc.run(None, {"src": src, "lengths": lengths})))
    np.testing.assert_allclose(e["keys"], state.keys, atol=1e-6)
    np.testing.assert_array_equal(e["mask"], state.mask)
    dec = ort.InferenceSession(str(tmp_path / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    feed = {
        "tokens": np.array([2, 2]),
        "h": e["h0"],
        "c": e["c0"],
        "keys": e["keys"],
        "pk": e["pk"],
        "mask": e["mask"],
    }
    r = dict(zip([o.name for o in dec.get_outputs()], dec.run(None, feed)))
    np.testing.assert_allclose(r["logp"], logp, atol=1e-5)
    np.testing.assert_allclose(r["h_new"], new.h, atol=1e-6)
    np.testing.assert_allclose(r["c_new"], new.c, atol=1e-6)
    np.testing.assert_allclose(r["weights"], w, atol=1e-6)
    info = json.loads((tmp_path / "translator.json").read_text())
    assert info["tgt_vocab"] == tr.tgt_vocab_.itos and info["format"] == "rnnlab-translator-onnx"
