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

Batched (``Batch``, ``roll_batch``): a network rolls the paths of every origin of every series
given together in one forward per step (``CHUNK_ROWS`` rows at most), and reads the first step's
window, which all paths of an origin share, once per origin. Each series draws from its own
generator per network, seeded ``(seed, network, 20161)`` as ever, in the order of its rows
(origin-major, path-minor), so batching changes no draw; only the float32 forward may round a
row differently in a batch of another size (by about 1e-9, relative, in the levels).

Split-conformal calibration (Vovk et al. 2005; the quantile form of Romano et al. 2019,
scaled about the median): on the validation slice at the end of the training part, for the
central interval of coverage b with raw bounds [lo, hi] and median m, each of the n targets
has the score ``E = max((m - y) / (m - lo), (y - m) / (hi - m))`` and the factor ``c_b`` is the
``ceil((n + 1) b)``-th smallest score (the largest, if that rank passes n). The calibrated
interval is ``[m - c_b (m - lo), m + c_b (hi - m)]``: it covers y exactly when E <= c_b. One
factor per step ahead and interval; any other level tau uses the factor interpolated at
coverage ``|2 tau - 1|`` (constant beyond the outer intervals), and the quantiles are sorted
after scaling so that they never cross. More than ``CAL_ORIGINS`` validation origins in all:
the same share of each series' is scored, evenly spaced (``calibration_origins``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time

import numpy as np

from rnnlab.forecast.estimator.heads import interval_levels
from rnnlab.forecast.estimator.train import CLOCK, predict_scaled
from rnnlab.forecast.series import data as D

DENSE = np.round(np.arange(1, 100) / 100, 2)  # 0.01 .. 0.99: the grid CRPS is integrated over
# sample-path rows (origins x paths per network) rolled in one batch: with 100 paths a network,
# 327 origins, ~125 MB of pooled paths at 48 steps (train.predict_scaled feeds the network 4096
# rows at a time)
CHUNK_ROWS = 32_768
# validation origins the calibration scores at most (all series together): 1,000 scores per step
# and interval put c_b within a standard error of 0.7 (95%) to 1.3 (80%) points of coverage
CAL_ORIGINS = 1_000


def roll(f, net, alpha: float, z, s, origins, steps: int, rng=None, repeat: int = 1, scaler=None, cov=None):
    """One network's path of ``steps`` transformed values after each origin: ``(M * repeat,
    steps)``, row ``m * repeat + r`` from origin m. ``rng`` None: the location fed back (the
    point path); else one draw per row (``repeat`` sample paths per origin). ``scaler``: the
    series' (default the forecaster's first). ``cov``: None, or ``cov(shift)`` the covariate
    windows ``(M, W, C)`` of the windows ending ``shift`` steps after each origin."""
    batch = Batch(f, [(z, s, np.asarray(origins, np.int64), scaler, cov)])
    return roll_batch(f, net, alpha, batch, steps, None if rng is None else [rng], repeat)


class Batch:
    """The windows of many origins of many series, one row per origin, rolled as one batch:
    ``parts`` is ``[(z, s, origins, scaler, cov)]`` (``transformed``'s z and s of a series, its
    origins, its scaler or None for the forecaster's first, its covariate windows or None)."""

    def __init__(self, f, parts):
        W = f.window
        self.bounds = np.cumsum([0] + [len(p[2]) for p in parts])  # part i: rows bounds[i] .. [i+1]
        wins, bases, means, scales = [], [], [], []
        for z, s, origins, scaler, _ in parts:
            sc = f.scaler_ if scaler is None else scaler
            wins.append(s[origins[:, None] + np.arange(-W + 1, 1)[None, :]])  # (M_i, W) scaled windows
            bases.append(z[origins][:, None] if f.target == "level" else np.zeros((len(origins), 1)))
            means.append(np.full((len(origins), 1), sc.mean_))
            scales.append(np.full((len(origins), 1), sc.scale_))
        cat = lambda a: np.concatenate(a, axis=0) if a else np.zeros((0, 1))
        self.win, self.base = (np.concatenate(wins) if wins else np.zeros((0, W))), cat(bases)
        self.mean, self.scale = cat(means), cat(scales)  # (M, 1): each row's scaler
        self.covs = [p[4] for p in parts]

    def cov(self, shift: int):
        """The covariate windows ``(M, W, C)`` ``shift`` steps after every origin, or None."""
        if all(c is None for c in self.covs):
            return None
        return np.concatenate([c(shift) for c in self.covs], axis=0)


