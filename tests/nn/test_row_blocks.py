"""The LSTM's compiled loop in parallel row blocks of the batch (fused.lstm_*_rows, recurrent.
_row_blocks): the same numbers as the one-block loop, with and without lengths, forward,
backward and inference. Needs MKL, numba and numba's OpenMP layer with two threads."""
import numpy as np
import pytest

import rnnlab.nn as rnn
from conftest import assert_close
from rnnlab.nn import blas, fused, recurrent

pytestmark = pytest.mark.skipif(
    not (blas.AVAILABLE and fused.ENABLED and fused.parallel_threads() >= 2),
    reason="row blocks need mkl, numba and its OpenMP layer with 2 threads")


@pytest.fixture(autouse=True)
def two_threads():
    before = blas.get_num_threads()
    blas.set_num_threads(2)
    yield
    blas.set_num_threads(before)


def run(N, lengths, infer, bidir=False, T=11, I=24, H=40, L=2):
    m = rnn.LSTM(I, H, num_layers=L, bidirectional=bidir, seed=3)
    D = 2 if bidir else 1
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    dout = rng.standard_normal((T, N, D * H)).astype(np.float32)
    h0, c0, dh, dc = (rng.standard_normal((L * D, N, H)).astype(np.float32) for _ in range(4))
    if infer:
        with rnn.inference_mode():
            out, (h, c) = m(x, (h0, c0), lengths=lengths)
        return {"out": out, "h_n": h, "c_n": c}
    out, (h, c) = m(x, (h0, c0), lengths=lengths)
    dx, (dh0, dc0) = m.backward(dout, (dh, dc))
    res = {"out": out, "h_n": h, "c_n": c, "dx": dx, "dh0": dh0, "dc0": dc0,
           **{k: v.copy() for k, v in m.grads.items()}}
    for layer in range(L):
        for d in range(D):
            res[f"dh norms {layer} {d}"] = m.hidden_grad_norms(layer, d)
    return res


@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("infer", [False, True], ids=["train", "infer"])
@pytest.mark.parametrize("N,lengths", [(8, None), (6, [11, 1, 4, 11, 7, 2]), (9, None)],
                         ids=["full", "lengths", "odd-batch"])
def test_row_blocks_equal_one_block(N, lengths, infer, bidir, monkeypatch):
    lengths = None if lengths is None else np.array(lengths)
    monkeypatch.setattr(recurrent, "_MIN_ROWS", 10**9)          # one block
    monkeypatch.setattr(recurrent, "_MIN_WORK", 1e30)          # directions in turn
    ref = run(N, lengths, infer, bidir)
    calls = []
    for name in ("lstm_forward_rows", "lstm_backward_rows"):
        real = getattr(fused, name)
        monkeypatch.setattr(fused, name,
                            lambda *a, _r=real, _n=name: (calls.append((_n, a[-2])), _r(*a))[1])
    monkeypatch.setattr(recurrent, "_MIN_ROWS", 2)              # blocks of >= 2 rows
    monkeypatch.setattr(recurrent, "_MIN_WORK", 0)             # (row blocks win over jobs)
    got = run(N, lengths, infer, bidir)
    calls_per_pass = 4 if bidir else 2                          # layers x directions
    expected = [("lstm_forward_rows", 2)] * calls_per_pass      # 2 threads: 2 blocks
    if not infer:
        expected += [("lstm_backward_rows", 2)] * calls_per_pass
    assert calls == (expected if N % 2 == 0 else [])            # odd N: one block
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-6)


def test_how_many_blocks(monkeypatch):
    kernel = rnn.LSTM(3, 4).kernel
    assert recurrent._row_blocks(kernel, 64) == 2                # two threads, 32 rows each
    assert recurrent._row_blocks(kernel, 20) == 1                # 10 rows: one threaded GEMM
    assert recurrent._row_blocks(kernel, 33) == 1                # 2 does not divide 33
    assert recurrent._row_blocks(rnn.GRU(3, 4).kernel, 64) == 1  # LSTM only
    blas.set_num_threads(1)
    assert recurrent._row_blocks(kernel, 64) == 1


def test_after_torch_set_num_threads():
    """PyTorch's set_num_threads switches MKL's dynamic threads off; the blocks must still
    give the same numbers (they pin one MKL thread each)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = run(32, None, False)
    finally:
        torch.set_num_threads(before)
    blas.set_num_threads(1)                                      # the serial loop
    ref = run(32, None, False)
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-6)


def test_numba_start_leaves_openmp_nesting_as_it_was():
    """numba's OpenMP layer raises libgomp's max active levels when it starts; rnnlab sets it
    back (else PyTorch's parallel regions in the same process nest teams: ~40x slower)."""
    import subprocess
    import sys
    code = ("import ctypes; from numba.np.ufunc import omppool; "
            "lib = ctypes.CDLL(omppool.__file__); before = lib.omp_get_max_active_levels(); "
            "from rnnlab.nn import fused; n = fused.parallel_threads(); "
            "import numba; print(before, lib.omp_get_max_active_levels(), n, "
            "numba.threading_layer())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    before, after, n, layer = res.stdout.split()
    assert layer == "omp" and int(n) >= 2, res.stderr
    assert after == before, f"max active levels {before} -> {after}"
