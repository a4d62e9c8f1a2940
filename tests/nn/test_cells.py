"""One-step cells against torch.nn.RNNCell / LSTMCell / GRUCell.

Nonzero biases (PyTorch's init) and states, a random upstream gradient on h (and c), sizes
all different; compared: the new state(s), dx, dh_prev (dc_prev) and every parameter gradient.
"""

import numpy as np
import pytest

import rnnlab.nn as rnn

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

TOL = {np.float64: 1e-9, np.float32: 1e-4}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
KINDS = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]


def make_cells(kind, I, H, bias, dtype, seed):
    torch.manual_seed(seed)
    if kind.startswith("RNN"):
        nl = "tanh" if kind == "RNN_TANH" else "relu"
        tc = torch.nn.RNNCell(I, H, bias=bias, nonlinearity=nl)
        ours = rnn.RNNCell(I, H, bias=bias, nonlinearity=nl, dtype=dtype)
    else:
        tc = getattr(torch.nn, kind + "Cell")(I, H, bias=bias)
        ours = getattr(rnn, kind + "Cell")(I, H, bias=bias, dtype=dtype)
    tc = tc.to(TORCH_DTYPE[dtype])
    ours.load_state_dict({k: v.detach().numpy() for k, v in tc.state_dict().items()})
    return tc, ours


def step_case(kind, N, I, H, bias, dtype, seed, calls=1):
    """``calls`` forward/backward pairs on the same cell: parameter grads must accumulate."""
    rng = np.random.default_rng(seed)
    tc, ours = make_cells(kind, I, H, bias, dtype, seed)
    lstm, tol = kind == "LSTM", TOL[dtype]
    for call in range(calls):
        x = rng.standard_normal((N, I)).astype(dtype)
        h = (0.7 * rng.standard_normal((N, H))).astype(dtype)
        c = (0.7 * rng.standard_normal((N, H))).astype(dtype)
        dh = rng.standard_normal((N, H)).astype(dtype)
        dc = rng.standard_normal((N, H)).astype(dtype)

        if lstm:
            h1, c1 = ours(x, (h, c))
            dx, (dh_prev, dc_prev) = ours.backward(dh, dc)
        else:
            h1 = ours(x, h)
            dx, dh_prev = ours.backward(dh)

        tx, th, tcc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
        if lstm:
            th1, tc1 = tc(tx, (th, tcc))
            ((th1 * torch.tensor(dh)).sum() + (tc1 * torch.tensor(dc)).sum()).backward()
        else:
            th1 = tc(tx, th)
            (th1 * torch.tensor(dh)).sum().backward()

        tag = f"call {call}: "
        assert_close(tag + "h", h1, th1.detach().numpy(), tol)
        assert_close(tag + "dx", dx, tx.grad.numpy(), tol)
        assert_close(tag + "dh_prev", dh_prev, th.grad.numpy(), tol)
        if lstm:
            assert_close(tag + "c", c1, tc1.detach().numpy(), tol)
            assert_close(tag + "dc_prev", dc_prev, tcc.grad.numpy(), tol)
        # torch's .grad accumulates across calls exactly as ours.grads must
        assert set(ours.grads) == {n for n, _ in tc.named_parameters()}
        for name, p in tc.named_parameters():
            assert_close(tag + f"grad {name}", ours.grads[name], p.grad.numpy(), tol)


def shapes(seed):
    rng = np.random.default_rng(seed)
    return [int(v) for v in rng.choice(np.arange(2, 14), 3, replace=False)]  # N, I, H all different


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_cell_float64(kind, seed):
    N, I, H = shapes(seed)
    step_case(kind, N, I, H, True, np.float64, seed)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_float32(kind):
    step_case(kind, 5, 8, 6, True, np.float32, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_no_bias(kind):
    N, I, H = shapes(21)
    step_case(kind, N, I, H, False, np.float64, 21)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_grads_accumulate_over_calls(kind):
    N, I, H = shapes(31)
    step_case(kind, N, I, H, True, np.float64, 31, calls=3)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_default_state_is_zero(kind):
    """``cell(x)`` without a state equals ``cell(x, 0)``, as in torch."""
    tc, ours = make_cells(kind, 4, 6, True, np.float64, 0)
    x = np.random.default_rng(0).standard_normal((3, 4))
    got = ours(x)
    ref = tc(torch.tensor(x))
    if kind == "LSTM":
        assert_close("h", got[0], ref[0].detach().numpy(), 1e-12)
        assert_close("c", got[1], ref[1].detach().numpy(), 1e-12)
    else:
        assert_close("h", got, ref.detach().numpy(), 1e-12)


def test_cell_shape_errors():
    cell = rnn.LSTMCell(4, 6)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        cell(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="state"):
        cell(np.zeros((3, 4)), (np.zeros((3, 5)), np.zeros((3, 6))))
    with pytest.raises(RuntimeError, match="before forward"):
        rnn.GRUCell(4, 6).backward(np.zeros((3, 6)))
