"""rnnlab.gradcheck: central differences agree with every hand-derived backward, and a
wrong backward is caught (so these checks can fail).

Tiny float64 shapes whose sizes all differ (N=2, T=3, I=4, H=5), nonzero initial states,
random upstream gradients on outputs and final states.
"""

import numpy as np
import pytest

import rnnlab
import rnnlab.nn as rnn
from rnnlab.gradcheck import gradcheck, gradcheck_module

N, T, I, H = 2, 3, 4, 5
TOL = 1e-6  # a correct backward gives ~1e-9 here; a wrong one > 1e-3
KINDS = {
    "RNN_TANH": lambda **kw: rnn.RNN(I, H, nonlinearity="tanh", **kw),
    "RNN_RELU": lambda **kw: rnn.RNN(I, H, nonlinearity="relu", **kw),
    "LSTM": lambda **kw: rnn.LSTM(I, H, **kw),
    "GRU": lambda **kw: rnn.GRU(I, H, reset_after=True, **kw),
    "GRU_chapter": lambda **kw: rnn.GRU(I, H, reset_after=False, **kw),
}
MODES = {  # (num_layers, bidirectional, batch_first, lengths)
    "L1-uni": (1, False, False, None),
    "L2-bi-lengths": (2, True, False, np.array([3, 2])),
    "L2-uni-bf-lengths": (2, False, True, np.array([2, 3])),
}


def assert_report(report, tol=TOL, expect_keys=()):
    for k in expect_keys:
        assert k in report, f"gradcheck did not check {k}"
    bad = {k: v for k, v in report.items() if not v <= tol}
    assert not bad, "gradients disagree with central differences: " + ", ".join(
        f"{k} rel err {v:.2e}" for k, v in sorted(bad.items(), key=lambda kv: -kv[1])
    )


def layer_case(kind, mode, seed=0):
    L, bidir, bf, lengths = MODES[mode]
    rng = np.random.default_rng(seed)
    m = KINDS[kind](num_layers=L, bidirectional=bidir, batch_first=bf, dtype=np.float64, seed=seed)
    D = 2 if bidir else 1
    x = rng.standard_normal((N, T, I) if bf else (T, N, I))
    h0 = 0.5 * rng.standard_normal((L * D, N, H))
    state = (h0, 0.5 * rng.standard_normal((L * D, N, H))) if kind == "LSTM" else h0
    return m, x, state, lengths


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_layers(kind, mode):
    m, x, state, lengths = layer_case(kind, mode)
    report = gradcheck_module(m, x, state=state, lengths=lengths)
    keys = ["input:x", "input:h0"] + [f"param:{k}" for k in m.params]
    assert_report(report, expect_keys=keys + (["input:c0"] if kind == "LSTM" else []))


def test_layer_without_state_or_bias():
    m = rnn.LSTM(I, H, num_layers=2, bias=False, dtype=np.float64, seed=1)
    x = np.random.default_rng(1).standard_normal((T, N, I))
    assert_report(gradcheck_module(m, x), expect_keys=["input:x", "param:weight_hh_l1"])


