"""rnnlab.nn.init: each scheme's defining property, measured on the parameters it wrote."""

import numpy as np
import pytest

import rnnlab.nn as rnn
from rnnlab.nn import init

I, H = 7, 11  # all sizes different, so a transposed block would have the wrong shape


def layers(bias=True):
    kw = dict(num_layers=2, bidirectional=True, bias=bias, dtype=np.float64, seed=0)
    return {
        "RNN": rnn.RNN(I, H, **kw),
        "LSTM": rnn.LSTM(I, H, **kw),
        "GRU": rnn.GRU(I, H, **kw),
        "GRU-chapter": rnn.GRU(I, H, reset_after=False, **kw),
        "LSTMCell": rnn.LSTMCell(I, H, bias=bias, dtype=np.float64, seed=0),
        "GRUCell": rnn.GRUCell(I, H, bias=bias, dtype=np.float64, seed=0),
    }


def n_gates(name):
    return {"RNN": 1, "LSTM": 4, "GRU": 3, "GRU-chapter": 3, "LSTMCell": 4, "GRUCell": 3}[name]


@pytest.mark.parametrize("name", list(layers()))
def test_orthogonal_scheme(name):
    m = layers()[name]
    shapes = {k: v.shape for k, v in m.params.items()}
    init.apply(m, "orthogonal", seed=3)
    assert {k: v.shape for k, v in m.params.items()} == shapes, "init changed a parameter's shape"
    G = n_gates(name)
    for k, p in m.params.items():
        if k.startswith("weight_hh"):
            for j in range(G):
                W_k = p[j * H : (j + 1) * H]
                err = np.abs(W_k @ W_k.T - np.eye(H)).max()
                assert err < 1e-12, f"{k} gate block {j}: |W W^T - I| = {err:.2e}"
            # the blocks are different draws, not one matrix repeated
            assert G == 1 or not np.allclose(p[:H], p[H : 2 * H]), f"{k}: gate blocks identical"
        elif k.startswith("weight_ih"):
            a = np.sqrt(6.0 / (H + p.shape[1]))  # Xavier bound of one (H, in) block
            assert np.abs(p).max() <= a, f"{k}: outside the Xavier bound {a:.3f}"
            assert np.abs(p).max() > 0.8 * a, f"{k}: far inside the Xavier bound (wrong fan?)"
            assert abs(p.std() - a / np.sqrt(3)) < 0.15 * a / np.sqrt(3), f"{k}: std {p.std():.3f}"
        elif k.startswith("bias_ih") and G == 4:
            expect = np.zeros(4 * H)
            expect[H : 2 * H] = 1.0
            np.testing.assert_array_equal(p, expect, err_msg=f"{k}: forget bias must be 1 in f block only")
        else:  # bias_hh (all kinds) and bias_ih of RNN/GRU
            np.testing.assert_array_equal(p, 0.0, err_msg=f"{k} must be zero")


def test_orthogonal_forget_bias_sum_is_one():
    lstm = init.apply(rnn.LSTM(I, H, dtype=np.float64), "orthogonal", seed=1)
    b = lstm.params["bias_ih_l0"] + lstm.params["bias_hh_l0"]  # the bias the gate actually sees
    np.testing.assert_array_equal(b[H : 2 * H], 1.0)
    np.testing.assert_array_equal(np.delete(b, np.s_[H : 2 * H]), 0.0)


def test_forget_gate_bias_only_touches_f_block():
    lstm = rnn.LSTM(I, H, dtype=np.float64, seed=0)
    before = lstm.state_dict()
    init.forget_gate_bias(lstm, 2.5)
    ih, hh = lstm.params["bias_ih_l0"], lstm.params["bias_hh_l0"]
    np.testing.assert_array_equal(ih[H : 2 * H], 2.5)
    np.testing.assert_array_equal(hh[H : 2 * H], 0.0)
    for k in ("bias_ih_l0", "bias_hh_l0"):
        rest = np.delete(lstm.params[k], np.s_[H : 2 * H])
        np.testing.assert_array_equal(rest, np.delete(before[k], np.s_[H : 2 * H]), err_msg=k)


def test_forget_gate_bias_rejects_non_lstm_and_no_bias():
    with pytest.raises(ValueError, match="LSTM"):
        init.forget_gate_bias(rnn.GRU(I, H))
    with pytest.raises(ValueError, match="bias=False"):
        init.forget_gate_bias(rnn.LSTM(I, H, bias=False))
    # the scheme itself simply has no bias to set
    init.apply(rnn.LSTM(I, H, bias=False), "orthogonal", seed=0)


