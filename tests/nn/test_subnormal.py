"""Vanishing gradients in float32: the compiled backward flushes |g| < 1e-30 to zero (kernels._ftz)
instead of computing on subnormal numbers (~10x slower on this CPU; the speed is measured in
the commit message, not here). The NumPy reference path keeps them; both agree."""

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab.nn import runtime

pytest.importorskip("numba", reason="the compiled loops are optional")
from rnnlab.nn.backend import kernels  # noqa: E402


def vanish(mode, kw, fast):
    """T=150 steps with a gradient only at the last one and small recurrent weights."""
    with runtime.override(backend="compiled" if fast else "numpy"):
        return _vanish(mode, kw)


def _vanish(mode, kw):
    m = getattr(rnn, mode)(2, 16, seed=1, **kw)
    for k, p in m.params.items():
        if "weight_hh" in k:
            p *= 0.3
    rng = np.random.default_rng(1)
    x = rng.standard_normal((150, 4, 2)).astype(np.float32)
    dout = np.zeros((150, 4, 16), np.float32)
    dout[-1] = 1.0
    m(x)
    dx, _ = m.backward(dout)
    return m.hidden_grad_norms(), dx, {k: v.copy() for k, v in m.grads.items()}


@pytest.mark.parametrize(
    "mode,kw",
    [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False})],
    ids=["lstm", "gru", "gru-before"],
)
def test_tiny_gradients_flushed_on_the_fast_path_only(mode, kw):
    norms_np, dx_np, g_np = vanish(mode, kw, fast=False)
    norms, dx, g = vanish(mode, kw, fast=True)
    tiny = (norms_np > 0) & (norms_np < 1e-31)
    assert tiny.any()  # the reference does go that small
    assert (norms[tiny] == 0).all()  # the fast path stops at 1e-30
    assert not ((norms > 0) & (norms < 1e-31)).any()
    tiny32 = np.finfo(np.float32).tiny  # the smallest normal float32
    assert not ((dx != 0) & (np.abs(dx) < tiny32)).any()  # no subnormal dx either
    assert_close("norms", norms, norms_np, 1e-5)
    assert_close("dx", dx, dx_np, 1e-5)
    for k in g:
        assert_close(k, g[k], g_np[k], 1e-5)


def test_nan_survives_the_flush():
    assert np.isnan(kernels._ftz(np.float32("nan")))
    assert kernels._ftz(np.float32(3e-31)) == 0
    assert kernels._ftz(np.float32(-2e-30)) == np.float32(-2e-30)
