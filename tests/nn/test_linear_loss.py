"""Linear, Embedding, Dropout, MSELoss and CrossEntropyLoss against torch, forward and gradient."""

import numpy as np
import pytest

import rnnlab.nn as rnn

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from conftest import assert_close  # noqa: E402

TOL = 1e-9  # float64 throughout


# ----------------------------------------------------------------------------- Linear


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5,), (4, 5), (3, 4, 5)], ids=["1d", "2d", "3d"])
def test_linear_vs_torch(bias, shape):
    rng = np.random.default_rng(len(shape) + 10 * bias)
    in_f, out_f = shape[-1], 7
    tl = torch.nn.Linear(in_f, out_f, bias=bias).double()
    lin = rnn.Linear(in_f, out_f, bias=bias, dtype=np.float64)
    lin.load_state_dict({k: v.detach().numpy() for k, v in tl.state_dict().items()})
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape[:-1] + (out_f,))
    y = lin(x)
    dx = lin.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = tl(tx)
    (ty * torch.tensor(dy)).sum().backward()
    assert_close("y", y, ty.detach().numpy(), TOL)
    assert_close("dx", dx, tx.grad.numpy(), TOL)
    assert set(lin.grads) == {n for n, _ in tl.named_parameters()}
    for n, p in tl.named_parameters():
        assert_close(f"grad {n}", lin.grads[n], p.grad.numpy(), TOL)


def test_linear_grads_accumulate_and_bad_shape():
    lin = rnn.Linear(3, 2, dtype=np.float64, seed=0)
    x, dy = np.ones((4, 3)), np.ones((4, 2))
    lin(x)
    lin.backward(dy)
    once = lin.grads["weight"].copy()
    lin(x)
    lin.backward(dy)
    np.testing.assert_allclose(lin.grads["weight"], 2 * once)
    with pytest.raises(ValueError, match="3"):
        lin(np.ones((4, 5)))


# ----------------------------------------------------------------------------- Embedding


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_vs_torch(padding_idx):
    rng = np.random.default_rng(0)
    V, d = 9, 4
    te = torch.nn.Embedding(V, d, padding_idx=padding_idx).double()
    emb = rnn.Embedding(V, d, padding_idx=padding_idx, dtype=np.float64, seed=0)
    if padding_idx is not None:  # both start with the padding row at zero
        np.testing.assert_array_equal(emb.params["weight"][padding_idx], 0.0)
    emb.load_state_dict({k: v.detach().numpy() for k, v in te.state_dict().items()})
    idx = rng.integers(0, V, (5, 3))
    idx[0, :] = 2
    idx[1, 0] = V - 1  # make sure both padding ids appear
    dy = rng.standard_normal((5, 3, d))
    y = emb(idx)
    assert emb.backward(dy) is None
    ty = te(torch.tensor(idx))
    (ty * torch.tensor(dy)).sum().backward()
    assert_close("y", y, ty.detach().numpy(), TOL)
    assert_close("grad weight", emb.grads["weight"], te.weight.grad.numpy(), TOL)
    if padding_idx is not None:
        np.testing.assert_array_equal(
            emb.grads["weight"][padding_idx], 0.0, err_msg="padding row received a gradient"
        )
    # rows used several times accumulate: row 2 is used at least 3 times
    assert np.abs(emb.grads["weight"]).sum() > 0


