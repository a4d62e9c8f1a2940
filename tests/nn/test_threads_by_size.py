"""Threads by the work's size (issue 34): a small step's GEMMs run on the calling thread alone,
a large one's on the configured count, and the numbers are the same either way.

On a loaded 2-core machine the default two threads ran a small LSTM step 50-75x slower than one
(each step's products waited for the second thread's core); ``runtime.settings().min_thread_work``
is the step size from which splitting pays (docs/MEASUREMENTS.md). No timings are asserted here:
what is checked is the decision, that it reaches the libraries during the call, and the results."""

import math
import time

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


class FakeMachine:
    """The clocks the load check reads: the time, this process's CPU time, the CPU time all
    processes spent on our CPUs (/proc/stat; None: ``proc_stat=False``) and the 1-minute load
    average, kept as the kernel keeps it (every 5 s, of our running threads and the others')."""

    def __init__(self, monkeypatch, cores=2, proc_stat=True):
        self.t, self.cpu, self.cpus, self.load, self.reads = 1000.0, 0.0, 0.0, 0.0, 0
        self.proc_stat = proc_stat
        monkeypatch.setattr(runtime, "_clock", lambda: self.t)
        monkeypatch.setattr(runtime, "_cpu_clock", lambda: self.cpu)
        monkeypatch.setattr(runtime, "_cpus_busy", self._cpus_busy)
        monkeypatch.setattr(runtime.os, "getloadavg", self._getloadavg)
        monkeypatch.setattr(runtime, "usable_cores", lambda: cores)
        monkeypatch.setattr(runtime, "_waits_passively", False)  # workers spin: the check is on
        monkeypatch.setattr(runtime, "_load_check", runtime._LoadCheck(self.t, 0.0, self._cpus_busy()))
        self.reads = 0

    def _cpus_busy(self):
        self.reads += 1
        return self.cpus if self.proc_stat else None

    def _getloadavg(self):
        self.reads += 1
        return (self.load, self.load, self.load)

    def run(self, seconds, own, others):
        """``seconds`` with this process on ``own`` cores and others on ``others``:
        ``min_thread_work()`` after each 5 s."""
        seen = []
        for _ in range(int(seconds // 5)):
            self.advance(5, own, others)
            seen.append(runtime.min_thread_work())
        return seen

    def advance(self, seconds, own, others):
        self.t, self.cpu, self.cpus = (
            self.t + seconds,
            self.cpu + seconds * own,
            self.cpus + seconds * (own + others),
        )
        decay = math.exp(-seconds / 60)
        self.load = self.load * decay + (own + others) * (1 - decay)


def test_the_default_threshold_follows_how_openmp_workers_wait(monkeypatch):
    with runtime.override(min_thread_work=None):
        FakeMachine(monkeypatch)  # idle, spinning: a hand-over is cheap
        assert runtime.min_thread_work() == runtime.SPIN_MIN_THREAD_WORK == 1e5
        monkeypatch.setattr(runtime, "_waits_passively", True)  # sleeping: a kernel wake-up a region
        assert runtime.min_thread_work() == runtime.PASSIVE_MIN_THREAD_WORK == 4e6
        assert runtime.gemm_threads(1e6, 2) == 1
        assert runtime.describe()["min_thread_work"] == 4e6
    with runtime.override(min_thread_work=123.0):  # a setting wins over the policy
        assert runtime.min_thread_work() == 123.0


def test_spinning_workers_give_way_while_others_use_the_cores_and_come_back(monkeypatch):
    machine = FakeMachine(monkeypatch)
    with runtime.override(min_thread_work=None, threads=2):
        assert set(machine.run(300, own=2, others=0)) == {1e5}  # our two threads alone
        assert runtime.gemm_threads(1e6, 2) == 2
        # four CPU-bound processes beside them: one thread below 1e8, from the next look on
        assert machine.run(5, own=0.7, others=1.3) == [runtime.BUSY_MIN_THREAD_WORK] == [1e8]
        assert runtime.gemm_threads(1e6, 2) == 1 and runtime.gemm_threads(2e8, 2) == 2
        check = runtime.describe()["load_check"]
        assert check == {"on": True, "busy": True, "others": 1.3, "own": 0.7, "source": "cpu time"}
        reads = machine.reads
        machine.advance(4.9, own=0.7, others=1.3)
        assert runtime.min_thread_work() == 1e8 and machine.reads == reads  # looked at every 5 s
        # the others use 0.4 of a core, between the margins: it stays as it is, either way
        assert set(machine.run(300, own=1, others=0.4)) == {1e8}
        assert machine.run(5, own=1, others=0.1) == [1e5]  # gone: back at the next look
        assert set(machine.run(300, own=2, others=0.4)) == {1e5}
        assert not runtime.describe()["load_check"]["busy"]


def test_without_proc_stat_the_load_average_less_our_own_part_decides(monkeypatch):
    machine = FakeMachine(monkeypatch, proc_stat=False)
    with runtime.override(min_thread_work=None, threads=2):
        assert set(machine.run(300, own=2, others=0)) == {1e5}  # our spinning threads: load 2
        seen = machine.run(60, own=2, others=4)  # the average follows within seconds
        assert seen[0] == 1e5 and seen[-1] == 1e8 and seen == sorted(seen)
        assert runtime.describe()["load_check"]["source"] == "load average"
        assert set(machine.run(600, own=1, others=0.4)) == {1e8}  # between the margins
        seen = machine.run(300, own=1, others=0)  # back once the average has fallen
        assert seen[0] == 1e8 and seen[-1] == 1e5 and seen == sorted(seen, reverse=True)
        assert set(machine.run(600, own=2, others=0.4)) == {1e5}


def test_a_setting_or_passive_workers_turn_the_load_check_off(monkeypatch):
    machine = FakeMachine(monkeypatch)
    with runtime.override(min_thread_work=2e5):  # RNNLAB_MIN_THREAD_WORK, runtime.set
        assert set(machine.run(60, own=1, others=8)) == {2e5}
        assert runtime.describe()["load_check"] == {"on": False, "why": "min_thread_work is set"}
    monkeypatch.setattr(runtime, "_waits_passively", True)
    with runtime.override(min_thread_work=None):
        assert set(machine.run(60, own=1, others=8)) == {4e6}
        assert not runtime.describe()["load_check"]["on"]
    assert machine.reads == 0


def test_the_cores_our_threads_leave_free_are_not_a_busy_machine(monkeypatch):
    machine = FakeMachine(monkeypatch, cores=8)
    with runtime.override(min_thread_work=None, threads=2):  # 6 of 8 cores left to others
        assert set(machine.run(60, own=2, others=6.2)) == {1e5}
        assert machine.run(5, own=2, others=6.8) == [1e8]  # ours taken too


def test_with_nothing_to_tell_the_load_by_the_workers_spin_as_before(monkeypatch):
    machine = FakeMachine(monkeypatch, proc_stat=False)

    def no_load():
        raise OSError("no load average")

    monkeypatch.setattr(runtime.os, "getloadavg", no_load)
    with runtime.override(min_thread_work=None):
        assert set(machine.run(60, own=2, others=4)) == {1e5}
        assert runtime.describe()["load_check"]["others"] is None


def test_the_suite_runs_with_the_check_off():
    """tests/conftest.py pins the threshold, so that no test's numbers depend on the load."""
    assert runtime.settings().min_thread_work is not None
    assert runtime.describe()["load_check"] == {"on": False, "why": "min_thread_work is set"}


def test_proc_stat_is_read_for_our_cpus_only():
    busy = runtime._cpus_busy()
    if busy is None:
        pytest.skip("no /proc/stat here: the load average decides")
    time.sleep(0.05)
    assert 0 < busy <= runtime._cpus_busy() < busy + 0.05 * runtime.usable_cores() + 0.1


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
