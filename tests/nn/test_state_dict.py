"""Module plumbing: state dicts to and from torch, errors that name the culprit,
zero_grad, train/eval propagation, and bias=False layers against torch."""

import numpy as np
import pytest

import rnnlab.nn as rnn

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

KINDS = ["RNN", "LSTM", "GRU"]


def pair(kind, I=5, H=7, bias=True, seed=0):
    torch.manual_seed(seed)
    kw = dict(num_layers=2, bidirectional=True, bias=bias)
    tm = getattr(torch.nn, kind)(I, H, **kw).double()
    ours = getattr(rnn, kind)(I, H, dtype=np.float64, **kw)
    return tm, ours


@pytest.mark.parametrize("kind", KINDS)
def test_load_torch_state_dict_and_round_trip(kind):
    tm, ours = pair(kind)
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    arrays = dict(ours.params)
    ours.load_state_dict(sd)
    assert list(ours.state_dict()) == list(sd), "names or order differ from torch's"
    for k, v in sd.items():
        np.testing.assert_array_equal(ours.params[k], v, err_msg=k)
        assert ours.params[k] is arrays[k], f"{k}: load replaced the array (optimisers hold it)"
        assert not np.shares_memory(ours.params[k], v), f"{k}: load aliases the caller's array"
    # and back: torch accepts ours, strictly
    tm2 = getattr(torch.nn, kind)(5, 7, num_layers=2, bidirectional=True).double()
    tm2.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()}, strict=True)
    x = np.random.default_rng(0).standard_normal((4, 3, 5))
    out = ours(x)[0]
    assert_close("out after load", out, tm2(torch.tensor(x))[0].detach().numpy(), 1e-12)


def test_float32_module_loads_float64_weights():
    tm, _ = pair("LSTM")
    ours = rnn.LSTM(5, 7, num_layers=2, bidirectional=True)  # float32
    ours.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    assert all(p.dtype == np.float32 for p in ours.params.values())


def test_state_dict_returns_copies():
    m = rnn.GRU(3, 4, num_layers=2, dtype=np.float64, seed=0)
    before = {k: v.copy() for k, v in m.params.items()}
    sd = m.state_dict()
    for v in sd.values():
        v += 1.0
    for k in m.params:
        np.testing.assert_array_equal(m.params[k], before[k], err_msg=f"{k} changed via state_dict")


def test_wrong_name_raises_key_error_naming_it():
    m = rnn.LSTM(3, 4, num_layers=2)
    sd = m.state_dict()
    sd["weight_ih_l2"] = sd.pop("weight_ih_l1")
    with pytest.raises(KeyError) as e:
        m.load_state_dict(sd)
    assert "weight_ih_l2" in str(e.value) and "weight_ih_l1" in str(e.value)
    sd = m.state_dict()
    del sd["bias_hh_l0"]
    with pytest.raises(KeyError, match="bias_hh_l0"):
        m.load_state_dict(sd)


def test_wrong_shape_raises_value_error_naming_it():
    m = rnn.GRU(3, 4, bidirectional=True)
    sd = m.state_dict()
    sd["weight_hh_l0_reverse"] = sd["weight_hh_l0_reverse"].T.copy()  # (4, 12) not (12, 4)
    with pytest.raises(ValueError, match=r"weight_hh_l0_reverse.*\(4, 12\).*\(12, 4\)"):
        m.load_state_dict(sd)


def test_zero_grad_keeps_arrays():
    m = rnn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    grads = dict(m.grads)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    out, _ = m(x)
    m.backward(np.ones_like(out))
    assert all(np.abs(g).sum() > 0 for g in m.grads.values()), "a gradient stayed zero"
    m.zero_grad()
    for k, g in m.grads.items():
        assert g is grads[k], f"{k}: zero_grad replaced the array"
        np.testing.assert_array_equal(g, 0.0, err_msg=k)


class Model(rnn.Module):
    def __init__(self):
        super().__init__()
        self.emb = rnn.Embedding(10, 3, seed=0)
        self.lstm = rnn.LSTM(3, 4, num_layers=2, dropout=0.5, seed=0)
        self.drop = rnn.Dropout(0.5, seed=0)
        self.head = rnn.Linear(4, 2, seed=0)


def test_train_eval_propagate_to_children():
    m = Model()
    kids = [m.emb, m.lstm, m.drop, m.head]
    assert m.training and all(k.training for k in kids)
    assert m.eval() is m
    assert not m.training and not any(k.training for k in kids)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(m.lstm(x)[0], m.lstm(x)[0])  # no dropout in eval
    m.train()
    assert m.training and all(k.training for k in kids)
    assert not np.array_equal(m.lstm(x)[0], m.lstm(x)[0]), "inter-layer dropout inactive in train()"


def test_container_names_and_zero_grad():
    m = Model()
    names = [n for n, _, _ in m.named_parameters()]
    assert "emb.weight" in names and "lstm.weight_hh_l1" in names and "head.bias" in names
    assert names == list(m.state_dict())
    for _, _, g in m.named_parameters():
        g += 1.0
    m.zero_grad()
    assert all(not g.any() for _, _, g in m.named_parameters())
    sd = m.state_dict()
    sd["head.weight"] = np.zeros((4, 2))
    with pytest.raises(ValueError, match="head.weight"):
        m.load_state_dict(sd)


@pytest.mark.parametrize("kind", KINDS)
def test_bias_false_matches_torch(kind):
    tm, ours = pair(kind, I=6, H=5, bias=False, seed=3)
    assert not any(k.startswith("bias") for k in ours.params)
    ours.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(3)
    T, N = 4, 3
    x = rng.standard_normal((T, N, 6))
    h0, c0 = 0.5 * rng.standard_normal((2, 4, N, 5))
    dout, dh_n, dc_n = rng.standard_normal((T, N, 10)), *rng.standard_normal((2, 4, N, 5))
    lengths = np.array([4, 2, 3])
    lstm = kind == "LSTM"
    out, st = ours(x, (h0, c0) if lstm else h0, lengths=lengths)
    dx, dst = ours.backward(dout, (dh_n, dc_n) if lstm else dh_n)
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), enforce_sorted=False)
    tout, tst = tm(packed, (th0, tc0) if lstm else th0)
    tout = torch.nn.utils.rnn.pad_packed_sequence(tout, total_length=T)[0]
    loss = (tout * torch.tensor(dout)).sum()
    if lstm:
        loss = loss + (tst[0] * torch.tensor(dh_n)).sum() + (tst[1] * torch.tensor(dc_n)).sum()
        assert_close("c_n", st[1], tst[1].detach().numpy(), 1e-9)
        st, tst = st[0], tst[0]
    else:
        loss = loss + (tst * torch.tensor(dh_n)).sum()
    loss.backward()
    assert_close("out", out, tout.detach().numpy(), 1e-9)
    assert_close("h_n", st, tst.detach().numpy(), 1e-9)
    assert_close("dx", dx, tx.grad.numpy(), 1e-9)
    assert_close("dh0", dst[0] if lstm else dst, th0.grad.numpy(), 1e-9)
    if lstm:
        assert_close("dc0", dst[1], tc0.grad.numpy(), 1e-9)
    for n, p in tm.named_parameters():
        assert_close(f"grad {n}", ours.grads[n], p.grad.numpy(), 1e-9)
