"""Threads by the work's size (issue 34): a small step's GEMMs run on the calling thread alone,
a large one's on the configured count, and the numbers are the same either way.

On a loaded 2-core machine the default two threads ran a small LSTM step 50-75x slower than one
(each step's products waited for the second thread's core); ``runtime.settings().min_thread_work``
is the step size from which splitting pays (docs/MEASUREMENTS.md). No timings are asserted here:
what is checked is the decision, that it reaches the libraries during the call, and the results."""

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab.errors import UserError
from rnnlab.nn import backend, runtime
from rnnlab.nn.direction import BackwardJob, DirectionCache, ForwardJob, GRUSpec, LSTMSpec, step_work


def test_small_steps_get_one_thread_large_ones_the_configured_count():
    with runtime.override(min_thread_work=1e5):
        assert runtime.gemm_threads(99_999, 2) == 1
        assert runtime.gemm_threads(1e5, 2) == 2
        assert runtime.gemm_threads(1e9, 8) == 8
        assert runtime.gemm_threads(1e9, 1) == 1
    with runtime.override(min_thread_work=0):  # 0: always the configured count
        assert runtime.gemm_threads(0, 2) == 2


def test_the_default_threshold_follows_how_openmp_workers_wait(monkeypatch):
    with runtime.override(min_thread_work=None):
        monkeypatch.setattr(runtime, "_waits_passively", False)  # spinning: a hand-over is cheap
        assert runtime.min_thread_work() == runtime.SPIN_MIN_THREAD_WORK == 1e5
        monkeypatch.setattr(runtime, "_waits_passively", True)  # sleeping: a kernel wake-up a region
        assert runtime.min_thread_work() == runtime.PASSIVE_MIN_THREAD_WORK == 4e6
        assert runtime.gemm_threads(1e6, 2) == 1
        assert runtime.describe()["min_thread_work"] == 4e6
    with runtime.override(min_thread_work=123.0):  # a setting wins over the policy
        assert runtime.min_thread_work() == 123.0


def _forward_job(spec, T, N, I, H):
    G = spec.n_gates
    return ForwardJob(
        spec, np.zeros((T, N, I)), [], np.zeros((G * H, I)), np.zeros((G * H, H)), None, None, None
    )


def test_step_work_is_one_step_of_one_direction_for_forward_and_backward_jobs():
    fwd = _forward_job(LSTMSpec(), 7, 32, 1, 16)
    assert step_work([fwd]) == 32 * 64 * 17  # N G H (I + H), whatever T
    assert step_work([fwd, _forward_job(LSTMSpec(), 7, 32, 1, 32)]) == 32 * 128 * 33  # the larger
    back = BackwardJob(
        GRUSpec(), None, [], DirectionCache(np.zeros((5, 8, 4)), [], None, None), None, np.zeros((30, 10))
    )
    assert step_work([back]) == 8 * 30 * 14


def test_the_default_puts_the_forecasters_sizes_on_one_thread_and_large_layers_on_all():
    lstm = lambda N, I, H: step_work([_forward_job(LSTMSpec(), 7, N, I, H)])  # noqa: E731
    assert runtime.gemm_threads(lstm(32, 1, 16), 2) == 1  # forecaster defaults: batch 32, hidden 16
    assert runtime.gemm_threads(lstm(64, 256, 512), 2) == 2


@pytest.mark.parametrize("value", ["small", "-5", "inf", "nan", "1e6e"])
def test_a_bad_environment_value_is_one_line_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"^RNNLAB_MIN_THREAD_WORK='{value}' must be a number") as e:
        runtime._from_environment({"RNNLAB_MIN_THREAD_WORK": value})
    assert "\n" not in str(e.value)


