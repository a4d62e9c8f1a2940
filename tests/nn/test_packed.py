"""backend/packed.py: a step's product by a fixed weight through oneDNN's matmul primitive, the
weight packed once. int8 is exact (the GEMM's integers, bit for bit), bf16 adds into C within
float32 summation; one primitive per (rows, threads), all on the one packed copy; the compiled
loops give the GEMM's results through it; RNNLAB_PACKED=0 turns it off, saying why."""

import gc

import numpy as np
import pytest

from rnnlab.nn import GRU, LSTM, backend, quantize_dynamic, runtime
from rnnlab.nn import quantize as Q
from rnnlab.nn.backend import bf16gemm, intgemm, packed
from rnnlab.nn.quantize_stepping import QuantizedStackedCell

pytestmark = pytest.mark.skipif(
    not packed.usable("int8"), reason="oneDNN's matmul primitive is not usable here"
)


def _threads(n):
    lib = backend.library("onednn")
    before = lib.get_threads()
    lib.set_local(n)
    return lib, before


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("M, K, R", [(1, 64, 512), (7, 256, 1024), (33, 130, 17), (5, 3, 40)])
def test_the_int8_product_is_the_exact_integer_product(M, K, R, threads):
    rng = np.random.default_rng(M * K + R)
    a = rng.integers(0, 256, (M, K)).astype(np.uint8)
    b = rng.integers(-128, 128, (K, R)).astype(np.int8)
    b[0] = 127  # with a = 255: pair sums past int16 (a CPU without VNNI may saturate them)
    a[:, :2] = 255
    lib, before = _threads(threads)
    try:
        c = np.full((M, R), -7, np.int32)
        p = packed.Packed(packed._dnnl(), b, "int8")
        p.call(a, c)()
    finally:
        lib.set_local(before)
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


def test_the_bf16_product_adds_into_c_within_float32_summation():
    rng = np.random.default_rng(3)
    for M, K, R in [(1, 64, 512), (9, 301, 40)]:
        a, b = bf16gemm.to_bf16(rng.standard_normal((M, K))), bf16gemm.to_bf16(rng.standard_normal((K, R)))
        c0 = rng.standard_normal((M, R)).astype(np.float32)
        got = c0.copy()
        packed.Packed(packed._dnnl(), b, "bf16").call(a, got)()
        want = bf16gemm.BF16Gemm()(a, b, c0.copy(), beta=1.0)
        scale = np.abs(bf16gemm.from_bf16(a)) @ np.abs(bf16gemm.from_bf16(b)) + np.abs(c0)
        assert np.all(np.abs(got - want) <= 1e-5 * scale + 1e-6)


def test_one_primitive_per_rows_and_threads_and_one_packed_copy():
    b = np.random.default_rng(0).integers(-128, 128, (32, 64)).astype(np.int8)
    p = packed.Packed(packed._dnnl(), b, "int8")
    lib, before = _threads(1)
    try:
        one = p.primitive(4)
        assert p.primitive(4) is one  # kept
        lib.set_local(2)
        two = p.primitive(4)
    finally:
        lib.set_local(before)
    assert two is not one and two[0] != one[0]  # a primitive splits work for the count it was made with
    assert p.primitive(9)[0] not in (one[0], two[0])
    assert len(p._prims) == 3 and p._wbuf.nbytes >= b.nbytes  # one packed copy for all of them


