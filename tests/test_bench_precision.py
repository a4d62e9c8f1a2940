"""`rnnlab bench --precision` (rnnlab/bench_precision.py, issue 32 item 3): the table's rows and
columns and the JSON report's keys; no timing asserted."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rnnlab import bench, bench_precision

TINY = bench.Config(3, 2, 4, 8)


def test_steps_are_the_float_layer_and_its_int8_copy(monkeypatch):
    made = []
    real = bench_precision.quantize_dynamic
    monkeypatch.setattr(bench_precision, "quantize_dynamic", lambda m: made.append(m) or real(m))
    f32, int8 = bench_precision.steps("gru", bench.Config(3, 2, 4, 8, 2, True))
    f32(), int8()
    assert type(made[0]).__name__ == "GRU" and not made[0].training
    assert made[0].num_layers == 2 and made[0].bidirectional


def test_row_ratio_and_offer_follow_the_times():
    fake = lambda fns, reps, min_time, block: [[0.002, 0.001, 0.003], [0.001, 0.0005, 0.004]]  # noqa: E731
    r = bench_precision.row("lstm", TINY, fake, reps=3, block=1)
    assert r["float32_ms"] == pytest.approx(2.0) and r["int8_ms"] == pytest.approx(1.0)
    assert r["ratio"] == pytest.approx(0.5) and r["int8_offered"] is True
    assert r["float32_spread_ms"] == pytest.approx([1.0, 3.0])
    assert bench_precision.format_row(r).endswith("| **0.50** | faster here |")
    slow = bench_precision.row("gru", TINY, lambda *a, **k: [[0.001], [0.002]], reps=1, block=1)
    assert not slow["int8_offered"] and bench_precision.format_row(slow).endswith("| slower: float32 |")


def test_gemm_line_names_the_library_or_why_not():
    assert "oneDNN's integer GEMM loaded" in bench_precision.gemm_line({"int8_gemm": "onednn"})
    line = bench_precision.gemm_line(
        {"int8_gemm": "numpy-int32", "fallback_reason": "oneDNN does not load here"}
    )
    assert "NumPy" in line and "oneDNN does not load here" in line


def test_cli_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "p.json"
    args = ["bench", "--precision", "--reps", "1", "--block", "1", "--cells", "gru", "--json", str(out)]
    res = subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("# ") and "threads, inference only" in lines[0]
    assert lines[1].startswith("# int8 GEMM: ")
    assert lines[2] == bench_precision.HEADER.splitlines()[0]
    rows = [line for line in lines if line.startswith("| gru |")]
    assert len(rows) == len(bench.QUICK)
    for line, cfg in zip(rows, bench.QUICK):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 6 and cells[1] == cfg.name
        assert cells[5] in (bench_precision.FASTER, bench_precision.SLOWER)
    assert any(line.startswith("# int8 offered for ") for line in lines)
    data = json.loads(out.read_text())
    assert data["environment"]["int8_gemm"] in ("onednn", "numpy-int32")
    assert {"cpu", "cores", "threads", "fallback_reason"} <= set(data["environment"])
    assert [r["config"] for r in data["precision"]] == [c.name for c in bench.QUICK]
    for r in data["precision"]:
        assert r["kind"] == "gru" and r["reps"] >= 1 and r["float32_ms"] > 0 and r["int8_ms"] > 0
        assert r["ratio"] == pytest.approx(r["int8_ms"] / r["float32_ms"])
        assert r["int8_offered"] == bool(r["ratio"] < 1)
        assert np.isfinite(r["int8_spread_ms"]).all()
