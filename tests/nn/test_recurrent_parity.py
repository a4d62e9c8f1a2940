"""Parity of RNN / LSTM / GRU layers with torch.nn over randomised configurations.

Nonzero biases (PyTorch's uniform init), nonzero initial states, a random upstream gradient
on the outputs *and* the final states, 1-3 layers, both directions, both batch_first settings
and padded variable lengths (compared with pack_padded_sequence). Every tensor is compared.
"""

import itertools

import numpy as np
import pytest

import rnnlab.nn as rnn

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

TOL = {np.float64: 1e-9, np.float32: 1e-4}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]


def make_pair(mode, I, H, L, bidir, batch_first, dtype, seed):
    kw = dict(num_layers=L, bidirectional=bidir, batch_first=batch_first)
    torch.manual_seed(seed)
    if mode.startswith("RNN"):
        nl = "tanh" if mode == "RNN_TANH" else "relu"
        tm = torch.nn.RNN(I, H, nonlinearity=nl, **kw)
        ours = rnn.RNN(I, H, nonlinearity=nl, dtype=dtype, **kw)
    else:
        tm = getattr(torch.nn, mode)(I, H, **kw)
        ours = getattr(rnn, mode)(I, H, dtype=dtype, **kw)
    tm = tm.to(TORCH_DTYPE[dtype])
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, ours


def run_case(mode, T, N, I, H, L, bidir, batch_first, lengths, dtype, seed):
    rng = np.random.default_rng(seed)
    tm, ours = make_pair(mode, I, H, L, bidir, batch_first, dtype, seed)
    D = 2 if bidir else 1
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((L * D, N, H))).astype(dtype)
    c0 = (0.5 * rng.standard_normal((L * D, N, H))).astype(dtype)
    dout = rng.standard_normal((N, T, D * H) if batch_first else (T, N, D * H)).astype(dtype)
    dh_n = rng.standard_normal((L * D, N, H)).astype(dtype)
    dc_n = rng.standard_normal((L * D, N, H)).astype(dtype)
    lstm = mode == "LSTM"

    # ours
    out, st = ours(x, (h0, c0) if lstm else h0, lengths=lengths)
    dx, dst = ours.backward(dout, (dh_n, dc_n) if lstm else dh_n)

    # torch
    tx = torch.tensor(x, requires_grad=True)
    th0, tc0 = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    inp = tx
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            tx, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
    tout, tst = tm(inp, (th0, tc0) if lstm else th0)
    if lengths is not None:
        tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=batch_first, total_length=T)
    loss = (tout * torch.tensor(dout)).sum()
    if lstm:
        loss = loss + (tst[0] * torch.tensor(dh_n)).sum() + (tst[1] * torch.tensor(dc_n)).sum()
    else:
        loss = loss + (tst * torch.tensor(dh_n)).sum()
    loss.backward()

    tol = TOL[dtype]
    errs = {"out": assert_close("out", out, tout.detach().numpy(), tol)}
    if lstm:
        errs["h_n"] = assert_close("h_n", st[0], tst[0].detach().numpy(), tol)
        errs["c_n"] = assert_close("c_n", st[1], tst[1].detach().numpy(), tol)
        errs["dh0"] = assert_close("dh0", dst[0], th0.grad.numpy(), tol)
        errs["dc0"] = assert_close("dc0", dst[1], tc0.grad.numpy(), tol)
    else:
        errs["h_n"] = assert_close("h_n", st, tst.detach().numpy(), tol)
        errs["dh0"] = assert_close("dh0", dst, th0.grad.numpy(), tol)
    errs["dx"] = assert_close("dx", dx, tx.grad.numpy(), tol)
    for name, p in tm.named_parameters():
        errs[name] = assert_close(f"grad {name}", ours.grads[name], p.grad.numpy(), tol)
    return max(errs.values())


def configs():
    """Randomised shapes (all sizes different) over the product of structural options."""
    rng = np.random.default_rng(0)
    for k, (mode, L, bidir, bf, var) in enumerate(
        itertools.product(MODES, (1, 2, 3), (False, True), (False, True), (False, True))
    ):
        T, N, I, H = (int(v) for v in rng.choice(np.arange(2, 12), 4, replace=False))
        lengths = None
        if var:
            lengths = rng.integers(1, T + 1, N)
            lengths[rng.integers(N)] = T
        yield pytest.param(
            mode,
            T,
            N,
            I,
            H,
            L,
            bidir,
            bf,
            lengths,
            1000 + k,
            id=f"{mode}-L{L}-{'bi' if bidir else 'uni'}-{'bf' if bf else 'tf'}-{'var' if var else 'full'}",
        )


@pytest.mark.parametrize("mode,T,N,I,H,L,bidir,bf,lengths,seed", list(configs()))
def test_parity_float64(mode, T, N, I, H, L, bidir, bf, lengths, seed):
    run_case(mode, T, N, I, H, L, bidir, bf, lengths, np.float64, seed)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidir", [False, True])
def test_parity_float32(mode, bidir):
    lengths = np.array([5, 7, 2, 6])
    run_case(mode, 7, 4, 6, 9, 2, bidir, True, lengths, np.float32, 7)
