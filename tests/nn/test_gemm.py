"""rnnlab/nn/backend/gemm.py, onednn.py: the GEMM libraries (oneDNN, MKL, OpenBLAS) against
NumPy's products, and the layers that use them.

Every library that loads here is tested (in CI all three: ``rnnlab[fast]`` brings the ``mkl``
and ``onednn-cpu-gomp`` wheels; NumPy brings its OpenBLAS): float32 within 1e-5 relative of a
float64 product, float64 within 1e-12, and the layers on each within 1e-5 of the NumPy loop.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab.nn import backend, runtime
from rnnlab.nn.backend import gemm, libraries

TOL = {np.float32: 1e-5, np.float64: 1e-12}
NAMES = [n for n in ("onednn", "mkl", "openblas") if backend.library(n) is not None]


@pytest.fixture(params=NAMES)
def lib(request):
    return backend.library(request.param)


def layouts(m):
    """The same matrix as C-order, F-order (a transposed view) and a column slice of a wider one."""
    wide = np.zeros((m.shape[0], m.shape[1] + 5), m.dtype)
    wide[:, 2 : 2 + m.shape[1]] = m
    return {"C": m, "F": np.asfortranarray(m), "slice": wide[:, 2 : 2 + m.shape[1]]}


def test_numpys_openblas_is_found():
    """NumPy's wheels bundle OpenBLAS: where NumPy runs on one, it is offered."""
    from threadpoolctl import threadpool_info

    if sys.platform == "linux" and any(p.get("internal_api") == "openblas" for p in threadpool_info()):
        assert "openblas" in NAMES


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 256, 64), (3, 5, 2), (64, 33, 130), (1, 9, 4)])
def test_matmul_every_layout(lib, dtype, M, K, N):
    rng = np.random.default_rng(M * 100 + K)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    for la, A in layouts(a).items():
        for lb, B in layouts(b).items():
            out = lib.matmul(A, B)
            assert out.dtype == dtype
            assert_close(f"{la} @ {lb}", out, ref, TOL[dtype])
            into = np.full((M, N + 3), np.nan, dtype)[:, 1 : N + 1]  # strided output rows
            lib.matmul(A, B, out=into)
            assert_close(f"{la} @ {lb} into a strided out", into, ref, TOL[dtype])


def test_numpys_openblas_is_found_beside_scipys():
    """SciPy's wheels bundle a second OpenBLAS (other symbol names); once SciPy is imported,
    NumPy's is still the one found (it was not: after a backend.reset(), openblas did not load)."""
    pytest.importorskip("scipy.linalg")
    if "openblas" not in NAMES:
        pytest.skip("NumPy runs on another BLAS here")
    path = gemm.numpy_openblas_path()
    assert os.sep + "numpy" in path, path
    assert libraries.load("openblas") is not None


def test_matmul_falls_back_for_other_dtypes_and_layouts(lib):
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    np.testing.assert_array_equal(lib.matmul(a, a.T), a @ a.T)
    x = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    a, b = x[::2, ::2], x[::2, 1::2].T  # neither rows nor columns unit-stride
    assert_close("strided", lib.matmul(a, b), a.astype(np.float64) @ b, 1e-5)
    assert_close("K=0", lib.matmul(x[:, :0], x[:0, :]), np.zeros((6, 8)), 0)  # K = 0


@pytest.mark.parametrize("uses", [1, 100], ids=["in place", "packed"])
def test_operand_in_a_compiled_product(lib, uses):
    """The operand the compiled loops get (packed by MKL when it pays), used by loops._gemm
    for a^T W^T-like products as in the LSTM's step: out = a @ b (+ beta out)."""
    pytest.importorskip("numba")
    from rnnlab.nn.backend import loops

    rng = np.random.default_rng(1)
    M, K, N = 16, 40, 96
    a = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((3 * N, K)).astype(np.float32)  # a weight stored (out, in)
    for name, b in {
        "W^T view": W.T,
        "columns of W^T": W.T[:, N : 2 * N],
        "C copy": np.ascontiguousarray(W.T),
    }.items():
        op = lib.operand(b, M, uses)
        start = rng.standard_normal((M, b.shape[1])).astype(np.float32)
        for beta in (0.0, 1.0):
            out = start.copy()
            loops._gemm(*lib.compiled, a, op.operand, out, np.float32(beta))
            assert_close(f"{name} beta={beta}", out, a.astype(np.float64) @ b + beta * start, 1e-5)


