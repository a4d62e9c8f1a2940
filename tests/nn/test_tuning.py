"""rnnlab/nn/backend/tuning.py: the GEMM library per class of product shape, chosen by timing
and cached per CPU model, thread count and library versions; and the compiled loops on a
choice that mixes libraries (every tensor equal to the NumPy loop)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import assert_close

import rnnlab.nn as rnn
from rnnlab.nn import backend, runtime
from rnnlab.nn.backend import tuning

LIBS = {n: lib for n in tuning.ORDER if (lib := backend.library(n)) is not None}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuning, "contention", lambda run, threads: (run(), 0.0))  # a quiet machine
    return tmp_path / "gemm-choice.json"


def test_shape_classes_cover_the_rows_and_sizes():
    assert tuning.shape_class(1, 256, 1024) == "m0-s1"
    assert tuning.shape_class(8, 128, 512) == "m0-s0"  # at a bound: the lower class
    assert tuning.shape_class(9, 128, 512) == "m1-s0"
    assert tuning.shape_class(64, 650, 2600) == "m3-s2"
    assert tuning.shape_class(10**4, 650, 2600) == "m4-s2"  # a hoisted (T*N, I) product
    assert len(tuning.classes()) == len(tuning.ROW_REP) * len(tuning.SIZE_REP)
    for c in tuning.classes():  # each representative product falls in its own class
        m, s = int(c[1]), int(c[-1])
        assert tuning.shape_class(tuning.ROW_REP[m], *tuning.SIZE_REP[s]) == c


def _table(rates):
    """Every class with the same ``{library: GF/s}``, except overrides ``{class: {...}}``."""
    return {c: dict(rates.get(c, rates["*"])) for c in tuning.classes()}


def test_choose_takes_the_fastest_per_class_within_one_pool():
    pools = {"a": "omp", "b": "omp", "c": "pthreads"}
    table = _table({"*": {"a": 100, "b": 50, "c": 90}, "m0-s0": {"a": 10, "b": 40, "c": 90}})
    choice = tuning.choose(table, pools)
    assert choice["m0-s0"] == "b"  # the faster of its pool: two libraries of one pool mix
    assert all(choice[c] == "a" for c in tuning.classes() if c != "m0-s0")


def test_choose_never_mixes_pools_and_scores_the_total_time():
    """c is faster in every class but one, where it is so slow that its pool loses overall."""
    pools = {"a": "omp", "c": "pthreads"}
    slow = {"m4-s2": {"a": 100, "c": 1}}  # the largest product: most of the time
    choice = tuning.choose(_table({"*": {"a": 100, "c": 110}, **slow}), pools)
    assert set(choice.values()) == {"a"}
    choice = tuning.choose(_table({"*": {"a": 100, "c": 110}}), pools)
    assert set(choice.values()) == {"c"}
    # a library that failed a class (rate 0) cannot run its pool
    choice = tuning.choose(_table({"*": {"a": 100, "c": 110}, "m2-s1": {"a": 100, "c": 0}}), pools)
    assert set(choice.values()) == {"a"}


@pytest.mark.skipif(not LIBS, reason="needs a GEMM library")
def test_measure_times_every_library_on_every_class():
    pytest.importorskip("numba")
    table = tuning.measure(LIBS, budget=0.002)
    assert set(table) == set(tuning.classes())
    for c, rates in table.items():
        assert set(rates) == set(LIBS), c
        assert all(np.isfinite(r) and r > 0 for r in rates.values()), (c, rates)


@pytest.mark.skipif(len(LIBS) < 2, reason="a choice needs two GEMM libraries")
def test_tune_caches_by_cpu_threads_and_versions(cache, monkeypatch):
    pytest.importorskip("numba")
    calls = []
    real = tuning.measure
    monkeypatch.setattr(
        tuning,
        "measure",
        lambda libs, budget=0.01, threads=None: calls.append(1) or real(libs, 0.002, threads),
    )
    entry = tuning.tune(LIBS, 2)
    assert calls and set(entry["choice"]) == set(tuning.classes())
    assert set(entry["choice"].values()) <= set(LIBS)
    assert entry["key"]["cpu"] == tuning.cpu_model() and entry["key"]["threads"] == 2
    assert set(entry["key"]["libraries"]) == set(LIBS)
    saved = json.loads(cache.read_text())
    assert list(saved.values())[0]["choice"] == entry["choice"]
    assert tuning.load_choice(LIBS, 2)["choice"] == entry["choice"]
    assert tuning.load_choice(LIBS, 1) is None  # measured at another thread count
    fewer = dict(list(LIBS.items())[1:])  # a chosen library gone, or another version set
    assert tuning.load_choice(fewer, 2) is None
    tuning.tune(LIBS, 1)  # a second key is added, the first kept
    assert len(json.loads(cache.read_text())) == 2
    assert tuning.load_choice(LIBS, 2)["choice"] == entry["choice"]


def test_a_broken_cache_is_measured_again(cache):
    pytest.importorskip("numba")
    cache.write_text("{not json")
    assert tuning.load_choice(LIBS, 2) is None
    cache.write_text(json.dumps(["a", "list"]))
    assert tuning.load_choice(LIBS, 2) is None
    if len(LIBS) >= 2:
        tuning.tune(LIBS, 2, budget=0.002)
        assert tuning.load_choice(LIBS, 2) is not None


def test_a_named_library_runs_every_product():
    for name in LIBS:
        with runtime.override(gemm=name):
            chosen = backend.choice()
            assert set(chosen[0].values()) == {name}
            assert runtime.describe()["gemm"] == name


def _fresh(code, **env):
    env = dict(os.environ, **env)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def machine(share) -> str:
    """Code that makes a fresh process's timings see ``share`` of contention (0.0: a quiet
    machine; the real share depends on what else runs, and a contended choice is rightly not
    cached: the tests below must hold on a busy machine, issue 34)."""
    return f"from rnnlab.nn.backend import tuning; tuning.contention = lambda run, t: (run(), {share!r}); "


@pytest.mark.skipif(len(LIBS) < 2, reason="a choice needs two GEMM libraries")
def test_first_use_measures_once_and_says_what_runs(tmp_path):
    code = "from rnnlab.nn import runtime; import json; print(json.dumps(runtime.describe()))"
    cached = tmp_path / "gemm-choice.json"
    busy = json.loads(_fresh(machine(1.0) + code, RNNLAB_CACHE_DIR=str(tmp_path)))
    assert set(busy["gemm_choice"]) == set(tuning.classes()) and busy["gemm"] in LIBS
    assert not cached.exists()  # a contended first use measures for itself alone
    first = json.loads(_fresh(machine(0.0) + code, RNNLAB_CACHE_DIR=str(tmp_path)))
    assert set(first["gemm_choice"]) == set(tuning.classes())
    assert first["gemm"] in LIBS and set(first["gemm_versions"]) == set(LIBS)
    stamp = cached.stat().st_mtime_ns
    # read, not measured (a measurement here would be contended: it would not be cached)
    again = json.loads(_fresh(machine(1.0) + code, RNNLAB_CACHE_DIR=str(tmp_path)))
    assert again["gemm_choice"] == first["gemm_choice"]
    assert cached.stat().st_mtime_ns == stamp
    off = json.loads(_fresh(code, RNNLAB_CACHE_DIR=str(tmp_path / "off"), RNNLAB_TUNE="0"))
    first_loaded = next(n for n in tuning.ORDER if n in LIBS)
    assert set(off["gemm_choice"].values()) == {first_loaded}
    assert not (tmp_path / "off").exists()  # nothing measured, nothing written


def _run_layer(mode, fast, N, lengths=None, T=8, I=24, H=40):
    with runtime.override(backend="compiled" if fast else "numpy"):
        m = getattr(rnn, mode)(I, H, num_layers=2, bidirectional=True, seed=3)
        rng = np.random.default_rng(3)
        x = rng.standard_normal((T, N, I)).astype(np.float32)
        out, _ = m(x, lengths=lengths)
        dx, _ = m.backward(rng.standard_normal(out.shape).astype(np.float32))
    return {"out": out, "dx": dx, **{k: v.copy() for k, v in m.grads.items()}}


@pytest.mark.skipif(len(LIBS) < 2, reason="a mixed choice needs two GEMM libraries")
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("N,lengths", [(4, None), (40, np.arange(40) % 8 + 1)], ids=["small", "lengths"])
def test_a_mixed_choice_equals_the_numpy_loop(mode, N, lengths, monkeypatch):
    """Products of up to 24 rows on one library, larger ones on another: at N=4 the step
    products (4 rows) and the hoisted ones (T*N = 32 rows) of one pass run on different
    libraries, and every tensor still equals the NumPy loop."""
    pytest.importorskip("numba")
    from rnnlab.nn.backend import compiled

    names = list(LIBS)
    mixed = {c: names[0] if int(c[1]) < 2 else names[1] for c in tuning.classes()}
    used = set()
    real = compiled.Compiled.lib_for
    monkeypatch.setattr(
        compiled.Compiled, "lib_for", lambda self, *s: used.add(real(self, *s).name) or real(self, *s)
    )
    ref = _run_layer(mode, False, N, lengths)
    monkeypatch.setitem(backend._state, ("choice", "auto"), (mixed, LIBS))
    backend._state.pop(("compiled", "auto"), None)
    backend._chosen.clear()
    try:
        fast = backend._compiled()
        assert fast is not None and fast.choice == mixed
        got = _run_layer(mode, True, N, lengths)
    finally:
        backend._state.pop(("compiled", "auto"), None)
        backend._chosen.clear()
    if N == 4:
        assert used == set(names[:2])
    for k in ref:
        assert_close(k, got[k], ref[k], 1e-5)


class _Lib:
    def __init__(self, name, pool):
        self.name, self.pool = name, pool

    def version(self):
        return self.name + " 1.0"


LIBS_FAKE = {"a": _Lib("a", "p"), "b": _Lib("b", "p")}


def _fake_measure(libs, budget=0.01, threads=None):
    return {c: {n: 100.0 + i for i, n in enumerate(libs)} for c in tuning.classes()}


@pytest.mark.parametrize("share,cached", [(0.6, False), (0.1, True), (None, True)])
def test_a_contended_measurement_is_used_but_not_cached(cache, monkeypatch, share, cached):
    """Other processes in the way of the timing make a choice for this process only (it is
    cached for every later run); a quiet or unmeasurable one is kept."""
    monkeypatch.setattr(tuning, "measure", _fake_measure)
    monkeypatch.setattr(tuning, "contention", lambda run, threads: (run(), share))
    entry = tuning.tune(LIBS_FAKE, 2)
    assert entry["contention"] == share and set(entry["choice"].values()) == {"b"}
    assert cache.exists() == cached
    assert (tuning.load_choice(LIBS_FAKE, 2) is not None) == cached


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")
def test_contention_sees_processes_on_the_cores_it_times(monkeypatch):
    cores = os.cpu_count() or 1
    burn = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(0.3)  # the burners are up
        _, busy = tuning.contention(lambda: time.sleep(0.6), cores)
    finally:
        for p in burn:
            p.kill()
            p.wait()
    assert busy is not None and busy > 0.5, busy  # every core taken by someone else: ~1.0
    monkeypatch.setattr(tuning, "_cpu_jiffies", lambda: None)
    assert tuning.contention(lambda: 7, cores) == (7, None)  # not measurable: None


def test_each_library_is_timed_on_the_threads_asked_then_set_back(monkeypatch):
    """A library timed on a count earlier code left (in a test run here oneDNN read one core's
    rate under a two-thread key, and that choice was cached) is set to the key's count first."""

    class Counted(_Lib):
        count = 1

        def get_threads(self):
            return self.count

        def set_threads(self, n):
            self.count = n

    libs = {"a": Counted("a", "p"), "b": Counted("b", "q")}
    libs["b"].count = 3
    seen = []
    monkeypatch.setattr(
        tuning, "_measure_one", lambda table, name, lib, budget: seen.append((name, lib.count))
    )
    tuning.measure(libs, threads=2)
    assert seen == [("a", 2), ("b", 2)]
    assert (libs["a"].count, libs["b"].count) == (1, 3)  # as they were
    seen.clear()
    tuning.measure(libs)  # no count asked: as found
    assert seen == [("a", 1), ("b", 3)]
