"""Probabilistic losses: a network's outputs as the parameters of a predictive distribution,
trained by its negative log-likelihood, or as quantiles trained by the pinball loss; every
gradient by hand (``loss = f(outputs, y)`` then ``doutputs = f.backward()``).

Positive parameters come from raw outputs through ``softplus(x) = log(1 + e^x)``, whose
derivative is ``sigmoid(x)``::

    GaussianNLL     outputs (n, 2) = [mu, s]:      sigma = softplus(s) + eps
        L   = mean( log sigma + (y - mu)^2 / (2 sigma^2) ) + log(2 pi) / 2
        dmu = -(y - mu) / sigma^2 / n
        dsigma = (1 / sigma - (y - mu)^2 / sigma^3) / n,     ds = dsigma * sigmoid(s)

    StudentTNLL     outputs (n, 3) = [mu, s, t]:   sigma = softplus(s) + eps, nu = 2 + softplus(t)
        z = (y - mu) / sigma,   w = 1 + z^2 / nu
        L   = mean( -lgamma((nu+1)/2) + lgamma(nu/2) + log(nu pi)/2 + log sigma + (nu+1)/2 log w )
        dmu = -(nu+1) z / (nu sigma w) / n
        dsigma = (1 / sigma - (nu+1) z^2 / (nu sigma w)) / n
        dnu = ( -psi((nu+1)/2)/2 + psi(nu/2)/2 + 1/(2 nu) + log(w)/2 - (nu+1) z^2 / (2 nu^2 w) ) / n
        (nu > 2: the variance nu sigma^2 / (nu - 2) is finite)

    PinballLoss     outputs (n, Q) = quantiles at levels tau_1..tau_Q:
        L   = mean_{i,j} max(tau_j (y_i - q_ij), (tau_j - 1)(y_i - q_ij))
        dq_ij = (1[y_i < q_ij] - tau_j) / (n Q)

psi is the digamma function (recurrence up to x >= 10, then its asymptotic series; error below
1e-12). ``tests/nn/test_distributions.py`` checks every gradient against PyTorch autograd and
finite differences in float64.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-6
LOG_2PI = math.log(2.0 * math.pi)


def softplus(x):
    """log(1 + e^x), without overflow."""
    return np.logaddexp(0.0, x)


def sigmoid(x):
    """1 / (1 + e^-x), without overflow: d softplus(x) / dx."""
    return np.exp(-np.logaddexp(0.0, -x))


def digamma(x):
    """psi(x) = d log Gamma(x) / dx for x > 0 (NumPy arrays)."""
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    while np.any(x < 10.0):  # psi(x) = psi(x + 1) - 1 / x
        small = x < 10.0
        out[small] -= 1.0 / x[small]
        x = np.where(small, x + 1.0, x)
    inv2 = 1.0 / (x * x)
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return out + np.log(x) - 0.5 / x - series


_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def _check(outputs, y, width, name):
    outputs, y = np.asarray(outputs), np.asarray(y)
    if outputs.ndim != 2 or outputs.shape[1] != width or y.shape != outputs.shape[:1]:
        raise ValueError(
            f"{name}: outputs must be (n, {width}) and targets (n,), got {outputs.shape} and {y.shape}"
        )
    if len(y) == 0:
        raise ValueError(f"{name}: no targets")
    return outputs, y.astype(outputs.dtype)


class GaussianNLL:
    """Mean negative log-likelihood of y under N(mu, sigma^2), outputs ``[mu, s]``."""

    n_outputs = 2

    def __call__(self, outputs, y):
        outputs, y = _check(outputs, y, 2, "GaussianNLL")
        mu, s = outputs[:, 0].astype(np.float64), outputs[:, 1].astype(np.float64)
        sigma = softplus(s) + EPS
        r = y - mu
        self._cache = (outputs.dtype, s, sigma, r)
        return float(np.mean(np.log(sigma) + r * r / (2 * sigma * sigma)) + LOG_2PI / 2)

    def backward(self):
        dtype, s, sigma, r = self._cache
        n = len(r)
        dmu = -r / (sigma * sigma) / n
        dsigma = (1.0 / sigma - r * r / sigma**3) / n
        return np.stack([dmu, dsigma * sigmoid(s)], axis=1).astype(dtype)

    @staticmethod
    def params(outputs):
        """``{"loc", "scale"}`` of raw outputs."""
        outputs = np.asarray(outputs, np.float64)
        return {"loc": outputs[:, 0], "scale": softplus(outputs[:, 1]) + EPS}


class StudentTNLL:
    """Mean negative log-likelihood of y under a Student t (mu, sigma, nu > 2), outputs
    ``[mu, s, t]``: heavier tails than the Gaussian, for returns and other spiky series."""

    n_outputs = 3

    def __call__(self, outputs, y):
        outputs, y = _check(outputs, y, 3, "StudentTNLL")
        mu, s, t = (outputs[:, k].astype(np.float64) for k in range(3))
        sigma, nu = softplus(s) + EPS, 2.0 + softplus(t)
        z = (y - mu) / sigma
        w = 1.0 + z * z / nu
        nll = (
            -_lgamma((nu + 1) / 2)
            + _lgamma(nu / 2)
            + 0.5 * np.log(nu * math.pi)
            + np.log(sigma)
            + (nu + 1) / 2 * np.log(w)
        )
        self._cache = (outputs.dtype, s, t, sigma, nu, z, w)
        return float(np.mean(nll))

    def backward(self):
        dtype, s, t, sigma, nu, z, w = self._cache
        n = len(z)
        dmu = -(nu + 1) * z / (nu * sigma * w) / n
        dsigma = (1.0 / sigma - (nu + 1) * z * z / (nu * sigma * w)) / n
        dnu = (
            -digamma((nu + 1) / 2) / 2
            + digamma(nu / 2) / 2
            + 1 / (2 * nu)
            + np.log(w) / 2
            - (nu + 1) * z * z / (2 * nu * nu * w)
        ) / n
        return np.stack([dmu, dsigma * sigmoid(s), dnu * sigmoid(t)], axis=1).astype(dtype)

    @staticmethod
    def params(outputs):
        """``{"loc", "scale", "df"}`` of raw outputs."""
        outputs = np.asarray(outputs, np.float64)
        return {
            "loc": outputs[:, 0],
            "scale": softplus(outputs[:, 1]) + EPS,
            "df": 2.0 + softplus(outputs[:, 2]),
        }


class PinballLoss:
    """Mean pinball (quantile) loss of predicted quantiles ``(n, Q)`` at ``levels`` (Q,)."""

    def __init__(self, levels):
        self.levels = np.asarray(levels, np.float64)
        if self.levels.ndim != 1 or not len(self.levels) or np.any((self.levels <= 0) | (self.levels >= 1)):
            raise ValueError(f"quantile levels must lie in (0, 1), got {levels}")
        self.n_outputs = len(self.levels)

    def __call__(self, outputs, y):
        outputs, y = _check(outputs, y, self.n_outputs, "PinballLoss")
        q = outputs.astype(np.float64)
        r = y.astype(np.float64)[:, None] - q  # y - q
        tau = self.levels[None, :]
        self._cache = (outputs.dtype, r)
        return float(np.mean(np.maximum(tau * r, (tau - 1) * r)))

    def backward(self):
        dtype, r = self._cache
        return (((r < 0).astype(np.float64) - self.levels[None, :]) / r.size).astype(dtype)
