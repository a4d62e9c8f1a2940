"""Numerics: sigmoid, softmax and log_softmax at +-1000, and recurrent layers on huge inputs.

"No warning" is checked two ways: numpy's floating-point errors turned into exceptions for
overflow, division by zero and invalid operations (underflow to 0, as in exp(-2000), is the
correct answer and stays allowed), and Python warnings turned into errors.
"""

import warnings
from contextlib import contextmanager

import numpy as np
import pytest

import rnnlab.nn as rnn
from rnnlab.nn.functional import log_softmax, sigmoid, softmax

DTYPES = [np.float32, np.float64]


@contextmanager
def strict():
    with (
        np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error")
        yield


def test_strict_context_would_catch_an_overflow():
    """The checks below can fail: the naive formulas do trip them."""
    x = np.array([-1000.0, 1000.0])
    with pytest.raises(FloatingPointError), strict():
        1.0 / (1.0 + np.exp(-x))
    with pytest.raises(FloatingPointError), strict():
        np.exp(x) / np.exp(x).sum()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_extremes(dtype):
    x = np.array([-1000, -100, -20, 0, 20, 100, 1000], dtype)
    with strict():
        s = sigmoid(x)
    assert s.dtype == dtype
    assert np.all(np.isfinite(s)), s
    assert s[0] == 0.0 and s[-1] == 1.0, f"limits {s[0]}, {s[-1]}"
    assert s[3] == 0.5
    assert np.all(np.diff(s) >= 0), "not monotone"
    ref = 1.0 / (1.0 + np.exp(-x[1:-1].astype(np.float64)))  # safe in this range
    assert np.abs(s[1:-1] - ref).max() < (1e-6 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_keeps_the_dtype(dtype):
    x = np.array([[-1000, 3], [1000, -3]], dtype)
    with strict():
        r = sigmoid(x)
    assert r.dtype == dtype
    np.testing.assert_allclose(r, [[0, 1 / (1 + np.exp(-3))], [1, 1 / (1 + np.exp(3))]], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_extremes(dtype):
    x = np.array([[1000, -1000, 0], [1000, 1000, 1000], [-1000, -1000, -1000], [-1000, -999, -1000]], dtype)
    with strict():
        p = softmax(x)
        lp = log_softmax(x)
    assert p.dtype == dtype and lp.dtype == dtype
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(lp)), (p, lp)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[0], [1, 0, 0], atol=1e-30)
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)
    e = np.exp(1.0)
    np.testing.assert_allclose(p[3], [1 / (e + 2), e / (e + 2), 1 / (e + 2)], rtol=1e-6)
    np.testing.assert_allclose(lp[0], [0, -2000, -1000], rtol=1e-6)  # exact, not -inf
    np.testing.assert_allclose(lp[1], [-np.log(3)] * 3, rtol=1e-6)
    np.testing.assert_allclose(lp[3], np.log(p[3]), rtol=1e-5)


def test_softmax_axis():
    x = np.array([[1000.0, -1000.0], [0.0, 1000.0]])
    with strict():
        p = softmax(x, axis=0)
    np.testing.assert_allclose(p, [[1, 0], [0, 1]], atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_extreme_logits(dtype):
    z = np.array([[1000, -1000, 0], [1000, -1000, 0]], dtype)
    y = np.array([0, 1])
    f = rnn.CrossEntropyLoss(reduction="sum")
    with strict():
        loss = f(z, y)
        d = f.backward()
    assert np.isfinite(loss) and abs(loss - 2000.0) < 1e-3, loss  # 0 + 2000
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d, [[0, 0, 0], [1, -1, 0]], atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: rnn.LSTM(3, 4, **kw),
        lambda **kw: rnn.GRU(3, 4, reset_after=True, **kw),
        lambda **kw: rnn.GRU(3, 4, reset_after=False, **kw),
        lambda **kw: rnn.RNN(3, 4, **kw),
    ],
    ids=["LSTM", "GRU", "GRU_chapter", "RNN_TANH"],
)
def test_recurrent_layers_on_huge_inputs(make, dtype):
    m = make(num_layers=2, bidirectional=True, dtype=dtype, seed=0)
    rng = np.random.default_rng(0)
    x = (1000 * np.sign(rng.standard_normal((6, 2, 3)))).astype(dtype)
    with strict():
        out, st = m(x)
        dx, dst = m.backward(rng.standard_normal(out.shape).astype(dtype))
    states = st if isinstance(st, tuple) else (st,)
    for name, a in [("out", out), ("dx", dx)] + [(f"state{k}", s) for k, s in enumerate(states)]:
        assert np.all(np.isfinite(a)), f"{name} not finite"
    assert np.abs(out).max() <= 1.0, "h = o tanh(c) / tanh(.) / convex mix of tanh must stay in [-1, 1]"
    for k, g in m.grads.items():
        assert np.all(np.isfinite(g)), f"grad {k} not finite"
