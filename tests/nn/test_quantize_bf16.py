"""The bf16 layers of issue 32 (``quantize_dynamic(layer, dtype="bf16")``): the rounding is
IEEE round-to-nearest-even (as PyTorch's), oneDNN's bf16 product is NumPy's float32 product of
the same values, the layers are within a measured bound of the float ones and no worse than
PyTorch's bf16 autocast given the same weights, the compiled loops equal the reference, and
files save, load and are checked like the int8 ones (version-1 int8 files still load)."""

import numpy as np
import pytest

from rnnlab.io import write_tensors
from rnnlab.nn import GRU, LSTM, RNN, inference_mode, quantize_dynamic, quantize_io
from rnnlab.nn import quantize as Q
from rnnlab.nn import quantize_stepping as S
from rnnlab.nn.backend import bf16gemm

# the largest |bf16 out - float out| / max |float out| over 200 random layers of the shapes
# below (20 seeds) was 0.0101 (a tanh RNN), 0.0045-0.0054 for the LSTM, the GRUs and the relu
# RNN (int8: 0.010-0.022); 2x the largest is asserted
BF16_BOUND = 0.02
CELLS = [(LSTM, {}), (GRU, {}), (GRU, {"reset_after": False}), (RNN, {}), (RNN, {"nonlinearity": "relu"})]


def _edge_values() -> np.ndarray:
    u = np.array(
        [
            0x3F808000,  # 1 + 2^-8: a tie, rounds down to the even 0x3F80
            0x3F818000,  # a tie above an odd bf16: rounds up to 0x3F82
            0x3F808001,  # just past a tie: up
            0x7F7FFFFF,  # float32's largest: past bf16's, rounds to inf
            0x00000001,  # the smallest subnormal
            0x80000000,  # -0
            0x7F800000,  # inf
            0xFF800000,  # -inf
            0x7FC00001,  # a NaN whose payload would round away
            0x7F800001,  # a signalling NaN: must stay NaN, not become inf
        ],
        np.uint32,
    )
    return u.view(np.float32)


def test_to_bf16_rounds_to_nearest_even_and_keeps_nan_and_inf():
    b = bf16gemm.to_bf16(_edge_values())
    assert [hex(v) for v in b[:4]] == ["0x3f80", "0x3f82", "0x3f81", "0x7f80"]
    back = bf16gemm.from_bf16(b)
    assert back[4] == 0 and np.signbit(back[5]) and back[6] == np.inf and back[7] == -np.inf
    assert np.isnan(back[8:]).all()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(10_000) * 10.0 ** rng.integers(-30, 30, 10_000)).astype(np.float32)
    rt = bf16gemm.from_bf16(bf16gemm.to_bf16(x))
    assert (np.abs(rt - x) <= np.abs(x) * 2.0**-8).all()  # half an ulp of 8 significant bits
    np.testing.assert_array_equal(bf16gemm.to_bf16(rt), bf16gemm.to_bf16(x))  # idempotent


def test_to_bf16_is_pytorchs_rounding():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = np.concatenate([_edge_values()[:8], rng.standard_normal(5000).astype(np.float32) * 1e3])
    want = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bf16gemm.to_bf16(x), want)


def test_the_compiled_rounding_is_the_reference():
    if Q.compiled_loops("bf16") is None:
        pytest.skip("the compiled bf16 loops need numba and oneDNN")
    from rnnlab.nn.backend import bf16_loops

    rng = np.random.default_rng(2)
    x = np.concatenate([_edge_values(), rng.standard_normal(990).astype(np.float32)]).reshape(20, 50)
    out = np.empty(x.shape, np.uint16)
    bf16_loops.to_bf16(x, out)
    np.testing.assert_array_equal(out, bf16gemm.to_bf16(x))


def _gemms():
    out = [bf16gemm.BF16Gemm()]
    if bf16gemm.gemm().name == "onednn":
        out.append(bf16gemm.gemm())
    return out


@pytest.mark.parametrize("g", _gemms(), ids=lambda g: g.name)
def test_the_bf16_product_is_the_float32_product_of_the_rounded_values(g):
    rng = np.random.default_rng(3)
    for _ in range(10):
        M, K, R = (int(v) for v in rng.integers(1, 300, 3))
        a, b = bf16gemm.to_bf16(rng.standard_normal((M, K))), bf16gemm.to_bf16(rng.standard_normal((K, R)))
        c = rng.standard_normal((M, R)).astype(np.float32)
        A, B = bf16gemm.from_bf16(a).astype(np.float64), bf16gemm.from_bf16(b).astype(np.float64)
        scale = np.abs(A) @ np.abs(B) + np.abs(c)
        for beta in (0.0, 1.0):
            got = g(a, b, c.copy(), beta)
            assert got.dtype == np.float32
            assert (np.abs(got - (A @ B + beta * c)) <= 1e-5 * scale + 1e-6).all(), (M, K, R, beta)
    with pytest.raises(ValueError, match="not bf16 @ bf16"):
        g(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.uint16))