def test_environment_values_read_and_a_bad_one_is_a_user_error_when_used(monkeypatch):
    assert runtime._from_environment({"RNNLAB_MIN_THREAD_WORK": " 2.5e5 "}).min_thread_work == 2.5e5
    assert runtime._from_environment({"RNNLAB_MIN_THREAD_WORK": "0"}).min_thread_work == 0
    assert (
        runtime._from_environment({"RNNLAB_MIN_THREAD_WORK": ""}).min_thread_work
        == runtime.Settings().min_thread_work
    )
    monkeypatch.setattr(runtime, "_environment_problem", "RNNLAB_MIN_THREAD_WORK='x' must be ...")
    with pytest.raises(UserError, match="RNNLAB_MIN_THREAD_WORK"):
        runtime.settings()


def test_settings_refuse_a_negative_threshold():
    with pytest.raises(ValueError, match="min_thread_work"):
        runtime.set(min_thread_work=-1)


# ----------------------------------------------------------------------------- compiled loops
FAST = backend.select(rnn.LSTM(1, 1).spec, np.float32)  # None without numba or a GEMM library
needs_fast = pytest.mark.skipif(FAST is None, reason="needs the compiled backend")
PER_THREAD = [n for n in ("onednn", "mkl") if backend.library(n) is not None]  # a count per thread


def _step(cls, dtype, T=7, N=32, I=3, H=16, L=2, bidir=True):
    m = cls(I, H, num_layers=L, bidirectional=bidir, seed=3, dtype=dtype)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, N, I)).astype(dtype)
    dout = rng.standard_normal((T, N, (2 if bidir else 1) * H)).astype(dtype)
    out, _ = m(x)
    dx, _ = m.backward(dout)
    return {"out": out, "dx": dx, **{k: v.copy() for k, v in m.grads.items()}}


def _watch(fast, patch, seen):
    """Record, inside every pass, the count the GEMM library is set to on the calling thread,
    what the pass allows, and the row blocks the LSTM's loops take."""
    directions, row_blocks = fast._directions, fast.row_blocks

    def watched(calls, work):
        seen["library"].append(fast.lib.get_threads())
        seen["pass"].append(fast.gemm_threads_now())
        return directions(calls, work)

    def blocks(spec, N):
        seen["blocks"].append(row_blocks(spec, N))
        return seen["blocks"][-1]

    patch.setattr(fast, "_directions", watched)
    patch.setattr(fast, "row_blocks", blocks)


@needs_fast
@pytest.mark.skipif(not PER_THREAD, reason="needs oneDNN or MKL (a thread count per thread)")
@pytest.mark.parametrize("gemm", PER_THREAD)
@pytest.mark.parametrize("cls", [rnn.LSTM, rnn.GRU], ids=["lstm", "gru"])
def test_one_thread_or_all_the_same_numbers_as_float64(cls, gemm, monkeypatch):
    ref = _step(cls, np.float64)  # float64: the NumPy reference loop
    got = {}
    with runtime.override(threads=2, gemm=gemm), monkeypatch.context() as patch:
        fast = backend.select(cls(1, 1).spec, np.float32)
        assert fast is not None and fast.lib.name == gemm
        chosen = backend.choice()
        patch.setattr(backend.tuning, "tune", lambda *a, **k: pytest.fail("timed the GEMMs mid-run"))
        patch.setattr(backend.tuning, "load_choice", lambda *a, **k: pytest.fail("chose again mid-run"))
        seen: dict = {}
        _watch(fast, patch, seen)
        for work in (1e30, 0):  # every step on one thread; every step on two
            seen.update(library=[], blocks=[], **{"pass": []})
            with runtime.override(min_thread_work=work):
                got[work] = _step(cls, np.float32)
            n = 1 if work else 2
            assert seen["library"] and set(seen["library"]) == set(seen["pass"]) == {n}, seen
            if cls is rnn.LSTM:  # N = 32: two row blocks of 16 when the pass may use two threads
                assert set(seen["blocks"]) == ({1} if work else {min(2, fast.parallel_threads())}), seen
            assert fast.lib.get_threads() == 2  # given back after each pass
        assert backend.choice() is chosen  # the configured count's choice, not made again
    for work, res in got.items():
        for k in ref:
            assert_close(f"{k} (min_thread_work={work:g})", res[k], ref[k], 1e-5)
    for k in ref:
        assert_close(f"{k}: one thread against two", got[1e30][k], got[0][k], 1e-5)
