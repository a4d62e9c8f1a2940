"""Forecast paths of levels: the point path, sample paths, quantiles, split-conformal calibration.

Every network of a ``Forecaster`` rolls forward from the window ending at each origin ``t``
(``roll``): its outputs give a location and, for a probabilistic head, a distribution of the
next transformed value ``z``; the recursive strategy feeds the value back into the window.
The point path feeds back the location; a sample path feeds back one draw, so the spread of
step h carries the uncertainty of steps 1 .. h - 1 (Salinas et al. 2020, DeepAR). A draw is
shifted with its location by the shrink towards "no change"::

    loc'  = base + alpha (loc - base)           z_draw' = z_draw + (loc' - loc)

Levels follow from ``z`` as in ``data.to_levels``. An ensemble's sample paths are pooled:
``n_samples`` paths in all, ``ceil(n_samples / members)`` from each network (a mixture).

Split-conformal calibration (Vovk et al. 2005; the quantile form of Romano et al. 2019,
scaled about the median): on the validation slice at the end of the training part, for the
central interval of coverage b with raw bounds [lo, hi] and median m, each of the n targets
has the score ``E = max((m - y) / (m - lo), (y - m) / (hi - m))`` and the factor ``c_b`` is the
``ceil((n + 1) b)``-th smallest score (the largest, if that rank passes n). The calibrated
interval is ``[m - c_b (m - lo), m + c_b (hi - m)]``: it covers y exactly when E <= c_b. One
factor per step ahead and interval; any other level tau uses the factor interpolated at
coverage ``|2 tau - 1|`` (constant beyond the outer intervals), and the quantiles are sorted
after scaling so that they never cross.
"""

from __future__ import annotations

import math

import numpy as np

from rnnlab.forecast import data as D
from rnnlab.forecast.train import predict_scaled

DENSE = np.round(np.arange(1, 100) / 100, 2)  # 0.01 .. 0.99: the grid CRPS is integrated over


def roll(f, net, alpha: float, z, s, origins, steps: int, rng=None, repeat: int = 1, scaler=None, cov=None):
    """One network's path of ``steps`` transformed values after each origin: ``(M * repeat,
    steps)``, row ``m * repeat + r`` from origin m. ``rng`` None: the location fed back (the
    point path); else one draw per row (``repeat`` sample paths per origin). ``scaler``: the
    series' (default the forecaster's first). ``cov``: None, or ``cov(shift)`` the covariate
    windows ``(M, W, C)`` of the windows ending ``shift`` steps after each origin."""
    head, K, W = f.head_, f._n_out, f.window
    sc = f.scaler_ if scaler is None else scaler
    win = s[origins[:, None] + np.arange(-W + 1, 1)[None, :]]  # (M, W) scaled windows
    base = z[origins][:, None] if f.target == "level" else np.zeros((len(origins), 1))
    if repeat > 1:
        win, base = np.repeat(win, repeat, axis=0), np.repeat(base, repeat, axis=0)
    path: list[np.ndarray] = []  # one (R,) array per step ahead
    while len(path) < steps:
        cw = None if cov is None else cov(len(path))
        if cw is not None and repeat > 1:
            cw = np.repeat(cw, repeat, axis=0)
        inputs, nu = f.features(win, cw)  # nu (R, 1)
        out = predict_scaled(net, inputs)  # (R, K * P)
        loc = sc.inverse_transform(nu * head.location(out, K))  # (R, K)
        if rng is None:
            z_hat = loc
        else:
            z_hat = sc.inverse_transform(nu * head.sample(out, K, 1, rng)[:, 0])
        z_hat = z_hat - (1.0 - alpha) * (loc - base)  # the shrink towards no change (exact at 0)
        path.extend(z_hat.T)
        if f.target == "level":
            base = z_hat[:, -1:]  # recursive: the next "no change" level
        win = np.concatenate([win, sc.transform(z_hat)], axis=1)[:, -W:]
    return np.stack(path[:steps], axis=1)


def transformed(f, y, scaler=None):
    """``(z, s)``: the series' transformed values and their scaled form."""
    z = D.transform(y, f.target, f.season)
    return z, (f.scaler_ if scaler is None else scaler).transform(z)


def sample_paths(f, y, origins, steps: int, scaler=None, cov=None) -> np.ndarray:
    """``(M, S, steps)`` sample paths of levels after each origin, pooled over the networks."""
    y = np.asarray(y, np.float64)
    origins = np.asarray(origins, np.int64)
    z, s = transformed(f, y, scaler)
    S = max(1, math.ceil(f.n_samples / len(f.nets_)))
    M = len(origins)
    pooled = []
    for k, (net, alpha) in enumerate(zip(f.nets_, f.shrinks_)):
        rng = np.random.default_rng([f.seed, k, 20_161])  # the same draws on every call
        zp = roll(f, net, alpha, z, s, origins, steps, rng, S, scaler, cov)  # (M * S, steps)
        hist = f._history(y, origins)
        hist = None if hist is None else np.repeat(hist, S, axis=0)
        pooled.append(
            D.to_levels(np.repeat(y[origins], S), zp, f.target, hist, f.season).reshape(M, S, steps)
        )
    return np.concatenate(pooled, axis=1)