def test_embedding_rejects_bad_indices():
    emb = rnn.Embedding(5, 2)
    with pytest.raises(ValueError, match="integer"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        emb(np.array([0, 5]))
    with pytest.raises(ValueError, match="padding_idx"):
        rnn.Embedding(5, 2, padding_idx=5)


# ----------------------------------------------------------------------------- Dropout


def test_dropout_eval_is_identity():
    d = rnn.Dropout(0.5, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((4, 6))
    np.testing.assert_array_equal(d(x), x)
    dy = np.random.default_rng(1).standard_normal((4, 6))
    np.testing.assert_array_equal(d.backward(dy), dy)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_train_scaling_and_same_mask_in_backward(p):
    d = rnn.Dropout(p, seed=3)
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, (400, 50))  # nonzero, so y == 0 means dropped
    y = d(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
    frac = 1 - kept.mean()
    assert abs(frac - p) < 0.02, f"dropped fraction {frac:.3f}, p = {p}"
    assert abs(y.mean() / x.mean() - 1) < 0.03, "inverted dropout must preserve the mean"
    dy = rng.standard_normal(x.shape)
    dx = d.backward(dy)
    np.testing.assert_array_equal(dx[~kept], 0.0)
    np.testing.assert_allclose(dx[kept], dy[kept] / (1 - p), rtol=1e-15)
    # backward twice uses the same mask; a new forward draws a new one
    np.testing.assert_array_equal(d.backward(dy), dx)
    assert np.any((d(x) != 0) != kept)


def test_dropout_seeded():
    x = np.ones((20, 30))
    a, b, c = rnn.Dropout(0.5, seed=7), rnn.Dropout(0.5, seed=7), rnn.Dropout(0.5, seed=8)
    ya, yb, yc = a(x), b(x), c(x)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(ya, yc)
    np.testing.assert_array_equal(a(x), b(x))  # the streams stay in step
    assert ya.dtype == x.dtype and rnn.Dropout(0.5)(x.astype(np.float32)).dtype == np.float32


def test_dropout_zero_and_bad_p():
    x = np.arange(6.0)
    np.testing.assert_array_equal(rnn.Dropout(0.0)(x), x)
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError):
            rnn.Dropout(p)


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_vs_torch(reduction):
    rng = np.random.default_rng(1)
    pred, target = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    f = rnn.MSELoss(reduction=reduction)
    loss = f(pred, target)
    d = f.backward()
    tp = torch.tensor(pred, requires_grad=True)
    tl = F.mse_loss(tp, torch.tensor(target), reduction=reduction)
    tl.backward()
    assert_close("loss", loss, tl.item(), TOL)
    assert_close("dpred", d, tp.grad.numpy(), TOL)


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        rnn.MSELoss()(np.zeros((3, 1)), np.zeros(3))


CE_CASES = {  # logits shape, ignore_index, how many targets to set to it
    "2d": ((11, 6), -100, 0),
    "2d-ignore-default": ((11, 6), -100, 3),
    "2d-ignore-0": ((11, 6), 0, 2),
    "3d-ignore": ((4, 5, 7), 3, 4),
}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_vs_torch(case, reduction):
    shape, ignore, n_ignored = CE_CASES[case]
    rng = np.random.default_rng(list(CE_CASES).index(case))
    C = shape[-1]
    logits = 3 * rng.standard_normal(shape)
    target = rng.integers(0, C, shape[:-1])
    target[target == ignore] = (ignore + 1) % C  # exactly n_ignored ignored positions
    flat = target.reshape(-1)
    flat[rng.choice(flat.size, n_ignored, replace=False)] = ignore
    f = rnn.CrossEntropyLoss(ignore_index=ignore, reduction=reduction)
    loss = f(logits, target)
    d = f.backward()
    assert d.shape == logits.shape
    # torch's K-dimensional form puts classes on axis 1: (N, C, d1)
    tz = torch.tensor(logits, requires_grad=True)
    tz_c = tz.movedim(-1, 1) if len(shape) == 3 else tz
    tl = F.cross_entropy(tz_c, torch.tensor(target), ignore_index=ignore, reduction=reduction)
    tl.backward()
    assert_close("loss", loss, tl.item(), TOL)
    assert_close("dlogits", d, tz.grad.numpy(), TOL)
    if n_ignored:
        rows = target == ignore
        np.testing.assert_array_equal(d[rows], 0.0, err_msg="ignored positions got a gradient")


def test_cross_entropy_all_ignored_like_torch():
    f = rnn.CrossEntropyLoss()
    z = np.random.default_rng(0).standard_normal((3, 4))
    assert np.isnan(f(z, np.full(3, -100)))  # torch: nan loss, zero gradient
    np.testing.assert_array_equal(f.backward(), 0.0)


def test_cross_entropy_errors():
    f = rnn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="targets"):
        f(np.zeros((3, 4)), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        f(np.zeros((3, 4)), np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="reduction"):
        rnn.CrossEntropyLoss(reduction="none")
