"""Attention parity with a torch autograd re-implementation, every score function, with masks.

float64, nonzero random parameters, a random upstream gradient on the context *and* on the
weights, sizes that all differ (N=3, Tq=4, S=5, Hq=6, Hk=7 where the score allows it, A=8),
masks with different lengths per row. Every tensor is compared: context, weights, dquery,
dkeys and every parameter gradient.
"""

import numpy as np
import pytest

from rnnlab.nn.attention import SCORES, Attention

torch = pytest.importorskip("torch")
from conftest import assert_close  # noqa: E402

TOL = 1e-9


def torch_attention(score, p, q, k, mask):
    """The equations of rnnlab/nn/attention.py written with torch ops (autograd differentiates)."""
    Hk = k.shape[-1]
    if score == "none":
        s = torch.zeros(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype) + 0 * q.sum()
    elif score == "dot":
        s = q @ k.transpose(1, 2)
    elif score == "scaled_dot":
        s = q @ k.transpose(1, 2) / Hk**0.5
    elif score == "cosine":
        qn = torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-12)
        kn = torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-12)
        s = (q / qn) @ (k / kn).transpose(1, 2)
    elif score == "general":
        s = q @ (k @ p["weight"].T).transpose(1, 2)
    else:
        e = torch.tanh(
            (q @ p["weight_query"].T)[:, :, None, :] + (k @ p["weight_key"].T + p["bias"])[:, None, :, :]
        )
        s = e @ p["v"]
    if mask is not None:
        s = s.masked_fill(~torch.tensor(mask)[:, None, :], float("-inf"))
    a = torch.softmax(s, -1)
    return a @ k, a


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch(score, masked):
    rng = np.random.default_rng(7)
    N, Tq, S, Hq, A = 3, 4, 5, 6, 8
    Hk = Hq if score in ("dot", "scaled_dot", "cosine") else 7
    attn = Attention(score, Hq, Hk, attention_size=A, dtype=np.float64, seed=3)
    q = rng.standard_normal((N, Tq, Hq))
    k = rng.standard_normal((N, S, Hk))
    k[0, 4] = 0.0  # a zero key (padding-like) must not break cosine
    mask = None
    if masked:
        lengths = np.array([5, 2, 3])
        mask = np.arange(S)[None, :] < lengths[:, None]
    dc = rng.standard_normal((N, Tq, Hk))
    dw = rng.standard_normal((N, Tq, S))

    context, weights = attn(q, k, mask)
    dq, dk = attn.backward(dc, dweights=dw)

    tp = {n: torch.tensor(v, requires_grad=True) for n, v in attn.params.items()}
    tq, tk = torch.tensor(q, requires_grad=True), torch.tensor(k, requires_grad=True)
    tc, ta = torch_attention(score, tp, tq, tk, mask)
    ((tc * torch.tensor(dc)).sum() + (ta * torch.tensor(dw)).sum()).backward()

    assert_close("context", context, tc.detach().numpy(), TOL)
    assert_close("weights", weights, ta.detach().numpy(), TOL)
    assert_close("dquery", dq, tq.grad.numpy(), TOL)
    assert_close("dkeys", dk, tk.grad.numpy(), TOL)
    for n in attn.params:
        assert_close(f"d{n}", attn.grads[n], tp[n].grad.numpy(), TOL)
    if masked:
        assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)


def test_none_score_is_the_masked_mean():
    rng = np.random.default_rng(0)
    k = rng.standard_normal((2, 4, 3))
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    c, a = Attention("none", 3, 3, dtype=np.float64)(rng.standard_normal((2, 1, 3)), k, mask)
    np.testing.assert_allclose(c[0, 0], k[0, :2].mean(0))
    np.testing.assert_allclose(c[1, 0], k[1].mean(0))


def test_the_books_worked_example():
    """Three encoder states weighted 0.106, 0.106, 0.786 (SEED.md section 7): scores 0, 0, 2."""
    k = np.eye(3)[None] * np.array([0.0, 0.0, 2.0])[None, :, None] + np.array([0, 0, 0.0])
    q = np.array([[[0.0, 0.0, 1.0]]])
    _, a = Attention("dot", 3, 3, dtype=np.float64)(q, k)
    np.testing.assert_allclose(a[0, 0], [0.106, 0.106, 0.786], atol=1e-3)


def test_bad_shapes_and_options():
    with pytest.raises(ValueError, match="score must be one of"):
        Attention("bilinear", 4, 4)
    with pytest.raises(ValueError, match="query_size == key_size"):
        Attention("dot", 4, 5)
    attn = Attention("general", 4, 5)
    with pytest.raises(ValueError, match=r"keys must have shape \(N, S, 5\)"):
        attn(np.zeros((2, 1, 4)), np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="at least one True"):
        attn(np.zeros((2, 1, 4)), np.zeros((2, 3, 5)), np.array([[1, 0, 0], [0, 0, 0]], bool))
    with pytest.raises(RuntimeError, match="before forward"):
        Attention("general", 4, 5).backward(np.zeros((2, 1, 5)))


def test_float32_default_and_finite_at_extremes():
    attn = Attention("scaled_dot", 4, 4, seed=0)
    q = np.full((1, 2, 4), 1000.0, np.float32)
    c, a = attn(q, np.ones((1, 3, 4), np.float32) * np.array([[[1], [-1], [0]]], np.float32))
    assert c.dtype == np.float32 and np.isfinite(a).all()
