"""rnnlab/interop.py: Keras 3 layers in and out (run by Keras itself on its torch backend: no
TensorFlow or JAX), and PyTorch modules out; outputs equal within 1e-5 (float32)."""

import os

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab import interop

# Keras 3 on NumPy 2 warns about __array__(copy=...) inside its own code: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

KINDS = [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False})]
IDS = ["lstm", "gru-after", "gru-before"]


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


def _run_keras(layers, x):
    import keras

    for k in layers:
        x = keras.ops.convert_to_numpy(k(x))
    return x


def _run_ours(m, x_ntc, lengths=None):
    with rnn.inference_mode():
        out, _ = m(x_ntc.transpose(1, 0, 2), lengths=lengths)
    return out.transpose(1, 0, 2)


@pytest.mark.parametrize("mode,kw", KINDS, ids=IDS)
@pytest.mark.parametrize("seed", range(3))
def test_from_keras_and_back(mode, kw, seed):
    """A random stack of Keras layers (random weights, biases included) -> rnnlab -> Keras: the
    three give the same outputs."""
    keras = _keras()
    rng = np.random.default_rng(seed)
    L, bidir = int(rng.integers(1, 4)), bool(seed % 2)
    N, T, I, H = (int(v) for v in rng.integers(1, 8, 4))
    layers = []
    for _ in range(L):
        cell = getattr(keras.layers, mode)(H, return_sequences=True, **kw)
        layers.append(keras.layers.Bidirectional(cell) if bidir else cell)
    x = rng.standard_normal((N, T, I)).astype(np.float32)
    _run_keras(layers, x)  # builds them
    for k in layers:
        k.set_weights([0.5 * rng.standard_normal(w.shape).astype(np.float32) for w in k.get_weights()])
    want = _run_keras(layers, x)
    m = interop.from_keras(layers)
    assert (m.num_layers, m.bidirectional, m.hidden_size, m.input_size) == (L, bidir, H, I)
    assert_close("rnnlab from keras", _run_ours(m, x), want, 1e-5)
    back = interop.to_keras(m)
    assert_close("keras from rnnlab", _run_keras(back, x), want, 1e-5)
    if mode == "GRU":
        assert all((k.forward_layer if bidir else k).reset_after == kw["reset_after"] for k in back)


@pytest.mark.parametrize("mode,kw", KINDS, ids=IDS)
def test_keras_weights_of_an_rnnlab_layer_load_into_keras(mode, kw):
    """rnnlab -> Keras for a layer trained here (two biases, which Keras' LSTM sums)."""
    keras = _keras()
    m = getattr(rnn, mode)(4, 6, num_layers=2, seed=3, **kw)
    weights = interop.keras_weights(m)
    assert [w[0].shape for w in weights] == [(4, m.cell.n_gates * 6), (6, m.cell.n_gates * 6)]
    layers = []
    for w in weights:
        k = getattr(keras.layers, mode)(6, return_sequences=True, **kw)
        k.build((None, None, w[0].shape[0]))
        k.set_weights(w)
        layers.append(k)
    x = np.random.default_rng(3).standard_normal((2, 5, 4)).astype(np.float32)
    assert_close("keras", _run_keras(layers, x), _run_ours(m, x), 1e-5)


def test_from_keras_refuses_what_it_cannot_express():
    keras = _keras()
    x = np.zeros((1, 2, 3), np.float32)
    odd = keras.layers.LSTM(4, activation="relu", return_sequences=True)
    odd(x)
    with pytest.raises(ValueError, match="activation"):
        interop.from_keras(odd)
    with pytest.raises(TypeError, match="LSTM, GRU and Bidirectional"):
        interop.from_keras(keras.layers.Dense(3))
    a, b = keras.layers.LSTM(4, return_sequences=True), keras.layers.GRU(4, return_sequences=True)
    a(x), b(x)
    with pytest.raises(ValueError, match="one kind"):
        interop.from_keras([a, b])


@pytest.mark.parametrize(
    "mode,kw",
    [("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})],
    ids=["rnn-tanh", "rnn-relu", "lstm", "gru"],
)
@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
def test_to_torch_equals_rnnlab(mode, kw, bidir):
    torch = pytest.importorskip("torch")
    m = getattr(rnn, mode)(5, 7, num_layers=2, bidirectional=bidir, seed=2, **kw)
    t = interop.to_torch(m)
    assert type(t) is getattr(torch.nn, mode)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3, 5)).astype(np.float32)
    with rnn.inference_mode():
        out, fin = m(x)
    with torch.no_grad():
        tout, tfin = t(torch.from_numpy(x))
    assert_close("output", tout.numpy(), out, 1e-5)
    for a, b in zip(tfin if mode == "LSTM" else (tfin,), fin if mode == "LSTM" else (fin,)):
        assert_close("final", a.numpy(), b, 1e-5)
    # and back: torch's state_dict loads into a fresh rnnlab layer
    again = getattr(rnn, mode)(5, 7, num_layers=2, bidirectional=bidir, **kw)
    again.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    with rnn.inference_mode():
        out2, _ = again(x)
    assert_close("round trip", out2, out, 0)


def test_to_torch_refuses_the_reset_before_gru():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="reset-before"):
        interop.to_torch(rnn.GRU(2, 3, reset_after=False))
