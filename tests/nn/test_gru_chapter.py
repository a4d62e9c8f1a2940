"""The chapter's GRU (``reset_after=False``) against a few lines of torch autograd.

torch.nn.GRU only implements reset-after, so the chapter's form (SEED.md section 3)::

    r = sigma(U_r x + b_ir + W_r h + b_hr)       z = sigma(U_z x + b_iz + W_z h + b_hz)
    c = tanh(U_c x + b_in + W_c (r * h) + b_hn)  h' = z * h + (1 - z) * c

is written here as an explicit torch loop over layers, directions and time, with its own
masking (state carried, output zero past a sequence's length) and its own per-sequence
reversal for the reverse direction. The same loop with ``reset_after=True`` is first checked
against ``torch.nn.GRU`` + ``pack_padded_sequence``, which proves the loop's scaffolding.
"""

import itertools

import numpy as np
import pytest

import rnnlab.nn as rnn

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

TOL = {np.float64: 1e-9, np.float32: 1e-4}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def reverse_within(x, lengths):
    """x (T, N, ...): each sequence's first lengths[n] steps reversed, padding left in place."""
    T, N = x.shape[:2]
    cols = []
    for n in range(N):
        Ln = T if lengths is None else int(lengths[n])
        cols.append(torch.cat([torch.flip(x[:Ln, n], [0]), x[Ln:, n]], 0))
    return torch.stack(cols, 1)


def gru_step(x_t, h, U, W, b_ih, b_hh, reset_after):
    H = h.shape[1]
    gi = x_t @ U.T + b_ih  # (N, 3H)  U x + b_ih
    r = torch.sigmoid(gi[:, :H] + h @ W[:H].T + b_hh[:H])
    z = torch.sigmoid(gi[:, H : 2 * H] + h @ W[H : 2 * H].T + b_hh[H : 2 * H])
    if reset_after:  # PyTorch: r * (W_n h + b_hn)
        c = torch.tanh(gi[:, 2 * H :] + r * (h @ W[2 * H :].T + b_hh[2 * H :]))
    else:  # chapter: W_c (r * h) + b_hn
        c = torch.tanh(gi[:, 2 * H :] + (r * h) @ W[2 * H :].T + b_hh[2 * H :])
    return z * h + (1 - z) * c


def torch_gru(x, h0, P, L, D, lengths, reset_after):
    """x (T, N, I) time-major, h0 (L*D, N, H), P: name -> tensor. Returns out, h_n."""
    T, N, _ = x.shape
    H = h0.shape[2]
    if lengths is None:
        mask = torch.ones(T, N, 1, dtype=torch.bool)
    else:
        mask = (torch.arange(T)[:, None] < torch.as_tensor(lengths)[None, :])[:, :, None]
    zero = torch.zeros(3 * H, dtype=x.dtype)
    layer_in, finals = x, []
    for layer in range(L):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            U, W = P["weight_ih" + sfx], P["weight_hh" + sfx]
            b_ih, b_hh = P.get("bias_ih" + sfx, zero), P.get("bias_hh" + sfx, zero)
            xin = reverse_within(layer_in, lengths) if d else layer_in
            h, ys = h0[layer * D + d], []
            for t in range(T):
                h_new = gru_step(xin[t], h, U, W, b_ih, b_hh, reset_after)
                h = torch.where(mask[t], h_new, h)  # past the length: carry the state
                ys.append(h * mask[t])  # and output zero
            y = torch.stack(ys)
            outs.append(reverse_within(y, lengths) if d else y)
            finals.append(h)
        layer_in = torch.cat(outs, 2)
    return layer_in, torch.stack(finals)


def run_case(
    T, N, I, H, L, bidir, batch_first, lengths, bias, dtype, seed, reset_after=False, against_torch_nn=False
):
    """Ours vs the torch loop (or, to validate the loop, the loop vs torch.nn.GRU).

    Returns ``{tensor name: relative error}``; asserts each is within tolerance.
    """
    rng = np.random.default_rng(seed)
    D, tol, tdt = 2 if bidir else 1, TOL[dtype], TORCH_DTYPE[dtype]
    ours = rnn.GRU(
        I,
        H,
        num_layers=L,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidir,
        dtype=dtype,
        seed=seed,
        reset_after=reset_after,
    )
    if bias:  # nonzero and different per gate (PyTorch's init is already nonzero; make sure)
        for k, p in ours.params.items():
            if k.startswith("bias"):
                p[...] = rng.uniform(-0.5, 0.5, p.shape)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((L * D, N, H))).astype(dtype)
    dout = rng.standard_normal((N, T, D * H) if batch_first else (T, N, D * H)).astype(dtype)
    dh_n = rng.standard_normal((L * D, N, H)).astype(dtype)

    P = {k: torch.tensor(v, requires_grad=True) for k, v in ours.params.items()}
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    tx_tm = tx.transpose(0, 1) if batch_first else tx
    ref_out, ref_hn = torch_gru(tx_tm, th0, P, L, D, lengths, reset_after)
    if batch_first:
        ref_out = ref_out.transpose(0, 1)
    ((ref_out * torch.tensor(dout)).sum() + (ref_hn * torch.tensor(dh_n)).sum()).backward()
    ref = {
        "out": ref_out,
        "h_n": ref_hn,
        "dx": tx.grad,
        "dh0": th0.grad,
        **{f"grad {k}": P[k].grad for k in P},
    }

    if against_torch_nn:  # the same tensors from torch.nn.GRU: validates the reference loop
        tm = torch.nn.GRU(I, H, num_layers=L, bias=bias, batch_first=batch_first, bidirectional=bidir).to(tdt)
        tm.load_state_dict({k: torch.tensor(v) for k, v in ours.params.items()})
        tx2, th02 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
        inp = (
            tx2
            if lengths is None
            else torch.nn.utils.rnn.pack_padded_sequence(
                tx2, torch.as_tensor(lengths), batch_first=batch_first, enforce_sorted=False
            )
        )
        out2, hn2 = tm(inp, th02)
        if lengths is not None:
            out2, _ = torch.nn.utils.rnn.pad_packed_sequence(out2, batch_first=batch_first, total_length=T)
        ((out2 * torch.tensor(dout)).sum() + (hn2 * torch.tensor(dh_n)).sum()).backward()
        got = {
            "out": out2,
            "h_n": hn2,
            "dx": tx2.grad,
            "dh0": th02.grad,
            **{f"grad {k}": p.grad for k, p in tm.named_parameters()},
        }
    else:
        out, h_n = ours(x, h0, lengths=lengths)
        dx, dh0 = ours.backward(dout, dh_n)
        got = {
            "out": out,
            "h_n": h_n,
            "dx": dx,
            "dh0": dh0,
            **{f"grad {k}": ours.grads[k] for k in ours.params},
        }
    assert set(got) == set(ref)
    errs = {}
    for name, r in ref.items():
        g = got[name]
        g = g.detach().numpy() if torch.is_tensor(g) else g
        errs[name] = assert_close(name, g, r.detach().numpy(), tol)
    return errs