def test_a_call_checks_its_buffers_and_releases_its_memory_objects():
    b = np.zeros((8, 16), np.int8)
    p = packed.Packed(packed._dnnl(), b, "int8")
    with pytest.raises(ValueError, match="Packed.call"):
        p.call(np.zeros((3, 9), np.uint8), np.zeros((3, 16), np.int32))  # K = 9, B has 8 rows
    with pytest.raises(ValueError, match="Packed.call"):
        p.call(np.zeros((3, 8), np.uint8), np.zeros((3, 16), np.float32))  # C must be int32
    call = p.call(np.zeros((3, 8), np.uint8), np.zeros((3, 16), np.int32))
    release = call.released
    assert release.alive
    del call
    gc.collect()
    assert not release.alive  # its memory objects were destroyed with it


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_the_loops_give_the_gemms_results_through_the_packed_weights(cls, dtype):
    if Q.compiled_loops(dtype) is None:
        pytest.skip(f"the compiled {dtype} loops need numba and oneDNN")
    layer = cls(13, 40, num_layers=2, bidirectional=True, seed=5)
    x = np.random.default_rng(1).standard_normal((8, 5, 13)).astype(np.float32)  # 5 rows: buffers of 6
    lengths = np.array([8, 3, 5, 1, 8])
    q, q_gemm = quantize_dynamic(layer, dtype), quantize_dynamic(layer, dtype)
    for mats in q_gemm.mats.values():
        for m in mats[:2]:
            m._packed = False  # this copy's loops run the GEMM
    got, want = q(x, lengths=lengths), q_gemm(x, lengths=lengths)
    assert all(packed.of(m) is not None for mats in q.mats.values() for m in mats[:2])
    if dtype == "int8":  # exact integer products either way: the same floats
        np.testing.assert_array_equal(got[0], want[0])
    else:
        np.testing.assert_allclose(got[0], want[0], atol=1e-4)
    cell = QuantizedStackedCell(quantize_dynamic(cls(13, 40, seed=5), dtype))
    cell_gemm = QuantizedStackedCell(quantize_dynamic(cls(13, 40, seed=5), dtype))
    for m in cell_gemm.layer.mats["_l0"][:2]:
        m._packed = False
    s, s_gemm = cell.initial_state(5), cell_gemm.initial_state(5)
    for t in range(4):
        y, s = cell.step(x[t], s)
        y_gemm, s_gemm = cell_gemm.step(x[t], s_gemm)
    if dtype == "int8":
        np.testing.assert_array_equal(y, y_gemm)
    else:
        np.testing.assert_allclose(y, y_gemm, atol=1e-4)


def test_RNNLAB_PACKED_0_turns_it_off_and_says_why(monkeypatch):
    monkeypatch.setenv("RNNLAB_PACKED", "0")
    packed.reset()
    try:
        assert packed.describe() == {"int8": "RNNLAB_PACKED=0", "bf16": "RNNLAB_PACKED=0"}
        m = quantize_dynamic(LSTM(4, 8)).mats["_l0"][1]
        assert packed.of(m) is None
    finally:
        monkeypatch.delenv("RNNLAB_PACKED")
        packed.reset()
    assert packed.describe() == {"int8": True, "bf16": True}
    assert intgemm.describe()["int8_gemm"] == "onednn"


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_row_blocks_give_one_blocks_numbers(cls, dtype):
    """The rows of a batch are independent: two blocks on two threads (each its own primitive,
    stream and scratchpad) give the numbers of one block; int8 bit for bit."""
    if Q.compiled_loops(dtype) is None:
        pytest.skip(f"the compiled {dtype} loops need numba and oneDNN")
    from rnnlab.nn.backend import infer_cells  # imports numba

    layer = cls(24, 40, num_layers=2, bidirectional=True, seed=7)
    x = (
        np.random.default_rng(4).standard_normal((11, 34, 24)).astype(np.float32)
    )  # blocks of 17: buffers of 24
    lengths = np.random.default_rng(5).integers(1, 12, 34)
    q = quantize_dynamic(layer, dtype)
    with runtime.override(min_thread_work=1.0):  # every step worth all threads
        if infer_cells.row_blocks(34, 2)[0] < 2:
            pytest.skip("numba's parallel layer runs one thread here")
        got = q(x, lengths=lengths)
        with runtime.override(min_rows=10**6):  # no row blocks
            assert infer_cells.row_blocks(34, 2)[0] == 1
            want = q(x, lengths=lengths)
    for g, w in zip([got[0], *got[1]], [want[0], *want[1]]):
        if dtype == "int8":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, atol=1e-5)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_input_products_a_few_steps_a_call_give_the_step_by_step_numbers(cls, monkeypatch):
    """int8_loops.chunk: a row block multiplies the inputs of several steps in one call (buffers
    of 3 x 24 rows hold 4 steps of a block's 17, so T = 11 runs 4 + 4 + 3, with sequences ending
    inside chunks): bit for bit the numbers of one step a call."""
    if Q.compiled_loops("int8") is None:
        pytest.skip("the compiled int8 loops need numba and oneDNN")
    from rnnlab.nn.backend import infer_cells, int8_loops  # import numba

    x = np.random.default_rng(6).standard_normal((11, 34, 24)).astype(np.float32)
    lengths = np.random.default_rng(7).integers(1, 12, 34)
    got = {}
    for steps in (1, 3):
        q = quantize_dynamic(cls(24, 40, seed=8))  # its own plans (they hold the buffers)
        G = q.mats["_l0"][1].qT.shape[1]
        monkeypatch.setattr(int8_loops, "CHUNK_BYTES", steps * 24 * G * 8)  # blocks of 17: rows of 24
        assert int8_loops.chunk(24, G) == steps
        with runtime.override(min_thread_work=1.0):
            if infer_cells.row_blocks(34, 2)[0] < 2:
                pytest.skip("numba's parallel layer runs one thread here")
            got[steps] = q(x, lengths=lengths)
    for g, w in zip([got[3][0], *got[3][1]], [got[1][0], *got[1][1]]):
        np.testing.assert_array_equal(g, w)