def roll_batch(f, net, alpha: float, batch: Batch, steps: int, rngs=None, repeat: int = 1) -> np.ndarray:
    """``roll`` of every row of ``batch`` in one forward per step: ``(M * repeat, steps)``, row
    ``m * repeat + r`` from origin m. ``rngs``: None (the point path), or one generator per part
    of the batch, each drawing its part's rows in the order a ``roll`` of that part alone would.

    The first step's window is the same for the ``repeat`` paths of an origin, so the network
    reads it once per origin; the paths part at the first draw."""
    head, K, W = f.head_, f._n_out, f.window
    win, base, mean, scale = batch.win, batch.base, batch.mean, batch.scale
    rows = np.asarray(batch.bounds) * repeat  # part i's rows once expanded
    wide = repeat == 1  # the rows are the paths already
    path: list[np.ndarray] = []  # one (R,) array per step ahead
    while len(path) < steps:
        cw = batch.cov(len(path))
        if cw is not None and path and not wide:  # after the first step: a row per path
            cw = np.repeat(cw, repeat, axis=0)
        inputs, nu = f.features(win, cw)  # nu (R, 1)
        out = predict_scaled(net, inputs)  # (R, K * P)
        if not wide and not path:  # the first step: one window per origin, now one row per path
            out, nu = np.repeat(out, repeat, axis=0), np.repeat(nu, repeat, axis=0)
            win, base = np.repeat(win, repeat, axis=0), np.repeat(base, repeat, axis=0)
            mean, scale = np.repeat(mean, repeat, axis=0), np.repeat(scale, repeat, axis=0)
        loc = nu * head.location(out, K) * scale + mean  # (R, K), the scaler inverted
        if rngs is None:
            z_hat = loc
        else:
            draws = [head.sample(out[a:b], K, 1, rng)[:, 0] for a, b, rng in zip(rows[:-1], rows[1:], rngs)]
            z_hat = nu * np.concatenate(draws, axis=0) * scale + mean
        z_hat = z_hat - (1.0 - alpha) * (loc - base)  # the shrink towards no change (exact at 0)
        path.extend(z_hat.T)
        if f.target == "level":
            base = z_hat[:, -1:]  # recursive: the next "no change" level
        win = np.concatenate([win, (z_hat - mean) / scale], axis=1)[:, -W:]
    return np.stack(path[:steps], axis=1)


def transformed(f, y, scaler=None):
    """``(z, s)``: the series' transformed values and their scaled form."""
    z = D.transform(y, f.target, f.season)
    return z, (f.scaler_ if scaler is None else scaler).transform(z)


def chunks(sets, paths_per_origin: int, rows: int | None = None) -> list:
    """``sets`` in consecutive groups of at most ``rows`` (default ``CHUNK_ROWS``) sample-path
    rows (origins x paths) each; a set larger than that is a group of its own."""
    rows = CHUNK_ROWS if rows is None else rows
    out: list[list] = []
    used = rows
    for item in sets:
        n = len(item[1]) * paths_per_origin
        if used + n > rows:
            out.append([])
            used = 0
        out[-1].append(item)
        used += n
    return out


