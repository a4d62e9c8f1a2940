"""rnnlab/nn/blas.py: MKL's GEMMs (optional) against NumPy's, and the layers that use them.

Without the ``mkl`` wheel every function falls back to ``np.matmul``; these tests then
check the fallback. With it (``rnnlab[fast]`` on x86-64 Linux, as in CI) they check MKL:
float32 within 1e-5 relative of a float64 product, float64 within 1e-12.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnlab.nn as rnn
from conftest import assert_close
from rnnlab.nn import blas, fused

TOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.fixture(autouse=True)
def restore_switches(monkeypatch):
    monkeypatch.setattr(blas, "ENABLED", blas.ENABLED)
    monkeypatch.setattr(fused, "ENABLED", fused.ENABLED)


def layouts(m):
    """The same matrix as C-order, F-order (a transposed view) and a column slice of a wider one."""
    wide = np.zeros((m.shape[0], m.shape[1] + 5), m.dtype)
    wide[:, 2 : 2 + m.shape[1]] = m
    return {"C": m, "F": np.asfortranarray(m), "slice": wide[:, 2 : 2 + m.shape[1]]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 256, 64), (3, 5, 2), (64, 33, 130), (1, 9, 4)])
def test_matmul_every_layout(dtype, M, K, N):
    rng = np.random.default_rng(M * 100 + K)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    for la, A in layouts(a).items():
        for lb, B in layouts(b).items():
            out = blas.matmul(A, B)
            assert out.dtype == dtype
            assert_close(f"{la} @ {lb}", out, ref, TOL[dtype])
            into = np.full((M, N + 3), np.nan, dtype)[:, 1 : N + 1]   # strided output rows
            blas.matmul(A, B, out=into)
            assert_close(f"{la} @ {lb} into a strided out", into, ref, TOL[dtype])


def test_matmul_falls_back_for_other_dtypes_and_layouts():
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    np.testing.assert_array_equal(blas.matmul(a, a.T), a @ a.T)
    x = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    a, b = x[::2, ::2], x[::2, 1::2].T                       # neither rows nor columns unit-stride
    assert_close("strided", blas.matmul(a, b), a.astype(np.float64) @ b, 1e-5)
    assert_close("K=0", blas.matmul(x[:, :0], x[:0, :]), np.zeros((6, 8)), 0)  # K = 0


@pytest.mark.parametrize("uses", [1, 100], ids=["in place", "packed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_operand(dtype, uses):
    rng = np.random.default_rng(1)
    M, K, N = 16, 40, 96
    a = rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((3 * N, K)).astype(dtype)        # a weight stored (out, in)
    for name, b in {"W^T view": W.T, "columns of W^T": W.T[:, N : 2 * N],
                    "C copy": np.ascontiguousarray(W.T)}.items():
        P = blas.Packed(b, M, uses)
        assert (P.operand is not None) == (blas.ENABLED and dtype == np.float32)
        out = np.empty((M, b.shape[1]), dtype)
        P.matmul(a, out)
        assert_close(name, out, a.astype(np.float64) @ b, TOL[dtype])
    P = blas.Packed(W.T, M)
    other = rng.standard_normal((M + 1, K)).astype(dtype)   # another M: NumPy's product
    out = np.empty((M + 1, 3 * N), dtype)
    assert_close("other M", P.matmul(other, out), other.astype(np.float64) @ W.T, TOL[dtype])


def run(mode, kw, fast, mkl, T=9, N=5, I=7, H=12, L=2, bidir=True, lengths=None):
    """Every output and gradient of a 2-layer bidirectional layer. With MKL, N=5 runs the
    compiled loops with W in place, N=32 with W packed (blas.Packed's rule)."""
    fused.ENABLED, blas.ENABLED = fast, mkl
    m = getattr(rnn, mode)(I, H, num_layers=L, bidirectional=bidir, seed=4, **kw)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    dout = rng.standard_normal((T, N, 2 * H if bidir else H)).astype(np.float32)
    D = 2 if bidir else 1
    final = [rng.standard_normal((L * D, N, H)).astype(np.float32) for _ in range(2)]
    out, _ = m(x, lengths=lengths)
    dx, d0 = m.backward(dout, tuple(final) if mode == "LSTM" else final[0])
    d0 = d0 if mode == "LSTM" else (d0,)
    return {"out": out, "dx": dx, **{f"d state0 {i}": d for i, d in enumerate(d0)},
            **{k: v.copy() for k, v in m.grads.items()}}


@pytest.mark.skipif(not (blas.AVAILABLE and fused.ENABLED), reason="needs mkl and numba")
@pytest.mark.parametrize("mode,kw", [("LSTM", {}), ("GRU", {"reset_after": True}),
                                     ("GRU", {"reset_after": False})], ids=["lstm", "gru", "gru-before"])
@pytest.mark.parametrize("N,lengths", [(5, None), (5, [9, 3, 1, 9, 6]), (32, None),
                                       (32, [9, 3, 1, 9, 6, 2] * 5 + [9, 8])],
                         ids=["in-place", "in-place-lengths", "packed", "packed-lengths"])
def test_layers_with_mkl_equal_numpy_path(mode, kw, N, lengths):
    """The fast path (fused kernels + MKL GEMMs) against the pure NumPy path, every tensor."""
    lengths = None if lengths is None else np.array(lengths)
    ref = run(mode, kw, fast=False, mkl=False, N=N, lengths=lengths)
    for fast, mkl in [(True, True), (True, False)]:
        got = run(mode, kw, fast, mkl, N=N, lengths=lengths)
        for k in ref:
            assert_close(f"{k} fused={fast} mkl={mkl}", got[k], ref[k], 1e-5)


def test_no_mkl_switch_in_a_fresh_process():
    code = ("import numpy as np, rnnlab.nn as rnn; from rnnlab.nn import blas; "
            "assert not blas.AVAILABLE and not blas.ENABLED and blas.get_num_threads() is None; "
            "out, _ = rnn.LSTM(3, 4, seed=0)(np.ones((2, 1, 3), np.float32)); print(out.shape)")
    env = dict(os.environ, RNNLAB_NO_MKL="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(2, 1, 4)"


@pytest.mark.skipif(not blas.AVAILABLE, reason="mkl not installed")
def test_thread_count_follows_the_environment():
    code = "from rnnlab.nn import blas; print(blas.get_num_threads())"
    for n in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if not k.endswith("NUM_THREADS")}
        env["OPENBLAS_NUM_THREADS"] = n
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert res.stdout.strip() == n, res.stderr


@pytest.mark.skipif(not (blas.AVAILABLE and fused.ENABLED), reason="needs mkl and numba")
@pytest.mark.parametrize("lengths", [None, np.arange(64) % 16 + 1], ids=["full", "lengths"])
def test_lstm_merged_weight_gradient_gemm(lengths):
    """[dU | dW | db] as one GEMM over [x | h | 1] (every fast LSTM pass; here a larger one
    than the layer tests): still equal to the NumPy path."""
    kw = dict(T=16, N=64, I=100, H=156, L=1, bidir=True, lengths=lengths)
    ref = run("LSTM", {}, fast=False, mkl=False, **kw)
    got = run("LSTM", {}, fast=True, mkl=True, **kw)
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-5)


@pytest.mark.skipif(not blas.AVAILABLE, reason="needs mkl")
def test_set_num_threads_wins_over_a_local_count():
    """A thread-local MKL count (PyTorch's set_num_threads can leave one on the main thread)
    must not turn blas.set_num_threads into a no-op on the calling thread."""
    before = blas.get_num_threads()
    try:
        blas.set_num_threads_local(2)
        blas.set_num_threads(1)
        assert blas.get_num_threads() == 1
    finally:
        blas.set_num_threads(before)
