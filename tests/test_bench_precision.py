"""`rnnlab bench --precision` (rnnlab/bench_precision.py, issue 32 item 3): the table's rows and
columns and the JSON report's keys; no timing asserted."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rnnlab import bench, bench_precision

TINY = bench.Config(3, 2, 4, 8)


def test_steps_are_the_float_layer_and_its_int8_and_bf16_copies(monkeypatch):
    made = []
    real = bench_precision.quantize_dynamic
    monkeypatch.setattr(bench_precision, "quantize_dynamic", lambda m, d: made.append((m, d)) or real(m, d))
    f32, int8, bf16 = bench_precision.steps("gru", bench.Config(3, 2, 4, 8, 2, True))
    f32(), int8(), bf16()
    assert [d for _, d in made] == ["int8", "bf16"] and made[0][0] is made[1][0]
    m = made[0][0]
    assert type(m).__name__ == "GRU" and not m.training and m.num_layers == 2 and m.bidirectional


def test_row_ratios_and_offers_follow_the_times():
    times = [[0.002, 0.001, 0.003], [0.001, 0.0005, 0.004], [0.003, 0.003, 0.003]]
    r = bench_precision.row("lstm", TINY, lambda fns, reps, min_time, block: times, reps=3, block=1)
    assert r["float32_ms"] == pytest.approx(2.0) and r["int8_ms"] == pytest.approx(1.0)
    assert r["int8_ratio"] == pytest.approx(0.5) and r["int8_offered"] is True
    assert r["bf16_ratio"] == pytest.approx(1.5) and r["bf16_offered"] is False
    assert r["float32_spread_ms"] == pytest.approx([1.0, 3.0])
    assert bench_precision.format_row(r).endswith("| **0.50** | **1.50** | int8 |")
    slow = bench_precision.row("gru", TINY, lambda *a, **k: [[0.001], [0.002], [0.003]], reps=1, block=1)
    assert bench_precision.format_row(slow).endswith("| float32 |")
    both = bench_precision.row("gru", TINY, lambda *a, **k: [[0.003], [0.002], [0.001]], reps=1, block=1)
    assert bench_precision.offered(both) == "int8 bf16"


def test_gemm_lines_name_the_libraries_or_why_not():
    ok = {"int8": {"int8_gemm": "onednn"}, "bf16": {"bf16_gemm": "onednn", "native_bf16": False}}
    i8, b16 = bench_precision.gemm_lines(ok)
    assert "oneDNN's integer GEMM loaded" in i8 and "dnnl_gemm_bf16bf16f32" in b16 and "emulates" in b16
    why = {"fallback_reason": "oneDNN does not load here"}
    i8, b16 = bench_precision.gemm_lines(
        {"int8": {"int8_gemm": "numpy-int32", **why}, "bf16": {"bf16_gemm": "numpy-float32", **why}}
    )
    assert all("NumPy" in line and "oneDNN does not load here" in line for line in (i8, b16))


def test_cli_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "p.json"
    args = ["bench", "--precision", "--reps", "1", "--block", "1", "--cells", "gru", "--json", str(out)]
    res = subprocess.run(
        [sys.executable, "-m", "rnnlab.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("# ") and "threads, inference only" in lines[0]
    assert lines[1].startswith("# int8 GEMM: ") and lines[2].startswith("# bf16 GEMM: ")
    assert lines[3].startswith("# int8 steps: ") and lines[4].startswith("# bf16 steps: ")
    assert lines[5] == bench_precision.HEADER.splitlines()[0]
    rows = [line for line in lines if line.startswith("| gru |")]
    assert len(rows) == len(bench.QUICK)
    offers = {"float32", "int8", "bf16", "int8 bf16"}
    for line, cfg in zip(rows, bench.QUICK):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 8 and cells[1] == cfg.name and cells[7] in offers
    assert any(line.startswith("# int8 offered for ") for line in lines)
    assert any(line.startswith("# bf16 offered for ") for line in lines)
    data = json.loads(out.read_text())
    env = data["environment"]
    assert env["int8"]["int8_gemm"] in ("onednn", "numpy-int32")
    assert env["bf16"]["bf16_gemm"] in ("onednn", "numpy-float32")
    assert {"cpu", "cores", "threads"} <= set(env)
    assert [r["config"] for r in data["precision"]] == [c.name for c in bench.QUICK]
    for r in data["precision"]:
        assert r["kind"] == "gru" and r["reps"] >= 1 and r["float32_ms"] > 0
        for name in ("int8", "bf16"):
            assert r[f"{name}_ms"] > 0 and np.isfinite(r[f"{name}_spread_ms"]).all()
            assert r[f"{name}_ratio"] == pytest.approx(r[f"{name}_ms"] / r["float32_ms"])
            assert r[f"{name}_offered"] == bool(r[f"{name}_ratio"] < 1)


def test_tune_then_precision_times_the_gemm_choice_first(monkeypatch, capsys):
    """`rnnlab bench --tune --precision`: the GEMM libraries are timed again, then the precision
    table runs (it used to return before --tune was looked at)."""
    from rnnlab import bench_limits
    from rnnlab.cli import main

    order = []
    monkeypatch.setattr(bench_limits, "retune", lambda: order.append("tune") or {})
    monkeypatch.setattr(bench_precision, "cli", lambda *a, **k: order.append("precision") or 0)
    assert main(["bench", "--tune", "--precision", "--no-torch"]) == 0
    assert order == ["tune", "precision"]
    assert "--tune: no GEMM library loads here" in capsys.readouterr().out