def run(mode, kw, gemm_name, fast, T=9, N=5, I=7, H=12, L=2, bidir=True, lengths=None):
    """Every output and gradient of a 2-layer bidirectional layer. With MKL, N=5 runs the
    compiled loops with W in place, N=32 with W packed (gemm.MKL.operand's rule)."""
    with runtime.override(backend="compiled" if fast else "numpy", gemm=gemm_name):
        m = getattr(rnn, mode)(I, H, num_layers=L, bidirectional=bidir, seed=4, **kw)
        rng = np.random.default_rng(4)
        x = rng.standard_normal((T, N, I)).astype(np.float32)
        dout = rng.standard_normal((T, N, 2 * H if bidir else H)).astype(np.float32)
        D = 2 if bidir else 1
        final = [rng.standard_normal((L * D, N, H)).astype(np.float32) for _ in range(2)]
        out, _ = m(x, lengths=lengths)
        dx, d0 = m.backward(dout, tuple(final) if mode == "LSTM" else final[0])
    d0 = d0 if mode == "LSTM" else (d0,)
    return {
        "out": out,
        "dx": dx,
        **{f"d state0 {i}": d for i, d in enumerate(d0)},
        **{k: v.copy() for k, v in m.grads.items()},
    }


@pytest.mark.parametrize(
    "mode,kw",
    [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False})],
    ids=["lstm", "gru", "gru-before"],
)
@pytest.mark.parametrize(
    "N,lengths",
    [(5, None), (5, [9, 3, 1, 9, 6]), (32, None), (32, [9, 3, 1, 9, 6, 2] * 5 + [9, 8])],
    ids=["in-place", "in-place-lengths", "packed", "packed-lengths"],
)
def test_layers_on_each_library_equal_numpy_path(lib, mode, kw, N, lengths):
    """The compiled loops on this GEMM library against the pure NumPy loop, every tensor."""
    pytest.importorskip("numba")
    lengths = None if lengths is None else np.array(lengths)
    ref = run(mode, kw, lib.name, fast=False, N=N, lengths=lengths)
    got = run(mode, kw, lib.name, fast=True, N=N, lengths=lengths)
    for k in ref:
        assert_close(f"{k} on {lib.name}", got[k], ref[k], 1e-5)


@pytest.mark.parametrize("lengths", [None, np.arange(64) % 16 + 1], ids=["full", "lengths"])
def test_lstm_merged_weight_gradient_gemm(lib, lengths):
    """[dU | dW | db] as one GEMM over [x | h | 1] (every LSTM pass; here a larger one than
    the layer tests): the compiled path still equals the NumPy path."""
    pytest.importorskip("numba")
    kw = dict(T=16, N=64, I=100, H=156, L=1, bidir=True, lengths=lengths)
    ref = run("LSTM", {}, lib.name, fast=False, **kw)
    got = run("LSTM", {}, lib.name, fast=True, **kw)
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-5)


def test_no_mkl_switch_in_a_fresh_process():
    code = (
        "import numpy as np, rnnlab.nn as rnn; from rnnlab.nn import runtime; "
        "out, _ = rnn.LSTM(3, 4, seed=0)(np.ones((2, 1, 3), np.float32)); "
        "print(out.shape, runtime.describe()['gemm'])"
    )
    env = dict(os.environ, RNNLAB_NO_MKL="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["(2,", "1,", "4)", "openblas" if "openblas" in NAMES else "None"]


@pytest.mark.skipif("mkl" not in NAMES, reason="mkl not installed")
def test_mkl_thread_count_follows_the_environment():
    code = "from rnnlab.nn import backend; print(backend.library('mkl').get_threads())"
    for n in ("1", "2"):
        env = {k: v for k, v in os.environ.items() if not k.endswith("NUM_THREADS")}
        env["OPENBLAS_NUM_THREADS"] = n
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert res.stdout.strip() == n, res.stderr


def test_runtime_threads_reach_the_library(lib):
    before = lib.get_threads()
    with runtime.override(threads=1):
        assert lib.get_threads() == 1
    assert lib.get_threads() == before  # threads=None: the library's own again


@pytest.mark.skipif("mkl" not in NAMES, reason="needs mkl")
def test_set_threads_wins_over_a_local_count():
    """A thread-local MKL count (PyTorch's set_num_threads can leave one on the main thread)
    must not turn set_threads into a no-op on the calling thread."""
    lib = backend.library("mkl")
    before = lib.get_threads()
    try:
        lib.set_local(2)
        lib.set_threads(1)
        assert lib.get_threads() == 1
    finally:
        lib.set_threads(before)


def test_blas_operand_layouts():
    x = np.zeros((4, 6), np.float32)
    assert gemm.blas_operand(x) == (gemm.NO_TRANS, 6)
    assert gemm.blas_operand(x.T) == (gemm.TRANS, 6)
    assert gemm.blas_operand(x[:, 1:4]) == (gemm.NO_TRANS, 6)
    assert gemm.blas_operand(x[::2, ::2]) is None
