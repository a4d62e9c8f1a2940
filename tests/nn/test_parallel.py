"""The directions of a bidirectional layer as parallel jobs (recurrent.py, "in parallel"): the
same numbers as one serial pass. Needs MKL and numba (the compiled loops release the GIL)."""
import numpy as np
import pytest

import rnnlab.nn as rnn
from conftest import assert_close
from rnnlab.nn import blas, fused, recurrent

pytestmark = pytest.mark.skipif(not (blas.AVAILABLE and fused.ENABLED),
                                reason="parallel jobs need mkl and numba")


@pytest.fixture(autouse=True)
def keep_threads():
    before = blas.get_num_threads()
    yield
    blas.set_num_threads(before)


def run(mode, kw, threads, N, bidir, lengths, L=2, T=9, I=40, H=64):
    blas.set_num_threads(threads)
    m = getattr(rnn, mode)(I, H, num_layers=L, bidirectional=bidir, seed=7, **kw)
    D = 2 if bidir else 1
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    dout = rng.standard_normal((T, N, D * H)).astype(np.float32)
    s0, sn = ([rng.standard_normal((L * D, N, H)).astype(np.float32) for _ in range(2)]
              for _ in range(2))
    lstm = mode == "LSTM"
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
            res.update({f"{g} {layer} {d}": np.nan_to_num(v)
                        for g, v in m.gate_trace(layer, d).items()})
    return res, m


@pytest.mark.parametrize("mode,kw", [("LSTM", {}), ("GRU", {"reset_after": True}),
                                     ("GRU", {"reset_after": False})],
                         ids=["lstm", "gru", "gru-before"])
@pytest.mark.parametrize("N,lengths", [(12, None), (15, [9, 1, 3, 9, 2] * 3)],
                         ids=["full", "lengths"])
def test_parallel_directions_equal_serial(mode, kw, N, lengths, monkeypatch):
    lengths = None if lengths is None else np.array(lengths)
    ref, _ = run(mode, kw, 1, N, True, lengths)
    jobs = []
    real = recurrent._run
    monkeypatch.setattr(recurrent, "_run", lambda j, t: (jobs.append((len(j), t)), real(j, t))[1])
    got, m = run(mode, kw, 2, N, True, lengths)
    assert jobs and all(j == (2, 2) for j in jobs)          # every layer: two jobs, two threads
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-5)


def test_small_work_one_thread_one_direction_or_float64_stays_serial():
    k = rnn.LSTM(3, 4, seed=0).kernel
    blas.set_num_threads(2)
    assert recurrent._parallel_threads(k, np.float32, 50, 20, 128, 256, 2) == 2
    rows = recurrent._row_blocks(k, 64) > 1            # LSTM row blocks instead of two jobs
    assert recurrent._parallel_threads(k, np.float32, 50, 64, 128, 256, 2) == (1 if rows else 2)
    assert recurrent._parallel_threads(rnn.GRU(3, 4).kernel, np.float32, 50, 64, 128, 256, 2) == 2
    assert recurrent._parallel_threads(k, np.float32, 50, 64, 128, 256, 1) == 1  # one direction
    assert recurrent._parallel_threads(k, np.float32, 7, 8, 1, 16, 2) == 1       # little work
    assert recurrent._parallel_threads(k, np.float64, 50, 64, 128, 256, 2) == 1
    blas.set_num_threads(1)
    assert recurrent._parallel_threads(k, np.float32, 50, 64, 128, 256, 2) == 1
