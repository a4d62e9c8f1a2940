"""rnnlab/export/onnx_graph.py: every layer kind exported to ONNX, checked by onnx.checker and
run in onnxruntime against rnnlab's own forward (float32, within 1e-5 relative), on random
shapes, lengths and initial states."""

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab.export import to_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

KINDS = [
    ("RNN", {"nonlinearity": "tanh"}),
    ("RNN", {"nonlinearity": "relu"}),
    ("LSTM", {}),
    ("GRU", {"reset_after": True}),
    ("GRU", {"reset_after": False}),
]
IDS = ["rnn-tanh", "rnn-relu", "lstm", "gru-after", "gru-before"]


def _onnx_run(path, feed):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {k: v for k, v in feed.items() if k in names}), names


@pytest.mark.parametrize("mode,kw", KINDS, ids=IDS)
@pytest.mark.parametrize("seed", range(4))
def test_onnxruntime_equals_rnnlab(mode, kw, seed, tmp_path):
    """Random sizes, 1-3 layers, one or two directions, batch first or not, with lengths and
    initial states: outputs and final states equal rnnlab's."""
    rng = np.random.default_rng(seed)
    L, bidir, batch_first = int(rng.integers(1, 4)), bool(seed % 2), seed == 2
    T, N, I, H = (int(v) for v in rng.integers(1, 9, 4))
    D = 2 if bidir else 1
    m = getattr(rnn, mode)(I, H, num_layers=L, bidirectional=bidir, batch_first=batch_first, seed=seed, **kw)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(np.float32)
    lengths = rng.integers(1, T + 1, N)
    states = [
        rng.standard_normal((L * D, N, H)).astype(np.float32) for _ in range(2 if mode == "LSTM" else 1)
    ]
    path = to_onnx(m, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(path))
    (out, *finals), names = _onnx_run(
        path, {"input": x, "lengths": lengths, "h0": states[0], "c0": states[-1]}
    )
    assert names == ["input", "lengths", "h0"] + (["c0"] if mode == "LSTM" else [])
    with rnn.inference_mode():
        ref, fin = m(x, tuple(states) if mode == "LSTM" else states[0], lengths=lengths)
    assert_close("output", out, ref, 1e-5)
    for k, (got, want) in enumerate(zip(finals, fin if mode == "LSTM" else (fin,))):
        assert_close(f"final state {k}", got, want, 1e-5)


@pytest.mark.parametrize("mode,kw", KINDS, ids=IDS)
def test_without_lengths_or_states_inputs_and_without_bias(mode, kw, tmp_path):
    rng = np.random.default_rng(5)
    m = getattr(rnn, mode)(3, 4, num_layers=2, bias=False, seed=1, **kw)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    path = to_onnx(m, tmp_path / "m.onnx", lengths=False, states=False)
    (out, *_), names = _onnx_run(path, {"input": x})
    assert names == ["input"]
    with rnn.inference_mode():
        ref, _ = m(x)
    assert_close("output", out, ref, 1e-5)


def test_the_graph_has_one_operator_per_layer_with_free_time_and_batch(tmp_path):
    m = rnn.GRU(3, 4, num_layers=3, bidirectional=True, reset_after=False)
    model = onnx.load(to_onnx(m, tmp_path / "g.onnx"))
    ops = [n for n in model.graph.node if n.op_type == "GRU"]
    assert len(ops) == 3
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in ops[0].attribute}
    assert attrs["linear_before_reset"] == 0 and attrs["direction"] == b"bidirectional"
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["T", "N", 3]
    # the same file runs other sizes of T and N
    for T, N in ((1, 1), (9, 5)):
        x = np.ones((T, N, 3), np.float32)
        (out, _), _ = _onnx_run(
            tmp_path / "g.onnx", {"input": x, "lengths": np.full(N, T), "h0": np.zeros((6, N, 4), np.float32)}
        )
        assert out.shape == (T, N, 8)


def test_not_a_recurrent_layer_and_atomic_write(tmp_path):
    with pytest.raises(TypeError, match="RNN, LSTM and GRU"):
        to_onnx(rnn.Linear(2, 3), tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []  # nothing written
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    to_onnx(rnn.LSTM(2, 3), target)
    assert onnx.load(str(target)).graph.node and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