@pytest.mark.parametrize("name", list(layers()))
def test_book_truncated_normal(name):
    m = init.apply(layers()[name], "book", seed=5)
    w = np.concatenate([p.ravel() for k, p in m.params.items() if k.startswith("weight")])
    assert np.abs(w).max() <= 0.1, f"{name}: |w| max {np.abs(w).max():.4f} > 2 std"
    # std of N(0, 0.05^2) truncated at +-2 std: 0.05 * sqrt(1 - 4 phi(2) / (2 Phi(2) - 1))
    from math import erf, exp, pi, sqrt

    phi2, Phi2 = exp(-2.0) / sqrt(2 * pi), 0.5 * (1 + erf(2 / sqrt(2)))
    expect = 0.05 * sqrt(1 - 4 * phi2 / (2 * Phi2 - 1))  # 0.04398
    se = expect / np.sqrt(2 * w.size)
    assert abs(w.std() - expect) < 6 * se + 1e-4, f"{name}: std {w.std():.5f}, expected {expect:.5f}"
    frac = np.mean(np.abs(w) > 0.05)  # a normal shape, not a uniform one
    assert 0.2 < frac < 0.37, f"{name}: fraction beyond 1 std {frac:.3f} (expected 0.285)"
    for k, p in m.params.items():
        if k.startswith("bias"):
            np.testing.assert_array_equal(p, 0.0, err_msg=f"{k} must be zero")


def test_truncated_normal_redraws_rather_than_clips():
    w = init.truncated_normal((200_000,), np.random.default_rng(0), std=0.05)
    assert np.abs(w).max() <= 0.1
    assert np.mean(np.abs(w) > 0.0999) < 1e-3, "mass piled at the cut: values were clipped"


@pytest.mark.parametrize("name", list(layers()))
def test_pytorch_scheme_bounds(name):
    m = init.apply(layers()[name], "pytorch", seed=2)
    k = 1 / np.sqrt(H)
    for n, p in m.params.items():
        assert np.abs(p).max() <= k, f"{n}: outside U(-1/sqrt(H), 1/sqrt(H))"
    w = np.concatenate([p.ravel() for p in m.params.values()])  # pooled: bias blocks are small
    assert np.abs(w).max() > 0.95 * k, f"{name}: far inside the bound"
    se = k / np.sqrt(3) / np.sqrt(w.size)
    assert abs(w.mean()) < 5 * se, f"{name}: mean {w.mean():.4f} not centred"
    assert abs(w.std() - k / np.sqrt(3)) < 0.1 * k, (
        f"{name}: std {w.std():.4f}, U(-k, k) has {k / np.sqrt(3):.4f}"
    )


def test_linear_schemes():
    lin = rnn.Linear(13, 5, dtype=np.float64)
    init.apply(lin, "pytorch", seed=0)
    assert np.abs(lin.params["weight"]).max() <= 1 / np.sqrt(13)
    assert np.abs(lin.params["bias"]).max() <= 1 / np.sqrt(13)
    init.apply(lin, "orthogonal", seed=0)
    assert np.abs(lin.params["weight"]).max() <= np.sqrt(6 / 18)
    assert np.abs(lin.params["weight"]).max() > 1 / np.sqrt(13), "Xavier bound not used"
    np.testing.assert_array_equal(lin.params["bias"], 0.0)
    init.apply(lin, "book", seed=0)
    assert np.abs(lin.params["weight"]).max() <= 0.1
    np.testing.assert_array_equal(lin.params["bias"], 0.0)


@pytest.mark.parametrize("scheme", init.SCHEMES)
def test_seed_determinism_and_in_place(scheme):
    a, b, c = (rnn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=s) for s in (0, 1, 2))
    arrays = {k: v for k, v in a.params.items()}  # optimisers hold these references
    for m, s in ((a, 7), (b, 7), (c, 8)):
        init.apply(m, scheme, seed=s)
    for k in a.params:
        assert a.params[k] is arrays[k], f"{k}: replaced instead of written in place"
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=f"{k}: same seed, different values")
    differ = [k for k in a.params if k.startswith("weight") and not np.array_equal(a.params[k], c.params[k])]
    assert differ, "different seeds gave identical weights"
    g = np.random.default_rng(7)  # a Generator is accepted as the seed
    init.apply(c, scheme, seed=g)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], c.params[k], err_msg=f"{k}: Generator(7) != seed 7")


def test_float32_layer_keeps_dtype():
    m = init.apply(rnn.GRU(I, H, dtype=np.float32), "orthogonal", seed=0)
    for k, p in m.params.items():
        assert p.dtype == np.float32, k
    W = m.params["weight_hh_l0"][:H].astype(np.float64)
    assert np.abs(W @ W.T - np.eye(H)).max() < 1e-5


def test_apply_walks_children_and_skips_embedding():
    class Model(rnn.Module):
        def __init__(self):
            super().__init__()
            self.emb = rnn.Embedding(20, I, dtype=np.float64, seed=0)
            self.lstm = rnn.LSTM(I, H, dtype=np.float64, seed=0)
            self.head = rnn.Linear(H, 3, dtype=np.float64, seed=0)

    m = Model()
    emb = m.emb.params["weight"].copy()
    init.apply(m, "book", seed=0)
    np.testing.assert_array_equal(m.emb.params["weight"], emb, err_msg="Embedding must be left alone")
    assert np.abs(m.lstm.params["weight_hh_l0"]).max() <= 0.1
    np.testing.assert_array_equal(m.head.params["bias"], 0.0)


def test_unknown_scheme_lists_valid_ones():
    with pytest.raises(ValueError, match="pytorch, orthogonal, book"):
        init.apply(rnn.LSTM(I, H), "xavier")
    with pytest.raises(TypeError):
        init.apply(rnn.Embedding(5, 3), "book")