def test_the_numpy_product_is_forced_by_env_and_reported(monkeypatch):
    d = bf16gemm.describe()
    assert d["bf16_gemm"] in ("onednn", "numpy-float32") and d["native_bf16"] in (True, False, None)
    assert (d["fallback_reason"] is None) == (d["bf16_gemm"] == "onednn")
    monkeypatch.setenv("RNNLAB_BF16_GEMM", "numpy")
    bf16gemm.reset()
    Q.use_compiled(None)
    try:
        assert bf16gemm.describe()["fallback_reason"] == "RNNLAB_BF16_GEMM=numpy"
        assert Q.compiled_loops("bf16") is None  # the compiled loops call oneDNN's only
        layer = LSTM(5, 8, seed=0)
        x = np.random.default_rng(0).standard_normal((3, 2, 5)).astype(np.float32)
        with inference_mode():
            y = layer(x)[0]
        assert np.abs(quantize_dynamic(layer, "bf16")(x)[0] - y).max() <= BF16_BOUND * np.abs(y).max()
    finally:
        monkeypatch.delenv("RNNLAB_BF16_GEMM")
        bf16gemm.reset()
        Q.use_compiled(None)


def _layers():
    for cls, kw in CELLS:
        for L, bi in [(1, False), (2, True)]:
            yield pytest.param(cls, kw, L, bi, id=f"{cls.__name__}{kw or ''}-L{L}{'-bi' if bi else ''}")


@pytest.mark.parametrize("cls, kw, L, bi", list(_layers()))
def test_the_bf16_layer_is_within_the_stated_bound_of_the_float_layer(cls, kw, L, bi):
    rng = np.random.default_rng(L * 5 + bi)
    T, N, I, H = (int(rng.integers(lo, hi)) for lo, hi in ((2, 12), (1, 9), (1, 40), (4, 70)))
    layer = cls(I, H, num_layers=L, bidirectional=bi, seed=int(rng.integers(1000)), **kw)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    lengths = rng.integers(1, T + 1, N)
    h0 = (0.3 * rng.standard_normal((L * (1 + bi), N, H))).astype(np.float32)
    hx = (h0, h0 * 0.5) if layer.mode == "LSTM" else h0
    q = quantize_dynamic(layer, dtype="bf16")
    assert q.weight_dtype == "bf16" and all(
        v.dtype == np.uint16 for k, v in q.params.items() if k.startswith("weight")
    )
    with inference_mode():
        y, _ = layer(x, hx, lengths=lengths)
    yq, _ = q(x, hx, lengths=lengths)
    assert yq.dtype == np.float32 and np.abs(yq - y).max() <= BF16_BOUND * np.abs(y).max()
    assert np.abs(yq - y).max() > 0  # it is not the float layer
    past = np.arange(T)[:, None] >= lengths[None, :]
    assert (yq[past] == 0).all()


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_no_worse_than_pytorchs_bf16_autocast(mode):
    torch = pytest.importorskip("torch")
    from rnnlab.interop import to_torch

    layer = (LSTM if mode == "LSTM" else GRU)(32, 64, num_layers=2, bidirectional=True, seed=5)
    x = np.random.default_rng(12).standard_normal((15, 8, 32)).astype(np.float32)
    t = to_torch(layer).eval()
    with inference_mode():
        y = layer(x)[0]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y_torch = t(torch.from_numpy(x))[0].float().numpy()
    theirs = np.abs(y_torch - y).max()
    if theirs == 0:
        pytest.skip("this torch's autocast runs the layer in float32")
    ours = np.abs(quantize_dynamic(layer, "bf16")(x)[0] - y).max()
    assert ours <= 1.5 * theirs + 1e-4, (ours, theirs)


def test_bf16_files_round_trip_and_bad_bits_are_refused(tmp_path):
    q = quantize_dynamic(GRU(7, 12, num_layers=2, bidirectional=True, seed=4), dtype="bfloat16")
    back = Q.QuantizedRNN.load(q.save(tmp_path / "gru.safetensors"))
    assert back.config == q.config and back.weight_dtype == "bf16"
    x = np.random.default_rng(0).standard_normal((4, 3, 7)).astype(np.float32)
    np.testing.assert_array_equal(back(x)[0], q(x)[0])
    bad = {**q.params, "weight_hh_l0": q.params["weight_hh_l0"].copy()}
    bad["weight_hh_l0"][0, 0] = 0x7F80  # inf
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_io.check_tensors(q.config, bad)
    with pytest.raises(ValueError, match="beyond bf16's range"):
        Q.bf16_weight(np.array([[3.4e38]], np.float32))
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize_dynamic(GRU(3, 4, seed=0), dtype="fp16")


