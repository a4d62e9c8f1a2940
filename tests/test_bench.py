"""rnnlab/bench.py: the harness behind `rnnlab bench` and benchmarks/run.py (no timing asserted)."""

import json
import subprocess
import sys

import pytest

from rnnlab import bench

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
    rows = bench.run([TINY], (kind,), reps=2, memory=True, progress=lambda s: None)
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
    assert sum(line.startswith("| gru |") for line in lines) == 2 * len(bench.QUICK)
    data = json.loads(out.read_text())
    assert data["environment"]["row_block_threads"] >= 1
    assert len(data["results"]) == 2 * len(bench.QUICK)
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
