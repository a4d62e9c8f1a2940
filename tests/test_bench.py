"""rnnlab/bench.py: the harness behind `rnnlab bench` and benchmarks/run.py (no timing asserted)."""

import json
import subprocess
import sys

import pytest

from rnnlab import bench, bench_limits

TINY = bench.Config(3, 2, 4, 8)


def test_blas_info_names_numpy_blas_and_aligns_rnnlab_threads():
    info = bench.blas_info()
    assert info["threads"] >= 1
    from rnnlab.nn import backend, runtime

    assert runtime.describe()["threads"] == info["threads"]  # same threads as torch gets
    if backend.library("mkl") is not None:
        assert info["mkl"]["num_threads"] == info["threads"]
        assert info["internal_api"] != "mkl"  # NumPy's own BLAS, not MKL


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_run_rows_have_times_ratio_and_memory(kind):
    pytest.importorskip("torch")
    rows = bench.run([TINY], (kind,), reps=2, memory=True, progress=lambda s: None, stream=False)
    assert [r["mode"] for r in rows] == ["train", "infer"]
    for r in rows:
        assert r["reps"] >= 2 and r["rnnlab_ms"] > 0 and r["torch_ms"] > 0
        lo, hi = r["rnnlab_spread_ms"]
        assert lo <= r["rnnlab_ms"] <= hi
        assert r["ratio"] == pytest.approx(r["rnnlab_ms"] / r["torch_ms"])
        assert bench.format_row(r).startswith(f"| {kind} | (3,2,4,8) | {r['mode']} |")
    assert rows[0]["rnnlab_peak_mib"] >= 0 and rows[0]["torch_peak_mib"] >= 0
    assert "rnnlab_peak_mib" not in rows[1]


