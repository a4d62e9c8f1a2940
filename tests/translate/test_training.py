"""ChunkedAdam is the engine's Adam (bitwise in float64, to rounding in float32), whatever the
number of threads; the fused zero_grad."""
import numpy as np
import pytest

from rnnlab.nn import Linear
from rnnlab.optim import Adam
from rnnlab.translate.training import ChunkedAdam


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(ChunkedAdam, "chunk", 4096)   # several chunks per tensor, a ragged last one


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_adam_equals_engine_adam(threads, dtype, small_chunks):
    rng = np.random.default_rng(0)
    a, b = Linear(300, 250, dtype=dtype, seed=1), Linear(300, 250, dtype=dtype, seed=1)
    oa, ob = Adam([a], lr=1e-2), ChunkedAdam([b], lr=1e-2, threads=threads)
    for _ in range(4):
        a.zero_grad()
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in a.grads.items()}
        for m in (a, b):
            for k, g in grads.items():
                m.grads[k] += g
        oa.step()
        ob.step(zero_grad=True)
        assert all(not g.any() for g in b.grads.values())
    for k in a.params:
        if dtype == np.float64:
            np.testing.assert_array_equal(a.params[k], b.params[k])
        else:
            np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-6, atol=1e-9)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=1e-5, atol=1e-9)


def test_threads_do_not_change_the_result(small_chunks):
    rng = np.random.default_rng(1)
    mods = [Linear(200, 300, seed=2) for _ in range(3)]
    opts = [ChunkedAdam([m], threads=t) for m, t in zip(mods, (1, 2, 4))]
    for _ in range(3):
        g = rng.standard_normal((300, 200)).astype(np.float32)
        for m, o in zip(mods, opts):
            m.grads["weight"] += g
            o.step(zero_grad=True)
    for m in mods[1:]:
        np.testing.assert_array_equal(m.params["weight"], mods[0].params["weight"])
