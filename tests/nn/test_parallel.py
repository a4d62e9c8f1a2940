"""The compiled loops on several threads (rnnlab/nn/backend/compiled.py): the directions of a
bidirectional layer as parallel jobs, and the LSTM's loop in parallel row blocks of the batch.
Both give the same numbers as one serial pass. Needs numba, a GEMM library and two threads."""

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab.nn import backend, runtime

pytest.importorskip("numba", reason="the compiled loops are optional")
from rnnlab.nn.backend import loops  # noqa: E402

FAST = backend.select(rnn.LSTM(1, 1).spec, np.float32)
pytestmark = pytest.mark.skipif(FAST is None, reason="needs the compiled backend")


def run(mode, kw, threads, N, bidir, lengths, L=2, T=9, I=40, H=64, infer=False):
    # min_thread_work=0: these small layers take the threaded paths they test (by default steps
    # this small run on one thread: tests/nn/test_threads_by_size.py)
    with runtime.override(threads=threads, min_thread_work=0):
        m = getattr(rnn, mode)(I, H, num_layers=L, bidirectional=bidir, seed=7, **kw)
        D = 2 if bidir else 1
        rng = np.random.default_rng(7)
        x = rng.standard_normal((T, N, I)).astype(np.float32)
        dout = rng.standard_normal((T, N, D * H)).astype(np.float32)
        s0, sn = ([rng.standard_normal((L * D, N, H)).astype(np.float32) for _ in range(2)] for _ in range(2))
        lstm = mode == "LSTM"
        if infer:
            with rnn.inference_mode():
                out, fin = m(x, tuple(s0) if lstm else s0[0], lengths=lengths)
            return {"out": out, **{f"final {i}": v for i, v in enumerate(fin if lstm else [fin])}}
        out, fin = m(x, tuple(s0) if lstm else s0[0], lengths=lengths)
        dx, d0 = m.backward(dout, tuple(sn) if lstm else sn[0])
    res = {"out": out, "dx": dx, **{k: v.copy() for k, v in m.grads.items()}}
    for i, v in enumerate(fin if lstm else [fin]):
        res[f"final {i}"] = v
    for i, v in enumerate(d0 if lstm else [d0]):
        res[f"d state0 {i}"] = v
    for layer in range(L):
        for d in range(D):
            res[f"dh norms {layer} {d}"] = m.hidden_grad_norms(layer, d)
            res.update({f"{g} {layer} {d}": np.nan_to_num(v) for g, v in m.gate_trace(layer, d).items()})
    return res


@pytest.fixture
def jobs(monkeypatch):
    """Records (jobs, GEMM threads) of every parallel run of the directions."""
    seen, real = [], runtime.run
    monkeypatch.setattr(
        runtime,
        "run",
        lambda j, parallel=True: (seen.append((len(j), FAST.lib.get_threads())), real(j, parallel))[1],
    )
    return seen


@pytest.mark.parametrize(
    "mode,kw",
    [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False})],
    ids=["lstm", "gru", "gru-before"],
)
@pytest.mark.parametrize("N,lengths", [(12, None), (15, [9, 1, 3, 9, 2] * 3)], ids=["full", "lengths"])
def test_parallel_directions_equal_serial(mode, kw, N, lengths, jobs):
    lengths = None if lengths is None else np.array(lengths)
    ref = run(mode, kw, 1, N, True, lengths)
    assert jobs == []  # one thread: the directions in turn
    got = run(mode, kw, 2, N, True, lengths)
    # every layer: two jobs with a thread each; a library with per-thread counts keeps its
    # global count (each job sets its own), one without has it lowered to 1 for the run
    # (which library runs is measured per machine: tuning.py)
    per_caller = 2 if FAST.local_threads(FAST.lib) is not None else 1
    assert jobs and all(j == (2, per_caller) for j in jobs), (type(FAST.lib).__name__, jobs)
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-5)


def _parallel(jobs, cls, T, N, I, H, bidir=True, threads=2, dtype=np.float32):
    jobs.clear()
    with runtime.override(threads=threads):
        cls(I, H, bidirectional=bidir, dtype=dtype)(np.zeros((T, N, I), dtype))
    return len(jobs) > 0


