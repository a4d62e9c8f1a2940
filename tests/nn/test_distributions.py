"""The probabilistic losses (Gaussian and Student-t negative log-likelihoods, pinball): values
against torch.distributions, gradients against PyTorch autograd and central finite differences,
in float64 on random shapes and values."""

import numpy as np
import pytest

from rnnlab.nn.distributions import GaussianNLL, PinballLoss, StudentTNLL, digamma, sigmoid, softplus

torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_nll(kind, out, y, levels=None):
    """The same losses written with torch.distributions (autograd's gradients)."""
    if kind == "gaussian":
        dist = torch.distributions.Normal(out[:, 0], F.softplus(out[:, 1]) + 1e-6)
        return -dist.log_prob(y).mean()
    if kind == "studentt":
        df = 2.0 + F.softplus(out[:, 2])
        dist = torch.distributions.StudentT(df, out[:, 0], F.softplus(out[:, 1]) + 1e-6)
        return -dist.log_prob(y).mean()
    tau = torch.as_tensor(levels)[None, :]
    r = y[:, None] - out
    return torch.maximum(tau * r, (tau - 1) * r).mean()


def make(kind, rng, n):
    levels = np.sort(rng.uniform(0.02, 0.98, rng.integers(1, 6)))
    loss = {"gaussian": GaussianNLL(), "studentt": StudentTNLL(), "pinball": PinballLoss(levels)}[kind]
    width = loss.n_outputs
    out = rng.normal(0, 1.5, (n, width))
    y = rng.normal(0, 2.0, n) + (rng.standard_t(3, n) if kind == "studentt" else 0)
    return loss, out, y, levels


@pytest.mark.parametrize("kind", ["gaussian", "studentt", "pinball"])
@pytest.mark.parametrize("seed", range(4))
def test_value_and_gradient_match_autograd(kind, seed):
    rng = np.random.default_rng(seed)
    loss, out, y, levels = make(kind, rng, int(rng.integers(1, 40)))
    value = loss(out, y)
    grad = loss.backward()
    t_out = torch.tensor(out, requires_grad=True)
    t_loss = torch_nll(kind, t_out, torch.tensor(y), levels)
    t_loss.backward()
    np.testing.assert_allclose(value, t_loss.item(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, t_out.grad.numpy(), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("kind", ["gaussian", "studentt", "pinball"])
def test_gradient_matches_finite_differences(kind):
    rng = np.random.default_rng(11)
    loss, out, y, _ = make(kind, rng, 7)
    loss(out, y)
    grad = loss.backward()
    h = 1e-6
    num = np.zeros_like(out)
    for idx in np.ndindex(out.shape):
        up, down = out.copy(), out.copy()
        up[idx] += h
        down[idx] -= h
        num[idx] = (loss(up, y) - loss(down, y)) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)


def test_helpers_against_scipy_and_torch():
    special = pytest.importorskip("scipy.special")
    x = np.concatenate([np.linspace(0.01, 6, 50), np.linspace(6, 1e4, 50)])
    np.testing.assert_allclose(digamma(x), special.digamma(x), rtol=1e-12, atol=1e-12)
    z = np.linspace(-800, 800, 101)
    np.testing.assert_allclose(softplus(z), F.softplus(torch.tensor(z)).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(sigmoid(z), torch.sigmoid(torch.tensor(z)).numpy(), rtol=1e-12, atol=1e-300)
    assert np.isfinite(softplus(z)).all() and np.isfinite(sigmoid(z)).all()


def test_bad_shapes_and_levels():
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        GaussianNLL()(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="no targets"):
        StudentTNLL()(np.zeros((0, 3)), np.zeros(0))
    for bad in ([0.0, 0.5], [1.2], []):
        with pytest.raises(ValueError, match="levels"):
            PinballLoss(bad)
    params = StudentTNLL.params(np.array([[1.0, 0.0, 0.0]]))
    assert params["df"][0] > 2 and params["scale"][0] == pytest.approx(np.log(2) + 1e-6)
