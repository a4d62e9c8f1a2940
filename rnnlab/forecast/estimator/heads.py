"""What the forecasting network's outputs mean: a point, or a predictive distribution per step.

The network ends in one Linear layer ``V`` with ``K * P`` outputs: ``K`` steps ahead (1 for
the recursive strategy, the horizon for the direct one) times ``P`` numbers per step, read
as ``out.reshape(N, K, P)``. The losses are ``rnnlab.nn.distributions``' (every gradient by
hand, checked against PyTorch autograd and finite differences)::

    likelihood   P   per step, in standardised units      loss                     location
    none         1   the value                            MSE                      the value
    gaussian     2   [mu, s]      sigma = softplus(s)     Gaussian NLL             mu
    studentt     3   [mu, s, t]   nu = 2 + softplus(t)    Student-t NLL            mu
    quantile     Q   q_1 .. q_Q at the head's levels      pinball, mean over Q     q at 0.5

The location is what a point forecast uses (the mean; the median for quantiles). ``sample``
draws from the distribution: ``mu + sigma eps`` with ``eps`` standard normal or Student t, or
for quantiles the piecewise-linear quantile function at a uniform ``u`` (crossed quantiles
are sorted first; ``u`` beyond the outer levels takes the outer quantile).
"""

from __future__ import annotations

import numpy as np

from rnnlab.nn import MSELoss
from rnnlab.nn.distributions import GaussianNLL, PinballLoss, StudentTNLL, softplus

LIKELIHOODS = ("gaussian", "studentt", "quantile", "none")
INTERVALS = (0.8, 0.95)  # the default central intervals


def interval_levels(intervals) -> list[float]:
    """The quantile levels the central intervals need, with the median: 0.8, 0.95 ->
    [0.025, 0.1, 0.5, 0.9, 0.975]."""
    ends = {round((1 - b) / 2, 10) for b in intervals} | {round((1 + b) / 2, 10) for b in intervals}
    return sorted(ends | {0.5})


def check_intervals(intervals) -> tuple[float, ...]:
    """``intervals`` as a sorted tuple of coverages in (0, 1); ValueError otherwise, and for a
    coverage whose ends ``interval_levels`` rounds to the levels 0 and 1 (or to the median):
    0.99999999999 trained, then failed in the quantile head (issue 34)."""
    try:
        out = tuple(sorted({float(b) for b in intervals}))
    except (TypeError, ValueError):
        raise ValueError("intervals must be coverages in (0, 1), e.g. 0.8,0.95") from None
    if not out or not all(0 < b < 1 for b in out):
        raise ValueError(f"intervals must be coverages in (0, 1), e.g. 0.8,0.95; got {list(out)}")
    for b in out:
        lo = round((1 - b) / 2, 10)  # as interval_levels rounds it
        if not 0 < lo < 0.5:
            near, limit = (1, "at most 0.9999999998") if lo <= 0 else (0, "at least 2e-10")
            raise ValueError(
                f"coverage {b!r} is too close to {near}: its interval's ends round to the "
                f"quantile levels {lo:g} and {round((1 + b) / 2, 10):g}; use {limit}"
            )
    return out


class Head:
    """The meaning of the network's outputs for one likelihood (see the module's table)."""

    def __init__(self, likelihood: str, intervals=INTERVALS):
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
        self.likelihood = likelihood
        # a quantile head also learns the quartiles: its samples then follow the body better
        self.levels = np.array(sorted(set(interval_levels(intervals)) | {0.25, 0.75}))
        self.P = {"none": 1, "gaussian": 2, "studentt": 3, "quantile": len(self.levels)}[likelihood]

    @property
    def probabilistic(self) -> bool:
        return self.likelihood != "none"

    def loss(self, K: int):
        """The training loss of outputs ``(N, K * P)`` against targets ``(N, K)``."""
        if self.likelihood == "none":
            return MSELoss()
        base = {"gaussian": GaussianNLL, "studentt": StudentTNLL}.get(self.likelihood)
        return _PerStep(base() if base else PinballLoss(self.levels), K, self.P)

    def location(self, out, K: int) -> np.ndarray:
        """Outputs ``(M, K * P)`` -> the point forecast ``(M, K)`` (scaled units)."""
        out = np.asarray(out).reshape(len(out), K, self.P)
        if self.likelihood == "quantile":
            return np.sort(out, axis=2)[:, :, int(np.searchsorted(self.levels, 0.5))]
        return out[:, :, 0]

    def sample(self, out, K: int, n: int, rng) -> np.ndarray:
        """``n`` draws per row from outputs ``(M, K * P)``: ``(M, n, K)`` (scaled units)."""
        if not self.probabilistic:
            raise ValueError("a point forecaster (likelihood none) has no distribution to sample")
        out = np.asarray(out, np.float64).reshape(len(out), 1, K, self.P)
        M = len(out)
        if self.likelihood == "quantile":
            q = np.sort(out[:, 0], axis=2)  # (M, K, Q)
            u = rng.uniform(self.levels[0], self.levels[-1], size=(M, n, K))
            return _interp_rows(u, self.levels, q)
        mu, sigma = out[..., 0], softplus(out[..., 1]) + 1e-6  # (M, 1, K)
        if self.likelihood == "gaussian":
            eps = rng.standard_normal((M, n, K))
        else:
            nu = np.broadcast_to(2.0 + softplus(out[..., 2]), (M, n, K))
            eps = rng.standard_t(nu)
        return mu + sigma * eps


def _interp_rows(u, levels, q):
    """The piecewise-linear quantile function through ``(levels, q[m, k])`` at ``u[m, :, k]``."""
    u = np.transpose(u, (0, 2, 1))  # (M, K, n), q is (M, K, Q)
    i = np.clip(np.searchsorted(levels, u, side="right") - 1, 0, len(levels) - 2)
    lo_q, hi_q = np.take_along_axis(q, i, axis=2), np.take_along_axis(q, i + 1, axis=2)
    w = (u - levels[i]) / (levels[i + 1] - levels[i])
    return np.transpose(lo_q + w * (hi_q - lo_q), (0, 2, 1))  # (M, n, K)


class _PerStep:
    """A distribution loss over K steps: outputs ``(N, K * P)`` and targets ``(N, K)`` are read
    as ``N * K`` independent rows of ``P`` parameters and one target each."""

    def __init__(self, base, K: int, P: int):
        self.base, self.K, self.P = base, K, P

    def __call__(self, out, Y):
        self._N = len(out)
        return self.base(out.reshape(self._N * self.K, self.P), np.asarray(Y).reshape(self._N * self.K))

    def backward(self):
        return self.base.backward().reshape(self._N, self.K * self.P)
