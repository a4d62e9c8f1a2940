"""The compiled backend (rnnlab/nn/backend/) against the NumPy loop it replaces.

Skipped when numba is not installed (it is the optional extra ``rnnlab[fast]``); the float32
parity tests against torch in test_recurrent_parity.py run through the compiled loops whenever
numba is present. Measured here (float32, these shapes): every tensor of the compiled path is
within 4e-7 relative of the NumPy path; we allow 1e-5.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="numba not installed: the compiled loops are optional")

from conftest import assert_close  # noqa: E402

import rnnlab.nn as rnn  # noqa: E402
from rnnlab.nn import backend, runtime  # noqa: E402
from rnnlab.nn.backend import kernels, loops  # noqa: E402

TOL = 1e-5
CELLS = [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False})]
IDS = ["lstm", "gru-after", "gru-before"]


def run_layer(mode, kw, T, N, I, H, L, bidir, batch_first, lengths, fast, seed=3):
    """Forward + backward with nonzero states and upstream gradients; every tensor, by name."""
    with runtime.override(backend="compiled" if fast else "numpy"):
        return _run_layer(mode, kw, T, N, I, H, L, bidir, batch_first, lengths, seed)


def _run_layer(mode, kw, T, N, I, H, L, bidir, batch_first, lengths, seed):
    m = getattr(rnn, mode)(I, H, num_layers=L, bidirectional=bidir, batch_first=batch_first, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    D = 2 if bidir else 1
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(np.float32)
    dout = rng.standard_normal((N, T, D * H) if batch_first else (T, N, D * H)).astype(np.float32)
    h0, c0, dh_n, dc_n = (rng.standard_normal((L * D, N, H)).astype(np.float32) for _ in range(4))
    res = {}
    if mode == "LSTM":
        out, (res["h_n"], res["c_n"]) = m(x, (h0, c0), lengths=lengths)
        res["dx"], (res["dh0"], res["dc0"]) = m.backward(dout, (dh_n, dc_n))
    else:
        out, res["h_n"] = m(x, h0, lengths=lengths)
        res["dx"], res["dh0"] = m.backward(dout, dh_n)
    res["out"] = out
    res.update({"grad " + k: v.copy() for k, v in m.grads.items()})
    for layer in range(L):
        for d in range(D):
            res[f"dh norms l{layer} d{d}"] = m.hidden_grad_norms(layer, d)
            trace = m.gate_trace(layer, d)
            res.update({f"gate {k} l{layer} d{d}": np.nan_to_num(v) for k, v in trace.items()})
    return res


@pytest.fixture(autouse=True)
def fresh_backend():
    backend.reset()  # tests may break a loop: start clean
    yield
    backend.reset()


@pytest.mark.parametrize("mode,kw", CELLS, ids=IDS)
@pytest.mark.parametrize(
    "L,bidir,batch_first,lengths",
    [
        (1, False, False, None),
        (2, True, True, [6, 2, 7, 4, 1]),
        (2, False, False, [3, 7, 7, 5, 2]),
    ],
    ids=["L1-uni", "L2-bi-bf-var", "L2-uni-var"],
)
def test_compiled_matches_numpy(mode, kw, L, bidir, batch_first, lengths):
    lengths = None if lengths is None else np.array(lengths)
    args = (mode, kw, 7, 5, 6, 9, L, bidir, batch_first, lengths)
    ref = run_layer(*args, fast=False)
    got = run_layer(*args, fast=True)
    assert (
        backend.select(rnn.GRU(1, 1).spec if mode == "GRU" else rnn.LSTM(1, 1).spec, np.float32) is not None
    ), "the compiled loops did not run"
    for name in ref:
        assert_close(name, got[name], ref[name], TOL)


def test_compiled_matches_numpy_larger_lstm():
    """H a multiple of the vector width and a longer sequence: errors do not build up."""
    args = ("LSTM", {}, 40, 16, 24, 64, 1, False, False, None)
    ref, got = run_layer(*args, fast=False), run_layer(*args, fast=True)
    for name in ref:
        assert_close(name, got[name], ref[name], TOL)


def _ulps(a, b):
    """Distance in units in the last place between float32 arrays (sign-aware)."""
    ai, bi = (v.view(np.int32).astype(np.int64) for v in (a, b))
    ai = np.where(ai < 0, -(ai & 0x7FFFFFFF), ai)
    bi = np.where(bi < 0, -(bi & 0x7FFFFFFF), bi)
    return np.abs(ai - bi)


def test_tanh_approximation_error():
    """Every 257th float32 in [1e-8, 12] and its negative: <= 5 ulp (measured 5), <= 3e-7 absolute."""
    lo, hi = np.float32(1e-8).view(np.int32), np.float32(12.0).view(np.int32)
    pos = np.arange(lo, hi, 257, dtype=np.int32).view(np.float32)
    x = np.concatenate([pos, -pos, np.linspace(-10, 10, 100_001, dtype=np.float32)])
    got = kernels.tanh(x)
    exact = np.tanh(x.astype(np.float64))
    assert _ulps(got, exact.astype(np.float32)).max() <= 5
    assert np.abs(got - exact).max() <= 3e-7


def test_tanh_extremes():
    x = np.array([-np.inf, -1e30, -1000, -20, 0.0, -0.0, 1e-30, 20, 1000, 1e30, np.inf], np.float32)
    got = kernels.tanh(x)
    assert np.all(np.isfinite(got)) and np.all(np.abs(got) <= 1)
    np.testing.assert_allclose(got, np.tanh(x), rtol=0, atol=3e-7)
    assert np.isnan(kernels.tanh(np.array([np.nan], np.float32))[0]), "NaN must stay NaN"


@pytest.mark.parametrize("rows,cols", [(256, 64), (384, 128), (40, 100), (7, 3)])
def test_transpose(rows, cols):
    """A contiguous W^T (OpenBLAS's operand): the tiled loop (cols % 64 == 0) or NumPy's copy."""
    W = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
    W_T = kernels.transpose(W)
    assert W_T.flags.c_contiguous
    np.testing.assert_array_equal(W_T, W.T)


def test_setting_and_dtype_choose_the_loop(monkeypatch):
    """backend="numpy" and float64 take the NumPy loop; float32 with "auto" or "compiled"
    one compiled call per sequence (no Python loop over the steps)."""
    assert backend.select(rnn.LSTM(1, 1).spec, np.float32) is not None  # compiled and checked
    calls = []
    real = loops.lstm_forward
    monkeypatch.setattr(loops, "lstm_forward", lambda *a: (calls.append(a[2].shape[0]), real(*a))[1])
    x = np.ones((3, 2, 4), np.float32)
    with runtime.override(backend="numpy"):
        rnn.LSTM(4, 5)(x)
        rnn.LSTM(4, 5, dtype=np.float64)(x)
    assert calls == []
    rnn.LSTM(4, 5, dtype=np.float64)(x)
    assert calls == []
    for mode in ("auto", "compiled"):
        with runtime.override(backend=mode):
            rnn.LSTM(4, 5)(x)
    assert calls == [3, 3]  # T = 3 steps, one call each
    assert runtime.describe()["backend"] == "compiled"
    with runtime.override(backend="numpy"):
        assert runtime.describe()["backend"] == "numpy"


def _python(code, **env):
    out = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, **env), capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.mark.parametrize("env", [{"RNNLAB_NO_FUSED": "1"}, {"RNNLAB_BACKEND": "numpy"}])
def test_environment_variables_choose_numpy(env):
    code = "from rnnlab.nn import runtime; print(runtime.settings().backend, runtime.describe()['backend'])"
    assert _python(code, **env) == ["numpy", "numpy"]


def test_without_numba_the_numpy_path_runs_and_import_stays_light(tmp_path):
    """numba blocked: the NumPy loop runs and a float32 LSTM trains; numba is never imported
    by ``import rnnlab.nn`` alone (it is loaded on the first compiled call). With no cached
    GEMM choice (an empty cache folder) nothing is timed: the timing needs the compiled loops
    (it raised ModuleNotFoundError where two GEMM libraries loaded and numba did not)."""
    code = (
        "import sys, numpy as np; import rnnlab.nn as rnn; print('numba' in sys.modules); "
        "sys.modules['numba'] = None; m = rnn.LSTM(3, 4); out, _ = m(np.ones((2, 2, 3), np.float32)); "
        "m.backward(np.ones_like(out)); from rnnlab.nn import runtime; "
        "print(runtime.describe()['backend'], sys.modules['numba'] is not None)"
    )
    assert _python(code, RNNLAB_CACHE_DIR=str(tmp_path)) == ["False", "numpy", "False"]
    assert not (tmp_path / "gemm-choice.json").exists()


def test_compile_failure_falls_back_with_one_warning(monkeypatch):
    def broken(*_):
        raise numba.core.errors.TypingError("simulated compile failure")

    monkeypatch.setattr(loops, "gru_forward_loop", broken)
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="using the NumPy path"):
        out, _ = rnn.GRU(4, 5, seed=0)(x)
    assert backend.select(rnn.GRU(4, 5).spec, np.float32) is None  # GRU: NumPy from now on
    assert backend.select(rnn.LSTM(4, 5).spec, np.float32) is not None  # the LSTM is unaffected
    with runtime.override(backend="numpy"):
        ref, _ = rnn.GRU(4, 5, seed=0)(x)
    np.testing.assert_array_equal(out, ref)