def test_a_loops_buffers_and_calls_are_kept_per_thread_and_give_the_same_numbers():
    """infer_cells.loop_plan: the second forward reuses the first's plan (no new memory objects);
    another thread gets its own; the numbers do not change."""
    import threading

    if Q.compiled_loops("int8") is None:
        pytest.skip("the compiled int8 loops need numba and oneDNN")
    q = quantize_dynamic(LSTM(6, 20, seed=2))
    x = np.random.default_rng(0).standard_normal((5, 3, 6)).astype(np.float32)
    W = packed.of(q.mats["_l0"][1])
    first = q(x)[0]
    plans = dict(W.plans)
    assert len(plans) == 1
    np.testing.assert_array_equal(q(x)[0], first)
    assert W.plans.keys() == plans.keys() and all(W.plans[k] is v for k, v in plans.items())  # reused
    other = []
    t = threading.Thread(target=lambda: other.append(q(x)[0]))
    t.start()
    t.join()
    np.testing.assert_array_equal(other[0], first)
    assert len(W.plans) == 2  # the other thread's own


def test_row_counts_share_a_primitive_in_buckets_and_a_smaller_batch_gives_its_own_numbers():
    """packed.rows: 1-4, then 6, 8, 12, 16, 24 ...; a stepping cell's plan for 6 rows serves 5 and
    6, and 5 rows stepped there give what the GEMM on exactly 5 rows gives (the extra rows are
    not read)."""
    assert [packed.rows(m) for m in (1, 4, 5, 6, 7, 9, 13, 17, 25, 33, 100)] == [
        1,
        4,
        6,
        6,
        8,
        12,
        16,
        24,
        32,
        48,
        128,
    ]
    if Q.compiled_loops("int8") is None:
        pytest.skip("the compiled int8 loops need numba and oneDNN")
    layer = LSTM(7, 12, num_layers=2, seed=8)
    x = np.random.default_rng(6).standard_normal((6, 7)).astype(np.float32)
    cell = QuantizedStackedCell(quantize_dynamic(layer))
    y6, _ = cell.step(x, cell.initial_state(6))
    y5, _ = cell.step(x[:5], cell.initial_state(5))
    assert len(cell._plans) == 1  # one plan (6 rows) for both
    fresh = QuantizedStackedCell(quantize_dynamic(layer))
    for mats in fresh.layer.mats.values():
        for m in mats[:2]:
            m._packed = False  # the GEMM on exactly 5 rows: no buffer of 6
    np.testing.assert_array_equal(y5, fresh.step(x[:5], fresh.initial_state(5))[0])
    np.testing.assert_array_equal(y5, y6[:5])  # rows are independent


@pytest.mark.parametrize("dtype", ["int8", "bf16"])
def test_two_threads_at_once_get_each_batchs_numbers(dtype):
    """A server's threads share one quantised model: their plans, streams and row blocks are
    their own, and each batch gets what it gets alone (34 rows: row blocks; 5: one block)."""
    import threading

    if Q.compiled_loops(dtype) is None:
        pytest.skip(f"the compiled {dtype} loops need numba and oneDNN")
    q = quantize_dynamic(LSTM(24, 40, num_layers=2, bidirectional=True, seed=7), dtype)
    xs = [
        np.random.default_rng(i).standard_normal((9, 34 if i % 2 else 5, 24)).astype(np.float32)
        for i in range(6)
    ]
    with runtime.override(min_thread_work=1.0):
        want = [q(x)[0] for x in xs]
        wrong = []

        def work(k):
            for _ in range(5):
                for i in range(k, len(xs), 2):
                    got = q(xs[i])[0]
                    same = (
                        np.array_equal(got, want[i])
                        if dtype == "int8"
                        else np.allclose(got, want[i], atol=1e-5)
                    )
                    wrong.extend([] if same else [i])

        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wrong == []