def _clocked(fn):
    """``fn``, its seconds added to ``train.CLOCK["intervals"]``."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            CLOCK["intervals"] += time.perf_counter() - t0

    return run


def point_paths(f, sets, steps: int) -> list:
    """The point forecasts ``(M_i, steps)`` of levels, the networks' mean, of every
    ``(y, origins, scaler, cov)`` in ``sets``: one forward per network and step for them all."""
    parts, ys = _parts(f, sets)
    batch = Batch(f, parts)
    paths = [
        _levels(f, ys, parts, roll_batch(f, net, alpha, batch, steps), 1)
        for net, alpha in zip(f.nets_, f.shrinks_)
    ]
    return _split(np.mean(paths, axis=0), batch.bounds)


def sample_paths(f, y, origins, steps: int, scaler=None, cov=None) -> np.ndarray:
    """``(M, S, steps)`` sample paths of levels after each origin, pooled over the networks."""
    return sample_paths_many(f, [(y, origins, scaler, cov)], steps)[0]


def sample_paths_many(f, sets, steps: int, progress=None, done: int = 0, total=None) -> list:
    """``sample_paths`` of every ``(y, origins, scaler, cov)`` in ``sets`` in one batch: a list
    of ``(M_i, S, steps)``, each as ``sample_paths`` of that set alone gives it (every set's
    draws come from its own generator per network, seeded as ever). ``progress(done, total)``
    after each network (``done`` networks before this call, of ``total``)."""
    S = max(1, math.ceil(f.n_samples / len(f.nets_)))
    parts, ys = _parts(f, sets)
    batch = Batch(f, parts)
    total = len(f.nets_) if total is None else total
    pooled = []
    for k, (net, alpha) in enumerate(zip(f.nets_, f.shrinks_)):
        rngs = [np.random.default_rng([f.seed, k, 20_161]) for _ in parts]  # the same draws on every call
        zp = roll_batch(f, net, alpha, batch, steps, rngs, S)  # (M * S, steps)
        pooled.append(_levels(f, ys, parts, zp, S).reshape(-1, S, steps))
        if progress is not None:
            progress(done + k + 1, total)
    return _split(np.concatenate(pooled, axis=1), batch.bounds)


def _parts(f, sets):
    """``Batch`` parts of ``(y, origins, scaler, cov)`` sets, and the sets' levels."""
    parts, ys = [], []
    for y, origins, scaler, cov in sets:
        y = np.asarray(y, np.float64)
        z, s = transformed(f, y, scaler)
        parts.append((z, s, np.asarray(origins, np.int64).reshape(-1), scaler, cov))
        ys.append(y)
    return parts, ys


def _levels(f, ys, parts, zp, S: int) -> np.ndarray:
    """Paths of z ``(M * S, steps)`` of a batch -> levels (``D.to_levels``, row by row)."""
    y0 = np.concatenate([y[p[2]] for y, p in zip(ys, parts)])
    each = [f._history(y, p[2]) for y, p in zip(ys, parts)]
    hist = None if each[0] is None else np.repeat(np.concatenate(each, axis=0), S, axis=0)
    levels = D.to_levels(np.repeat(y0, S), zp, f.target, hist, f.season)
    return bound(levels, f.bounds, ys, [p[2] for p in parts], S)


def bound(levels, bounds: str, ys, origins, S: int = 1) -> np.ndarray:
    """Levels ``(M * S, steps)`` (origin-major rows, ``S`` paths an origin) within ``bounds``:
    "positive" clips at 0; "range" at the least and the greatest level of the history up to
    each row's origin (``y[: origin + 1]``: a backtest's bound reads no later value); "none"
    returns them as they are. Clipping is monotone, so the quantiles of bounded paths are the
    bounded quantiles."""
    if bounds == "none":
        return levels
    if bounds == "positive":
        return np.maximum(levels, 0.0)
    lo = np.concatenate([np.minimum.accumulate(y)[o] for y, o in zip(ys, origins)])
    hi = np.concatenate([np.maximum.accumulate(y)[o] for y, o in zip(ys, origins)])
    return np.clip(levels, np.repeat(lo, S)[:, None], np.repeat(hi, S)[:, None])