def quantiles(f, y, origins, steps: int, levels=DENSE, calibrated: bool = True, scaler=None, cov=None):
    """Quantiles ``(M, steps, L)`` of the level after each origin, at ``levels`` (L,), with the
    fitted conformal calibration unless ``calibrated`` is False."""
    levels = np.asarray(levels, np.float64)
    paths = sample_paths(f, y, origins, steps, scaler, cov)
    q = np.moveaxis(np.quantile(paths, levels, axis=1), 0, 2)  # (M, steps, L)
    cal = getattr(f, "calibration_", None)
    if calibrated and cal and cal.get("applied", True):
        med = np.median(paths, axis=1)  # (M, steps)
        q = apply_calibration(q, med, levels, cal)
    return q


def factors_per_step(cal: dict, steps: int) -> np.ndarray:
    """The calibration factors ``(steps, B)``; steps past the calibrated ones reuse the last."""
    F = np.asarray(cal["factors"], np.float64).T  # (H_cal, B)
    return F[np.minimum(np.arange(steps), len(F) - 1)]


def apply_calibration(q, med, levels, cal: dict) -> np.ndarray:
    """Scale quantiles ``q (M, steps, L)`` about the median ``med (M, steps)`` by the factor of
    their coverage (module docstring); sorted along the levels."""
    b = np.abs(2.0 * np.asarray(levels) - 1.0)  # (L,) the coverage each level bounds
    F = factors_per_step(cal, q.shape[1])  # (steps, B)
    c = np.stack([np.interp(b, cal["intervals"], F[h]) for h in range(len(F))])  # (steps, L)
    out = med[:, :, None] + c[None] * (q - med[:, :, None])
    return np.sort(out, axis=2)


def conformal_scores(y, lo, hi, med) -> np.ndarray:
    """``E = max((m - y) / (m - lo), (y - m) / (hi - m))``, widths floored at a tiny positive."""
    tiny = 1e-12 * max(1.0, float(np.max(np.abs(med))))
    return np.maximum((med - y) / np.maximum(med - lo, tiny), (y - med) / np.maximum(hi - med, tiny))


def conformal_factor(scores, coverage: float) -> float:
    """The ``ceil((n + 1) b)``-th smallest score (the largest, if that rank passes n)."""
    scores = np.sort(np.asarray(scores, np.float64))
    k = min(math.ceil((len(scores) + 1) * coverage), len(scores))
    return float(scores[k - 1])


def fit_calibration(f, sets, steps: int) -> dict:
    """The conformal factors of ``f`` on the validation targets ``y[origins + h]`` (those inside
    ``y``), h = 1 .. steps, of every ``(y, origins, scaler, cov)`` in ``sets`` (one per series,
    the scores pooled; ``cov`` as in ``roll``); with the raw validation coverage."""
    from rnnlab.forecast.heads import interval_levels

    levels = np.array(interval_levels(f.intervals))
    index = {
        b: (int(np.argmin(np.abs(levels - (1 - b) / 2))), int(np.argmin(np.abs(levels - (1 + b) / 2))))
        for b in f.intervals
    }
    scores = {(b, h): [] for b in f.intervals for h in range(1, steps + 1)}
    inside = {key: [] for key in scores}
    for y, origins, scaler, cov in sets:
        y = np.asarray(y, np.float64)
        paths = sample_paths(f, y, origins, steps, scaler, cov)
        q = np.moveaxis(np.quantile(paths, levels, axis=1), 0, 2)  # (M, steps, L)
        med = np.median(paths, axis=1)
        for (b, h), got in scores.items():
            ok = origins + h <= len(y) - 1
            t, (lo_i, hi_i) = origins[ok] + h, index[b]
            lo, hi, m = q[ok, h - 1, lo_i], q[ok, h - 1, hi_i], med[ok, h - 1]
            got.append(conformal_scores(y[t], lo, hi, m))
            inside[(b, h)].append((y[t] >= lo) & (y[t] <= hi))
    factors, raw = [], []
    for b in f.intervals:
        E = [np.concatenate(scores[(b, h)]) for h in range(1, steps + 1)]
        factors.append([conformal_factor(e, b) if len(e) else 1.0 for e in E])
        cov = [np.concatenate(inside[(b, h)]) for h in range(1, steps + 1)]
        raw.append([float(np.mean(c)) if len(c) else None for c in cov])
    n_used = [int(sum(len(s) for s in scores[(f.intervals[0], h)])) for h in range(1, steps + 1)]
    # is the raw coverage off? a two-sided binomial test per interval and step, Bonferroni at 5%
    p_values = [
        [binomial_p(round(c * n), n, b) if c is not None and n else 1.0 for c, n in zip(row, n_used)]
        for b, row in zip(f.intervals, raw)
    ]
    off = min(min(row) for row in p_values) < 0.05 / (len(f.intervals) * steps)
    return {
        "intervals": list(f.intervals),
        "factors": factors,
        "raw_coverage": raw,
        "n": n_used,
        "p_values": p_values,
        "off": bool(off),
    }


def binomial_p(k: int, n: int, p: float) -> float:
    """Two-sided exact binomial test: P(a count as unlikely as k of n under rate p)."""
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
        for i in range(n + 1)
    ]
    top = max(logs)
    probs = np.exp(np.array(logs) - top)
    return float(min(1.0, probs[probs <= probs[k] * (1 + 1e-7)].sum() / probs.sum()))
