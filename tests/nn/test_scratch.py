"""rnnlab/nn/backend/scratch.py: pooled buffers are reused only when nobody else holds them."""

import numpy as np
import pytest

import rnnlab.nn as rnn
from rnnlab.nn import runtime
from rnnlab.nn.backend import scratch


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch):
    scratch.clear()
    yield
    scratch.clear()


def _addr(a):
    return a.ctypes.data


def test_reuse_only_when_free():
    a = scratch.empty((100, 200), np.float32)
    a_at = _addr(a)
    b = scratch.empty((100, 200), np.float32)
    assert _addr(b) != a_at  # a is still held here
    del a
    c = scratch.empty((100, 200), np.float32)
    assert _addr(c) == a_at  # a was free: handed out again
    assert _addr(scratch.empty((100, 200), np.float64)) not in (
        _addr(b),
        _addr(c),
    )  # dtype is part of the key


@pytest.mark.parametrize(
    "make", [lambda a: a[1:], lambda a: a[1:][::2].T, lambda a: a.reshape(-1), lambda a: a.view(np.int32)]
)
def test_a_view_keeps_its_buffer(make):
    """However a caller's view was derived, the buffer under it is not handed out again."""
    a = scratch.empty((128, 128), np.float32)
    a_at = _addr(a)
    view = make(a)
    del a
    other = scratch.empty((128, 128), np.float32)
    assert _addr(other) != a_at
    del view
    assert _addr(scratch.empty((128, 128), np.float32)) == a_at  # (other is still held)


@pytest.mark.parametrize("shape", [(3,), (7, 7, 1024), (50, 64, 1024), (51, 64, 256), (0, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, bool])
def test_arrays_start_on_a_cache_line(shape, dtype):
    """NumPy's own big arrays start 16 bytes past a page: every row of them would too."""
    for _ in range(3):  # fresh and pooled ones
        a = scratch.empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype
        assert a.size == 0 or _addr(a) % 64 == 0  # (an empty array has no data to place)
        assert a.flags.c_contiguous and a.flags.writeable
    fresh = [scratch.aligned(shape, dtype) for _ in range(2)]  # never pooled: two buffers
    assert all(f.shape == shape and f.dtype == dtype for f in fresh)
    assert shape[0] == 0 or (_addr(fresh[0]) % 64 == 0 and _addr(fresh[0]) != _addr(fresh[1]))
    c = scratch.copy(np.arange(12.0).reshape(3, 4), np.float32)
    assert _addr(c) % 64 == 0 and c.dtype == np.float32
    np.testing.assert_array_equal(c, np.arange(12.0).reshape(3, 4))


def test_small_and_huge_arrays_are_not_pooled():
    scratch.empty((4, 4), np.float32)
    assert scratch.pooled_bytes() == 0
    with runtime.override(scratch_mib=1):
        scratch.empty((2**19,), np.float32)  # 2 MiB > the limit
    assert scratch.pooled_bytes() == 0


def test_the_pool_forgets_its_oldest_arrays_beyond_the_limit():
    with runtime.override(scratch_mib=0.75):
        held = [scratch.empty((2**16,), np.float32) for _ in range(5)]  # 256 KiB each
    assert scratch.pooled_bytes() <= 3 * 2**18
    held[0][:] = 7  # forgotten arrays stay valid for their holder
    assert (held[0] == 7).all()


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_outputs_survive_later_calls(mode):
    """A caller's output is a pooled buffer; the next forward must not write into it."""
    m = getattr(rnn, mode)(16, 32, seed=0)
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((20, 8, 16)).astype(np.float32) for _ in range(2))
    out1, _ = m(x1)
    keep = out1.copy()
    out2, _ = m(x2)
    dx2, _ = m.backward(np.ones_like(out2))
    m(x1)
    np.testing.assert_array_equal(out1, keep)
    assert not np.array_equal(out1, out2)


def test_training_steps_match_with_and_without_reuse():
    """Two identical training runs, one with a cleared pool before every call, agree bitwise."""

    def train(clear):
        m = rnn.LSTM(6, 10, num_layers=2, bidirectional=True, seed=1)
        rng = np.random.default_rng(1)
        for _ in range(4):
            if clear:
                scratch.clear()
            x = rng.standard_normal((7, 3, 6)).astype(np.float32)
            out, _ = m(x)
            m.backward(out)
            for k, p in m.params.items():
                p -= 0.1 * m.grads[k]
            m.zero_grad()
        return {k: v.copy() for k, v in m.params.items()}

    a, b = train(False), train(True)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_the_buffer_used_last_is_handed_out_first():
    """Two free buffers of one shape: a layer calling again and again keeps getting the one it
    used last (still in cache), not the two in turn."""
    a, b = scratch.empty((100, 200), np.float32), scratch.empty((100, 200), np.float32)
    b_at = _addr(b)
    del b
    x = scratch.empty((100, 200), np.float32)  # b, the only free one: now used last
    assert _addr(x) == b_at
    del a, x  # both free; b was used after a
    for _ in range(3):
        y = scratch.empty((100, 200), np.float32)
        assert _addr(y) == b_at
        del y
