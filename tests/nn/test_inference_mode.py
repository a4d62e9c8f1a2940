"""rnnlab.nn.inference_mode: the same outputs as a normal forward, nothing kept for backward."""

import threading

import numpy as np
import pytest

import rnnlab.nn as rnn
from rnnlab.nn import runtime

CASES = [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False}), ("RNN", {})]


@pytest.fixture(params=["compiled", "numpy"])
def backend(request):
    with runtime.override(backend=request.param):
        yield request.param


@pytest.mark.parametrize("mode,kw", CASES, ids=["lstm", "gru", "gru-before", "rnn"])
@pytest.mark.parametrize(
    "N,lengths", [(3, None), (3, [5, 2, 1]), (40, None)], ids=["full", "lengths", "packed"]
)
def test_same_outputs_bitwise(mode, kw, backend, N, lengths):
    m = getattr(rnn, mode)(4, 6, num_layers=2, bidirectional=True, seed=2, **kw)
    x = np.random.default_rng(2).standard_normal((5, N, 4)).astype(np.float32)
    lengths = None if lengths is None else np.array(lengths)
    out, state = m(x, lengths=lengths)
    with rnn.inference_mode():
        out_i, state_i = m(x, lengths=lengths)
    np.testing.assert_array_equal(out_i, out)
    for a, b in zip(
        np.atleast_1d(state_i) if mode != "LSTM" else state_i,
        np.atleast_1d(state) if mode != "LSTM" else state,
    ):
        np.testing.assert_array_equal(a, b)


def test_backward_and_traces_need_a_normal_forward():
    m = rnn.LSTM(3, 4, seed=0)
    x = np.ones((2, 1, 3), np.float32)
    with rnn.inference_mode():
        out, _ = m(x)
    with pytest.raises(RuntimeError, match="inference_mode"):
        m.backward(np.ones_like(out))
    with pytest.raises(RuntimeError, match="inference_mode"):
        m.gate_trace()
    out, _ = m(x)  # a normal forward: backward works again
    dx, _ = m.backward(np.ones_like(out))
    assert dx.shape == x.shape and np.abs(m.grads["weight_hh_l0"]).sum() > 0


def test_nesting_switching_off_and_threads():
    assert not rnn.is_inference_mode_enabled()
    with rnn.inference_mode():
        assert rnn.is_inference_mode_enabled()
        with rnn.inference_mode(False):
            assert not rnn.is_inference_mode_enabled()
        assert rnn.is_inference_mode_enabled()
        seen = []
        t = threading.Thread(target=lambda: seen.append(rnn.is_inference_mode_enabled()))
        t.start()
        t.join()
        assert seen == [False]  # per thread, like torch's
    assert not rnn.is_inference_mode_enabled()
    with pytest.raises(ValueError):
        with rnn.inference_mode():
            raise ValueError("leaves the mode on exit")
    assert not rnn.is_inference_mode_enabled()