def configs(n_cases, seed):
    """Randomised shapes (all sizes different) over layers, directions, batch_first, lengths."""
    rng = np.random.default_rng(seed)
    combos = list(itertools.product((1, 2, 3), (False, True), (False, True), (False, True)))
    for k in rng.permutation(len(combos))[:n_cases]:
        L, bidir, bf, var = combos[k]
        T, N, I, H = (int(v) for v in rng.choice(np.arange(2, 10), 4, replace=False))
        lengths = None
        if var:
            lengths = rng.integers(1, T + 1, N)
            lengths[rng.integers(N)] = T
        yield pytest.param(
            T,
            N,
            I,
            H,
            L,
            bidir,
            bf,
            lengths,
            id=f"L{L}-{'bi' if bidir else 'uni'}-{'bf' if bf else 'tf'}-{'var' if var else 'full'}",
        )


@pytest.mark.parametrize("T,N,I,H,L,bidir,bf,lengths", list(configs(6, 1)))
def test_reference_loop_matches_torch_nn_gru(T, N, I, H, L, bidir, bf, lengths):
    """The hand-written torch loop (reset_after=True) reproduces torch.nn.GRU exactly."""
    run_case(T, N, I, H, L, bidir, bf, lengths, True, np.float64, 5, reset_after=True, against_torch_nn=True)


@pytest.mark.parametrize("T,N,I,H,L,bidir,bf,lengths", list(configs(24, 2)))
def test_chapter_gru_float64(T, N, I, H, L, bidir, bf, lengths):
    run_case(T, N, I, H, L, bidir, bf, lengths, True, np.float64, 7)


@pytest.mark.parametrize("bidir", [False, True])
def test_chapter_gru_float32(bidir):
    run_case(7, 4, 6, 9, 2, bidir, True, np.array([5, 7, 2, 6]), True, np.float32, 3)


def test_chapter_gru_no_bias():
    run_case(6, 3, 5, 4, 2, True, False, np.array([6, 2, 4]), False, np.float64, 9)


def test_chapter_differs_from_reset_after():
    """The two forms are really different functions (else the tests above prove nothing new)."""
    a = rnn.GRU(3, 4, dtype=np.float64, seed=0, reset_after=False)
    b = rnn.GRU(3, 4, dtype=np.float64, seed=0, reset_after=True)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    assert np.abs(a(x)[0] - b(x)[0]).max() > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_chapter_gru_cell(dtype, seed):
    rng = np.random.default_rng(seed)
    N, I, H = (int(v) for v in rng.choice(np.arange(2, 12), 3, replace=False))
    cell = rnn.GRUCell(I, H, dtype=dtype, seed=seed, reset_after=False)
    x = rng.standard_normal((N, I)).astype(dtype)
    h = (0.7 * rng.standard_normal((N, H))).astype(dtype)
    dh = rng.standard_normal((N, H)).astype(dtype)
    h1 = cell(x, h)
    dx, dh_prev = cell.backward(dh)

    P = {k: torch.tensor(v, requires_grad=True) for k, v in cell.params.items()}
    tx, th = torch.tensor(x, requires_grad=True), torch.tensor(h, requires_grad=True)
    ref = gru_step(tx, th, P["weight_ih"], P["weight_hh"], P["bias_ih"], P["bias_hh"], False)
    (ref * torch.tensor(dh)).sum().backward()
    tol = TOL[dtype]
    assert_close("h", h1, ref.detach().numpy(), tol)
    assert_close("dx", dx, tx.grad.numpy(), tol)
    assert_close("dh_prev", dh_prev, th.grad.numpy(), tol)
    for k in P:
        assert_close(f"grad {k}", cell.grads[k], P[k].grad.numpy(), tol)
