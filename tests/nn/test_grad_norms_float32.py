"""||dL/dh_t|| stays exact in float32 for gradients whose squares underflow float32 (< 1e-38)."""

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as nn
from rnnlab.nn import runtime


@pytest.fixture(params=["compiled", "numpy"])
def backend(request):
    with runtime.override(backend=request.param):
        yield request.param


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_tiny_hidden_grad_norms_do_not_underflow(cls, backend):
    m32 = cls(3, 5, seed=0, bidirectional=True)
    m64 = cls(3, 5, seed=0, bidirectional=True, dtype=np.float64)
    m64.load_state_dict(m32.state_dict())
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    dout = np.zeros((6, 2, 10))
    dout[-1] = 1e-25  # squares 1e-50: zero in float32
    for m in (m32, m64):
        m(x)
        m.backward(dout)
    for d in (0, 1):
        ref = m64.hidden_grad_norms(direction=d)
        assert ref.max() > 0
        assert_close(f"norms dir {d}", m32.hidden_grad_norms(direction=d), ref, 1e-5)