def _split(a, bounds) -> list:
    return [a[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]


def quantiles(
    f, y, origins, steps: int, levels=DENSE, calibrated: bool = True, scaler=None, cov=None, progress=None
):
    """Quantiles ``(M, steps, L)`` of the level after each origin, at ``levels`` (L,), with the
    fitted conformal calibration unless ``calibrated`` is False."""
    return quantiles_many(f, [(y, origins, scaler, cov)], steps, levels, calibrated, progress)[0]


@_clocked
def quantiles_many(f, sets, steps: int, levels=DENSE, calibrated: bool = True, progress=None) -> list:
    """``quantiles`` of every ``(y, origins, scaler, cov)`` in ``sets``: ``(M_i, steps, L)`` each,
    the sets batched ``CHUNK_ROWS`` sample-path rows at a time. ``progress(done, total)``: after
    each network of each batch."""
    levels = np.asarray(levels, np.float64)
    out = []
    for (paths, med), (y, origins, *_) in zip(_pooled(f, sets, steps, progress), sets):
        q = np.moveaxis(np.quantile(paths, levels, axis=1), 0, 2)  # (M, steps, L)
        cal = getattr(f, "calibration_", None)
        if calibrated and cal and cal.get("applied", True):
            q = apply_calibration(q, med, levels, cal)  # may widen them past the bounds: again
            y, o = np.asarray(y, np.float64), np.asarray(origins, np.int64).reshape(-1)
            q = bound(q.reshape(len(q), -1), f.bounds, [y], [o]).reshape(q.shape)
        out.append(q)
    return out


WATCHERS: list = []  # progress(done, total) hooks for sampling given none (``watching``)


@contextlib.contextmanager
def watching(progress):
    """While inside, sampling that was given no ``progress`` reports to ``progress`` (a command
    line's bar for the calibration and test quantiles deep inside a backtest); None: nothing."""
    WATCHERS.append(progress)
    try:
        yield
    finally:
        WATCHERS.pop()


def _pooled(f, sets, steps: int, progress):
    """``(paths (M_i, S, steps), median (M_i, steps))`` of each set, a batch at a time."""
    progress = progress if progress is not None or not WATCHERS else WATCHERS[-1]
    S = max(1, math.ceil(f.n_samples / len(f.nets_)))
    groups = chunks(sets, S)
    total = len(groups) * len(f.nets_)
    for g, group in enumerate(groups):
        for paths in sample_paths_many(f, group, steps, progress, g * len(f.nets_), total):
            yield paths, np.median(paths, axis=1)


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


@_clocked
def fit_calibration(f, sets, steps: int, progress=None) -> dict:
    """The conformal factors of ``f`` on the validation targets ``y[origins + h]`` (those inside
    ``y``), h = 1 .. steps, of every ``(y, origins, scaler, cov)`` in ``sets`` (one per series,
    the scores pooled; ``cov`` as in ``roll``); with the raw validation coverage. Past
    ``CAL_ORIGINS`` origins in all, an evenly spaced subset of each series' (``calibration_origins``).
    ``progress(done, total)``: after each network of each batch of sample paths."""
    levels = np.array(interval_levels(f.intervals))
    index = {
        b: (int(np.argmin(np.abs(levels - (1 - b) / 2))), int(np.argmin(np.abs(levels - (1 + b) / 2))))
        for b in f.intervals
    }
    scores: dict[tuple, list] = {(b, h): [] for b in f.intervals for h in range(1, steps + 1)}
    inside: dict[tuple, list] = {key: [] for key in scores}
    kept = calibration_origins([np.asarray(o, np.int64) for _, o, _, _ in sets])
    sets = [(y, o, scaler, cov) for (y, _, scaler, cov), o in zip(sets, kept)]
    for (y, origins, _, _), (paths, med) in zip(sets, _pooled(f, sets, steps, progress)):
        y = np.asarray(y, np.float64)
        q = np.moveaxis(np.quantile(paths, levels, axis=1), 0, 2)  # (M, steps, L)
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


def calibration_origins(origins: list, cap: int | None = None) -> list:
    """The validation origins the calibration scores: all of them while they number at most
    ``cap`` (default ``CAL_ORIGINS``), else of each series the same share, evenly spaced and
    ending at its last (at least one a series). Split-conformal stays valid on any subset
    chosen without looking at the targets; fewer scores only widen the spread of ``c_b``."""
    cap = CAL_ORIGINS if cap is None else cap
    n = sum(len(o) for o in origins)
    if n <= cap:
        return origins
    share = cap / n
    out = []
    for o in origins:
        k = max(1, int(round(share * len(o))))
        pick = len(o) - 1 - np.floor(np.arange(k) * (len(o) / k)).astype(np.int64)  # stride n / k
        out.append(o[pick[::-1]])
    return out


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