@pytest.mark.parametrize("kind", ["RNN_TANH", "RNN_RELU", "LSTM", "GRU", "GRU_chapter"])
def test_cells(kind):
    rng = np.random.default_rng(2)
    if kind.startswith("RNN"):
        cell = rnn.RNNCell(I, H, nonlinearity=kind[4:].lower(), dtype=np.float64, seed=2)
    elif kind == "LSTM":
        cell = rnn.LSTMCell(I, H, dtype=np.float64, seed=2)
    else:
        cell = rnn.GRUCell(I, H, dtype=np.float64, seed=2, reset_after=kind == "GRU")
    x = rng.standard_normal((N, I))
    state = tuple(rng.standard_normal((2, N, H))) if kind == "LSTM" else rng.standard_normal((N, H))
    keys = ["input:x", "input:h0", "param:weight_hh"] + (["input:c0"] if kind == "LSTM" else [])
    assert_report(gradcheck_module(cell, x, state=state), expect_keys=keys)


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    lin = rnn.Linear(I, 3, bias=bias, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((T, N, I))  # 3-D input
    keys = ["input:x", "param:weight"] + (["param:bias"] if bias else [])
    assert_report(gradcheck_module(lin, x), expect_keys=keys)


def test_embedding():
    emb = rnn.Embedding(7, 3, dtype=np.float64, seed=0)
    idx = np.array([[1, 0, 3], [3, 6, 0]])  # repeated rows accumulate
    report = gradcheck_module(emb, idx)
    assert set(report) == {"param:weight"}  # integer indices are not differentiable
    assert_report(report)


def test_embedding_with_padding():
    """The padding row gets no gradient by definition (PyTorch's padding_idx), so central
    differences are taken over the other rows only; the padding row's gradient must be 0."""
    emb = rnn.Embedding(7, 3, padding_idx=0, dtype=np.float64, seed=0)
    idx = np.array([[1, 0, 3], [3, 6, 0]])
    R = np.random.default_rng(0).standard_normal((2, 3, 3))
    rows = emb.params["weight"][1:].copy()  # the trainable rows

    def forward():
        emb.params["weight"][1:] = rows
        return float(np.sum(emb(idx) * R))

    report = gradcheck(
        forward,
        lambda: emb.backward(R),
        {"rows": rows},
        {},
        {"rows": emb.grads["weight"][1:]},
        zero_grad=emb.zero_grad,
    )
    assert_report(report, expect_keys=["param:rows"])
    np.testing.assert_array_equal(emb.grads["weight"][0], 0.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss(reduction):
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    f = rnn.MSELoss(reduction=reduction)
    report = gradcheck(lambda: f(pred, target), lambda: {"pred": f.backward()}, {}, {"pred": pred})
    assert_report(report, expect_keys=["input:pred"])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_loss(reduction):
    rng = np.random.default_rng(0)
    logits = 3 * rng.standard_normal((3, 4, 6))  # (T, N, C)
    target = rng.integers(0, 6, (3, 4))
    target[0, 1] = target[2, 3] = -1  # ignored positions
    f = rnn.CrossEntropyLoss(ignore_index=-1, reduction=reduction)
    report = gradcheck(lambda: f(logits, target), lambda: {"logits": f.backward()}, {}, {"logits": logits})
    assert_report(report, expect_keys=["input:logits"])


def test_top_level_name_is_the_checker():
    assert rnnlab.gradcheck is gradcheck


# ----------------------------------------------------------------------------- it can fail


def test_detects_wrong_parameter_gradient(monkeypatch):
    """Linear.backward that scales dV by 1.01: only param:weight is flagged, and clearly."""
    orig = rnn.Linear.backward

    def bad_backward(self, dy):
        dx = orig(self, dy)
        self.grads["weight"] *= 1.01
        return dx

    monkeypatch.setattr(rnn.Linear, "backward", bad_backward)
    lin = rnn.Linear(I, 3, dtype=np.float64, seed=0)
    report = gradcheck_module(lin, np.random.default_rng(0).standard_normal((N, I)))
    assert report["param:weight"] > 5e-3, report
    assert report["param:bias"] < TOL and report["input:x"] < TOL, report
    with pytest.raises(AssertionError, match="param:weight"):
        assert_report(report)


def test_detects_wrong_recurrent_gradient(monkeypatch):
    """An LSTM step backward that forgets the forget gate on the cell path (dc_prev = dc)."""
    from rnnlab.nn import lstm as lstm_mod

    orig = lstm_mod.lstm_step_backward

    def bad_step_backward(dh, dc, cache, W, **kw):
        da, dh_prev, dc_prev = orig(dh, dc, cache, W, **kw)
        H_ = dh.shape[1]
        f = cache.gates[:, H_ : 2 * H_]
        return da, dh_prev, dc_prev / f  # the chapter's "dropped term" kind of slip

    monkeypatch.setattr(lstm_mod, "lstm_step_backward", bad_step_backward)
    m, x, state, lengths = layer_case("LSTM", "L1-uni")
    report = gradcheck_module(m, x, state=state)
    assert report["input:c0"] > 1e-2, report
    assert report["param:weight_hh_l0"] > 1e-3, report


def test_detects_gru_reset_path_dropped(monkeypatch):
    """A chapter-GRU backward whose reset-gate gradient is zeroed after the step."""
    from rnnlab.nn import gru as gru_mod

    orig = gru_mod.gru_step_backward

    def bad(dh, cache, W, reset_after=True, **kw):
        dxg, dhg, dh_prev = orig(dh, cache, W, reset_after, **kw)
        dxg[:, : dh.shape[1]] = 0.0  # da_r := 0
        return dxg, dhg, dh_prev

    monkeypatch.setattr(gru_mod, "gru_step_backward", bad)
    m, x, state, _ = layer_case("GRU_chapter", "L1-uni")
    report = gradcheck_module(m, x, state=state)
    assert report["param:bias_ih_l0"] > 1e-2, report
    with pytest.raises(AssertionError, match="bias_ih_l0"):
        assert_report(report)


def test_rejects_float32_and_missing_grads():
    m = rnn.GRU(I, H)  # float32 by default
    with pytest.raises(TypeError, match="float64"):
        gradcheck_module(m, np.zeros((T, N, I)))
    p = {"w": np.ones(3)}
    with pytest.raises(ValueError, match="grads"):
        gradcheck(lambda: 0.0, lambda: {}, p, {})