def test_small_work_one_thread_one_direction_or_float64_stays_serial(jobs):
    lstm, gru = rnn.LSTM(1, 1).spec, rnn.GRU(1, 1).spec
    with runtime.override(threads=2):
        assert FAST.row_blocks(gru, 64) == 1  # row blocks are the LSTM's only
        assert FAST.row_blocks(lstm, 64) == min(2, FAST.parallel_threads())
    assert _parallel(jobs, rnn.LSTM, 50, 20, 128, 256)
    assert _parallel(jobs, rnn.LSTM, 50, 64, 128, 256)  # two directions: jobs, not row blocks
    assert _parallel(jobs, rnn.GRU, 50, 64, 128, 256)
    assert not _parallel(jobs, rnn.LSTM, 50, 64, 128, 256, bidir=False)  # one direction
    assert not _parallel(jobs, rnn.LSTM, 7, 8, 1, 16)  # little work
    assert not _parallel(jobs, rnn.LSTM, 50, 64, 128, 256, dtype=np.float64)
    assert not _parallel(jobs, rnn.LSTM, 50, 64, 128, 256, threads=1)


# ----------------------------------------------------------------------------- row blocks
ROWS = pytest.mark.skipif(
    FAST is None or FAST.parallel_threads() < 2, reason="row blocks need numba's OpenMP layer with 2 threads"
)


@ROWS
@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("infer", [False, True], ids=["train", "infer"])
@pytest.mark.parametrize(
    "N,lengths", [(8, None), (6, [11, 1, 4, 11, 7, 2]), (9, None)], ids=["full", "lengths", "odd-batch"]
)
def test_row_blocks_equal_one_block(N, lengths, infer, bidir, monkeypatch):
    lengths = None if lengths is None else np.array(lengths)
    kw = dict(T=11, I=24, H=40, L=2, infer=infer)
    with runtime.override(min_rows=10**9, min_work=1e30):  # one block, directions in turn
        ref = run("LSTM", {}, 2, N, bidir, lengths, **kw)
    calls = []
    for name in ("lstm_forward_rows", "lstm_backward_rows"):
        real = getattr(loops, name)
        monkeypatch.setattr(loops, name, lambda *a, _r=real, _n=name: (calls.append((_n, a[-2])), _r(*a))[1])
    with runtime.override(min_rows=2, min_work=1e30):  # directions in turn, each in row blocks
        got = run("LSTM", {}, 2, N, bidir, lengths, **kw)
    calls_per_pass = 4 if bidir else 2  # layers x directions
    expected = [("lstm_forward_rows", 2)] * calls_per_pass  # 2 threads: 2 blocks
    if not infer:
        expected += [("lstm_backward_rows", 2)] * calls_per_pass
    assert calls == (expected if N % 2 == 0 else [])  # odd N: one block
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-6)


@ROWS
def test_how_many_blocks():
    spec = rnn.LSTM(3, 4).spec
    with runtime.override(threads=2):
        assert FAST.row_blocks(spec, 64) == 2  # two threads, 32 rows each
        assert FAST.row_blocks(spec, 20) == 1  # 10 rows: one threaded GEMM
        assert FAST.row_blocks(spec, 33) == 1  # 2 does not divide 33
        assert FAST.row_blocks(rnn.GRU(3, 4).spec, 64) == 1  # LSTM only
    with runtime.override(threads=1):
        assert FAST.row_blocks(spec, 64) == 1


@ROWS
def test_after_torch_set_num_threads():
    """PyTorch's set_num_threads switches MKL's dynamic threads off; the blocks must still
    give the same numbers (they pin one GEMM thread each)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = run("LSTM", {}, 2, 32, False, None, L=2, T=11, I=24, H=40)
    finally:
        torch.set_num_threads(before)
    ref = run("LSTM", {}, 1, 32, False, None, L=2, T=11, I=24, H=40)  # the serial loop
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-6)


def test_numba_start_leaves_openmp_nesting_as_it_was():
    """numba's OpenMP layer raises libgomp's max active levels when it starts; rnnlab sets it
    back (else PyTorch's parallel regions in the same process nest teams: ~40x slower)."""
    import subprocess
    import sys

    code = (
        "import ctypes; from numba.np.ufunc import omppool; "
        "lib = ctypes.CDLL(omppool.__file__); before = lib.omp_get_max_active_levels(); "
        "import numpy as np, rnnlab.nn as rnn; from rnnlab.nn import backend; "
        "n = backend.select(rnn.LSTM(1, 1).spec, np.float32).parallel_threads(); "
        "import numba; print(before, lib.omp_get_max_active_levels(), n, "
        "numba.threading_layer())"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    before, after, n, layer = res.stdout.split()
    assert layer == "omp" and int(n) >= 2, res.stderr
    assert after == before, f"max active levels {before} -> {after}"