def test_a_version_1_int8_file_still_loads(tmp_path):
    q = quantize_dynamic(LSTM(3, 5, seed=0))
    tensors = {**q.params, quantize_io.CONFIG_KEY: quantize_io.encode(q.config)[:9].copy()}
    tensors[quantize_io.CONFIG_KEY][0] = 1  # what rnnlab wrote before bf16: 9 values, version 1
    tensors[quantize_io.DIGEST_KEY] = quantize_io.digest(tensors)
    back = Q.QuantizedRNN.load(write_tensors(tmp_path / "v1.safetensors", tensors))
    assert back.weight_dtype == "int8" and back.config == q.config
    tensors[quantize_io.CONFIG_KEY] = np.append(tensors[quantize_io.CONFIG_KEY], 1)  # 10 values, v1
    tensors[quantize_io.DIGEST_KEY] = quantize_io.digest(
        {k: v for k, v in tensors.items() if k != quantize_io.DIGEST_KEY}
    )
    with pytest.raises(ValueError, match="format version 1 with 10 values"):
        Q.QuantizedRNN.load(write_tensors(tmp_path / "bad.safetensors", tensors))


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
@pytest.mark.parametrize("cls, kw", [(LSTM, {}), (GRU, {}), (RNN, {"nonlinearity": "relu"})])
def test_the_compiled_one_call_step_is_the_reference_step(cls, kw, dtype):
    """QuantizedStackedCell.step (a decoder's, a stream's) through the loops' one-call step
    equals the layer's own reference loop one step at a time, across batch sizes."""
    if Q.compiled_loops(dtype) is None:
        pytest.skip(f"the compiled {dtype} loops need numba and oneDNN")
    q = quantize_dynamic(cls(6, 20, num_layers=2, seed=7, **kw), dtype)
    cell, rng = S.QuantizedStackedCell(q), np.random.default_rng(5)
    for N in (3, 1, 3):  # a new batch size gets its own buffers; an old one reuses them
        state = [0.5 * s + 0.1 for s in cell.initial_state(N)]
        ref_state = [s.copy() for s in state]
        for _ in range(4):
            x = rng.standard_normal((N, 6)).astype(np.float32)
            before = [s.copy() for s in state]
            out, state2 = cell.step(x, state)
            assert all(np.array_equal(a, b) for a, b in zip(state, before))  # the old untouched
            Q.use_compiled(False)
            try:
                ref_out, ref_state = cell.step(x, ref_state)
            finally:
                Q.use_compiled(None)
            np.testing.assert_allclose(out, ref_out, atol=1e-4)
            for a, b in zip(state2, ref_state):
                np.testing.assert_allclose(a, b, atol=1e-4)
            assert all(a is not b for a, b in zip(state2, state))  # new arrays
            state, ref_state = state2, [s.copy() for s in state2]


@pytest.fixture
def onednn_calls(monkeypatch, dtype):
    """oneDNN's thread count on this thread set to two for the test (the suite may run one: two
    leave one to lower to) and given back after; the ``set_local`` calls made meanwhile."""
    from rnnlab.nn import backend

    lib = backend.library("onednn")
    if Q.compiled_loops(dtype) is None or lib is None:
        pytest.skip(f"the compiled {dtype} loops need numba and oneDNN")
    before, calls, real = lib.get_threads(), [], lib.set_local
    real(2)
    monkeypatch.setattr(lib, "set_local", lambda n: calls.append(n) or real(n))
    try:
        yield calls
        assert lib.get_threads() == 2  # given back after each pass
    finally:
        real(before)


def _small_layer(dtype):
    q = quantize_dynamic(LSTM(4, 8, seed=0), dtype)
    return q, np.ones((3, 2, 4), np.float32), S.QuantizedStackedCell(q)


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
def test_small_steps_run_onednn_on_one_thread_and_give_the_count_back(onednn_calls, dtype):
    """The reduced loops follow runtime.min_thread_work as the float loops do: below it, this
    thread's oneDNN count is 1 during the pass and what it was after; from it, left alone."""
    from rnnlab.nn import runtime

    q, x, cell = _small_layer(dtype)
    with runtime.override(min_thread_work=1e12):
        q(x)
        cell.step(x[0], cell.initial_state(2))
    assert onednn_calls == [1, 2, 1, 2]
    onednn_calls.clear()
    with runtime.override(min_thread_work=0):
        q(x)
        cell.step(x[0], cell.initial_state(2))
    assert onednn_calls == []


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
def test_a_stepping_cells_step_weighs_a_sixteenth_of_its_work(onednn_calls, dtype):
    """QuantizedStackedCell.step counts its multiply-adds at S.STEP_WORK (1/16) against
    min_thread_work, the whole-sequence loops at full weight: at a threshold between the two, the
    step runs on one oneDNN thread and the sequence is left alone."""
    from rnnlab.nn import runtime

    q, x, cell = _small_layer(dtype)
    step_work = 2 * 4 * 8 * (8 + 8)  # N G H (max(I, H) + H) = 1024; the sequence's N G (I + H) = 768
    assert step_work * S.STEP_WORK < 500 <= 2 * 32 * (4 + 8)
    with runtime.override(min_thread_work=500):
        q(x)
        assert onednn_calls == []
        cell.step(x[0], cell.initial_state(2))
        assert onednn_calls == [1, 2]