def test_steps_compute_what_they_claim(monkeypatch):
    """The timed rnnlab training step really runs backward (gradients change), inference not."""
    made, real = [], bench._make_rnnlab
    monkeypatch.setattr(bench, "_make_rnnlab", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    bench.rnnlab_step("gru", TINY, "train")()
    assert any(abs(g).sum() > 0 for g in made[0].grads.values())
    bench.rnnlab_step("lstm", TINY, "infer")()
    assert not made[1].training and all(abs(g).sum() == 0 for g in made[1].grads.values())


def test_cli_without_torch_writes_json(tmp_path):
    out = tmp_path / "b.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnlab.cli",
            "bench",
            "--no-torch",
            "--no-memory",
            "--reps",
            "1",
            "--cells",
            "gru",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("# ") and "rnnlab backend" in lines[0] and "row blocks x" in lines[0]
    assert "largest SGEMM" in lines[0] and "GEMM choice:" in lines[0]
    assert sum(line.startswith("| gru |") for line in lines) == 2 * len(bench.QUICK) + 1  # + streaming
    data = json.loads(out.read_text())
    assert data["environment"]["row_block_threads"] >= 1
    assert data["environment"]["peak_sgemm"]["gflops"] > 0
    assert len(data["results"]) == 2 * len(bench.QUICK) + 1
    assert data["results"][-1]["mode"] == "step"
    for r in data["results"][:-1]:
        assert r["rnnlab_gflops"] == pytest.approx(r["gflop"] / (r["rnnlab_ms"] / 1e3))
        assert (
            0
            < r["rnnlab_share_of_peak"]
            == pytest.approx(r["rnnlab_gflops"] / data["environment"]["peak_sgemm"]["gflops"])
        )
    assert all("torch_ms" not in r for r in data["results"])


@pytest.mark.parametrize("flag", ["--reps", "--block"])
def test_cli_rejects_zero_reps_or_block(flag):
    res = subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", "bench", flag, "0"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2 and flag in res.stderr and "Traceback" not in res.stderr


def test_time_alternates_blocks_each_after_an_untimed_call():
    calls = []
    fns = [lambda: calls.append("a"), lambda: calls.append("b")]
    times = bench._time(fns, reps=6, min_time=0, block=3)
    assert [len(t) for t in times] == [6, 6]
    warm, rounds = "aabb", ["a" + "aaa" + "b" + "bbb"] * 2  # untimed call, then 3 timed
    assert "".join(calls) == warm + "".join(rounds)
    calls.clear()
    bench._time(fns, reps=2, min_time=0, block=1)  # rep by rep
    assert "".join(calls) == "aabb" + "abab"


def test_flop_of_a_pass():
    """8 T N H (I + H) for one LSTM layer forward (6 for the GRU); a second bidirectional
    layer reads 2H inputs; training is three times the forward."""
    T, N, I, H = 7, 5, 3, 11
    one = bench.Config(T, N, I, H)
    assert bench_limits.flop("lstm", one, "infer") == 8 * T * N * H * (I + H)
    assert bench_limits.flop("gru", one, "infer") == 6 * T * N * H * (I + H)
    assert bench_limits.flop("lstm", one, "train") == 3 * 8 * T * N * H * (I + H)
    deep = bench.Config(T, N, I, H, 2, True)
    assert bench_limits.flop("lstm", deep, "infer") == 2 * 8 * T * N * H * ((I + H) + (2 * H + H))


def test_streaming_row_times_single_steps_of_both_libraries(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setitem(bench_limits.STREAM, "steps", 20)
    for kind in ("lstm", "gru"):
        r = bench_limits.streaming(kind, reps=2)
        assert r["mode"] == "step" and r["config"] == "stream 20x(N=1,I=8,H=256)"
        assert r["rnnlab_ms"] > 0 and r["torch_ms"] > 0
        assert r["ratio"] == pytest.approx(r["rnnlab_ms"] / r["torch_ms"])
        assert bench.format_row(r).startswith(f"| {kind} | stream 20x")


def test_steps_of_the_streaming_row_are_the_layers_steps():
    """What the streaming row times computes the layer's own output, step by step."""
    import numpy as np

    import rnnlab.nn as rnn
    from rnnlab.nn.stepping import StackedCell

    layer = rnn.LSTM(8, 16, seed=1)
    x = np.random.default_rng(1).standard_normal((5, 1, 8)).astype(np.float32)
    cell = StackedCell(layer)
    state = cell.initial_state(1)
    outs = []
    with rnn.inference_mode():
        for t in range(5):
            out, state = cell.step(x[t], state)
            outs.append(out)
        ref, _ = layer(x)
    np.testing.assert_allclose(np.stack(outs), ref, rtol=1e-5, atol=1e-6)


def test_tune_table_and_choice_line():
    from rnnlab.nn.backend import tuning

    table = {c: {"a": 10.0, "b": 20.0} for c in tuning.classes()}
    choice = {c: "b" for c in tuning.classes()}
    text = bench_limits.tune_table({"table": table, "choice": choice})
    lines = text.splitlines()
    assert lines[0].startswith("| class | rows M | weight (K, Nc) | a GF/s | b GF/s |")
    assert len(lines) == 2 + len(tuning.classes())
    assert all(line.endswith("| 10.0 | **20.0** |") for line in lines[2:])
    line = bench_limits.format_choice({"gemm_choice": choice, "gemm_versions": {"b": "B 1.0"}})
    assert line == f"GEMM choice: b (B 1.0): {len(choice)} of {len(choice)} classes"


@pytest.mark.parametrize("share", [0.0, 1.0], ids=["quiet", "busy"])
def test_cli_tune_measures_caches_and_prints_the_table(tmp_path, share):
    """The timings see ``share`` of contention, set in the process (the real share depends on
    what else runs: a quiet machine's choice is cached, a busy one's is used and said not to be,
    and the test holds either way, issue 34)."""
    from rnnlab.nn import backend
    from rnnlab.nn.backend import tuning

    pytest.importorskip("numba")
    if sum(backend.library(n) is not None for n in tuning.ORDER) < 1:
        pytest.skip("no GEMM library loads here")
    args = ["bench", "--tune", "--no-torch", "--no-memory", "--no-stream", "--reps", "1", "--cells", "gru"]
    env = dict(__import__("os").environ, RNNLAB_CACHE_DIR=str(tmp_path))
    code = (
        f"from rnnlab.nn.backend import tuning; tuning.contention = lambda run, t: (run(), {share!r}); "
        "import sys; from rnnlab.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("# GEMM libraries timed on ") and lines[1].startswith("| class |")
    assert sum(line.startswith("| m") for line in lines) == len(tuning.classes())
    said = any("not cached" in line for line in lines)
    if share > tuning.CONTENDED:
        assert said and not (tmp_path / "gemm-choice.json").exists()
        return
    assert not said
    saved = json.loads((tmp_path / "gemm-choice.json").read_text())
    assert len(saved) == 1 and set(next(iter(saved.values()))["choice"]) == set(tuning.classes())
