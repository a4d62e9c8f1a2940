"""Dropout between stacked layers (``dropout=p``): forward and backward use one mask.

White-box on purpose: the mask the layer drew is read from its cache (``_cache``), then
torch recomputes the same network as two one-layer torch.nn modules with that mask applied
to the first layer's output; every tensor is compared. In ``eval()`` there is no dropout.
"""

import numpy as np
import pytest

import rnnlab.nn as rnn

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

T, N, I, H = 6, 3, 4, 5
KINDS = ["RNN", "LSTM", "GRU"]


def one_layer(kind, m, layer, in_size, bidir):
    tm = getattr(torch.nn, kind)(in_size, H, bidirectional=bidir).double()
    sd = {k.replace(f"_l{layer}", "_l0"): torch.tensor(v) for k, v in m.params.items() if f"_l{layer}" in k}
    tm.load_state_dict(sd)
    return tm


def run_torch(tm, x, h0, c0, lengths, lstm):
    inp = torch.nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths), enforce_sorted=False)
    out, st = tm(inp, (h0, c0) if lstm else h0)
    out = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)[0]
    return out, st if lstm else (st, None)


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_inter_layer_dropout_matches_masked_torch(kind, bidir):
    rng = np.random.default_rng(0)
    D, lstm = 2 if bidir else 1, kind == "LSTM"
    m = getattr(rnn, kind)(I, H, num_layers=2, dropout=0.4, bidirectional=bidir, dtype=np.float64, seed=1)
    lengths = np.array([T, 4, 2])
    x = rng.standard_normal((T, N, I))
    h0, c0 = 0.5 * rng.standard_normal((2, 2 * D, N, H))
    R, Rh, Rc = rng.standard_normal((T, N, D * H)), *rng.standard_normal((2, 2 * D, N, H))
    out, st = m(x, (h0, c0) if lstm else h0, lengths=lengths)
    dx, dst = m.backward(R, (Rh, Rc) if lstm else Rh)
    mask = m._cache[0][1][0]  # (T, N, D*H) layer-1 input mask
    assert mask is not None and set(np.unique(mask)) == {0.0, 1 / 0.6}

    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    t0, t1 = one_layer(kind, m, 0, I, bidir), one_layer(kind, m, 1, D * H, bidir)
    y0, (hn0, cn0) = run_torch(t0, tx, th0[:D], tc0[:D], lengths, lstm)
    y1, (hn1, cn1) = run_torch(t1, y0 * torch.tensor(mask), th0[D:], tc0[D:], lengths, lstm)
    hn = torch.cat([hn0, hn1])
    loss = (y1 * torch.tensor(R)).sum() + (hn * torch.tensor(Rh)).sum()
    if lstm:
        cn = torch.cat([cn0, cn1])
        loss = loss + (cn * torch.tensor(Rc)).sum()
    loss.backward()

    tol = 1e-9
    assert_close("out", out, y1.detach().numpy(), tol)
    assert_close("h_n", st[0] if lstm else st, hn.detach().numpy(), tol)
    assert_close("dx", dx, tx.grad.numpy(), tol)
    assert_close("dh0", dst[0] if lstm else dst, th0.grad.numpy(), tol)
    if lstm:
        assert_close("c_n", st[1], cn.detach().numpy(), tol)
        assert_close("dc0", dst[1], tc0.grad.numpy(), tol)
    for layer, tm in ((0, t0), (1, t1)):
        for n, p in tm.named_parameters():
            ours = n.replace("_l0", f"_l{layer}")
            assert_close(f"grad {ours}", m.grads[ours], p.grad.numpy(), tol)


@pytest.mark.parametrize("kind", KINDS)
def test_eval_disables_inter_layer_dropout(kind):
    a = getattr(rnn, kind)(I, H, num_layers=3, dropout=0.5, dtype=np.float64, seed=2).eval()
    b = getattr(rnn, kind)(I, H, num_layers=3, dropout=0.0, dtype=np.float64, seed=2)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((T, N, I))
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    a.train()
    assert not np.array_equal(a(x)[0], b(x)[0]), "dropout had no effect in train()"
