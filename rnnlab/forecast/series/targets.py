"""What the network models (``target``), and the way back to levels::

    level      z_t = y_t                          y_hat_{t+1} = z_hat_{t+1}
    diff       z_t = y_t - y_{t-1}                y_hat_{t+1} = y_t + z_hat_{t+1}
    logreturn  z_t = log y_t - log y_{t-1}        y_hat_{t+1} = y_t * exp(z_hat_{t+1})
    sdiff      z_t = y_t - y_{t-m}                y_hat_{t+h} = y_hat_{t+h-m} + z_hat_{t+h}
               (the seasonal difference, season m; "no change" is the seasonal naive forecast,
               and a step past the season builds on the forecast a season before it)
    deseason   z_t = d_t - d_{t-1},  d_t = log y_t - c_t   y_hat_{t+1} = exp(d_t + z_hat_{t+1} + c_{t+1})
               (the change of the seasonally adjusted log level; "no change" is the last
               adjusted level with the season put back, M4's "naive 2")
    deseason_mean  z_t = d_t - b_{t-1},  b_t = mean(d_{t-m+1} .. d_t)
                                              y_hat_{t+1} = exp(b_t + z_hat_{t+1} + c_{t+1})
               (the adjusted log level against its mean over the season before; "no change"
               is that mean with the season put back: a moving average of naive 2's levels)

The seasonal component of the deseason targets is estimated from the past only, so that every
value of z (and every forecast) depends on the history up to its time alone, wherever the
history starts (a classical multiplicative decomposition, Makridakis et al. 1998, made causal)::

    x_t = log y_t      a_t = x_t - MA_m(x)_t        (MA_m: the centred moving average of a
                                                      season; 2 x m for an even m)
    c_t = mean of a_{t - j m}, j = 1 .. 5, over those defined (the last five seasons' deviations)

``a_tau`` reads ``x`` up to ``tau + floor(m / 2) < t``; a forecast step past half a season reads
the forecasts before it, as sdiff builds on its own.

A window of ``W`` transformed values ends at the forecast origin ``t``: ``z_{t-W+1} .. z_t``
(this reads ``W + lag`` levels ``y_{t-W-lag+1} .. y_t``, ``lag`` below).
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError

TARGETS = ("level", "diff", "logreturn", "sdiff", "deseason", "deseason_mean")
SEASONS_BACK = 5  # the deseason targets: the seasons whose deviations c_t averages
DESEASON = ("deseason", "deseason_mean")
SEASONAL = ("sdiff", *DESEASON)  # the targets that need a season


def span(target: str, season: int) -> int:
    """The adjusted levels ``b_{t-1}`` averages: 1 (deseason), the season (deseason_mean)."""
    return max(int(season), 1) if target == "deseason_mean" else 1


def lag(target: str, season: int = 1) -> int:
    """Levels consumed before the first transformed value (0 for level, 1 for changes, m for
    the seasonal difference, m + floor(m / 2) + span for the deseason targets: the first c)."""
    m = max(int(season), 1)
    if target in DESEASON:
        return m + m // 2 + span(target, m)
    return {"level": 0, "sdiff": m}.get(target, 1)


def history_length(target: str, season: int = 1) -> int:
    """Levels up to an origin that its transformed value and its forecast path read: ``lag + 1``,
    and for the deseason targets every one of the ``SEASONS_BACK`` seasons c averages."""
    m = max(int(season), 1)
    if target in DESEASON:
        return SEASONS_BACK * m + m // 2 + span(target, m) + 1  # c_t .. c_{t-span} complete
    return lag(target, season) + 1


def levels_read(window: int, target: str, season: int = 1) -> int:
    """Levels up to an origin that a forecast from it reads: the window's and the target's."""
    return window - 1 + history_length(target, season)


def _ma_weights(m: int) -> np.ndarray:
    """The centred moving average of one season: 2 x m for an even m (2h + 1 weights)."""
    return np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m


def _deviations(x, m: int) -> np.ndarray:
    """``a = x - MA_m(x)`` along the last axis (NaN where the centred average lacks a value)."""
    w = _ma_weights(m)
    h = (len(w) - 1) // 2
    n = x.shape[-1]
    a = np.full(x.shape, np.nan)
    if n > 2 * h:
        windows = np.lib.stride_tricks.sliding_window_view(x, len(w), axis=-1)  # (..., n - 2h, len(w))
        a[..., h : n - h] = x[..., h : n - h] - windows @ w  # a_t = x_t - MA_m(x)_t
    return a


def seasonal_component(x, m: int, at=None) -> np.ndarray:
    """``c`` of the log levels ``x (..., n)`` (module docstring) at the positions ``at``
    (default all; a position may be n, the step after x, as c reads only the past): NaN where
    no earlier season's deviation is defined."""
    x = np.asarray(x, np.float64)
    n = x.shape[-1]
    at = np.arange(n) if at is None else np.asarray(at)
    past = at[:, None] - m * np.arange(1, SEASONS_BACK + 1)[None, :]  # (len(at), J) positions t - j m
    if len(at) > 2:
        a = _deviations(x, m)  # many positions: one pass over x (a strided view, no copy)
        vals = np.where(past >= 0, a[..., np.clip(past, 0, n - 1)], np.nan)  # (..., len(at), J)
    else:  # one forecast step: only the SEASONS_BACK deviations it reads (no (..., n) array)
        w = _ma_weights(m)
        h = (len(w) - 1) // 2
        flat = past.reshape(-1)
        ok = (flat >= 0) & (flat >= h) & (flat + h < n)
        vals = np.full(x.shape[:-1] + (flat.size,), np.nan)
        if ok.any():
            p = flat[ok]
            cols = x[..., p[:, None] + np.arange(-h, h + 1)[None, :]]  # (..., P, len(w))
            vals[..., ok] = x[..., p] - cols @ w  # a_t = x_t - MA_m(x)_t
        vals = vals.reshape(x.shape[:-1] + past.shape)  # (..., len(at), J)
    counts = np.sum(np.isfinite(vals), axis=-1)
    total = np.nansum(vals, axis=-1)
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)  # c_t = mean_j a_{t - j m}


def adjusted_change(x, m: int, q: int) -> np.ndarray:
    """The deseason targets' z of the log levels ``x (n,)``: linear in x where it is defined."""
    d = x - seasonal_component(x, m)  # d_t = x_t - c_t
    b = np.convolve(d, np.ones(q) / q, mode="valid")  # b_t = mean(d_{t-q+1} .. d_t), t >= q - 1
    z = np.full(len(x), np.nan)
    z[q:] = d[q:] - b[:-1]  # z_t = d_t - b_{t-1}
    return z


def next_base(x, m: int, q: int):
    """``b_t + c_{t+1}`` of the log levels ``x (..., L)`` ending at t: the next log level when
    z_{t+1} = 0 (linear in x; it reads x up to t only)."""
    L = x.shape[-1]
    d = x[..., L - q :] - seasonal_component(x, m, np.arange(L - q, L))  # d_{t-q+1} .. d_t
    return d.mean(axis=-1) + seasonal_component(x, m, [L])[..., 0]


def transform(y, target: str, season: int = 1) -> np.ndarray:
    """Levels (n,) -> z (n,); the first ``lag`` values of z are NaN (no earlier value)."""
    y = np.asarray(y, np.float64)
    if target == "level":
        return y.copy()
    k = lag(target, season)
    z = np.full_like(y, np.nan)
    if target == "logreturn":
        z[1:] = np.log(y[1:]) - np.log(y[:-1])  # z_t = log y_t - log y_{t-1}
    elif target in DESEASON:
        z = adjusted_change(np.log(y), int(season), span(target, season))
        z[:k] = np.nan
    else:
        z[k:] = y[k:] - y[:-k]  # z_t = y_t - y_{t-k}  (diff: k = 1, sdiff: k = m)
    return z


def to_levels(y_origin, z_path, target: str, history=None, season: int = 1) -> np.ndarray:
    """Forecast path of z (M, H) from origins with level y_origin (M,) -> levels (M, H).

    ``history (M, L)``: for sdiff, the last m levels up to each origin (oldest first); for
    deseason, the last ``history_length`` (NaN before the series' start)."""
    z_path = np.asarray(z_path, np.float64)
    if target == "level":
        return z_path
    y0 = np.asarray(y_origin, np.float64)[:, None]
    if target == "diff":
        return y0 + np.cumsum(z_path, axis=1)  # y_{t+h} = y_t + sum_k z_{t+k}
    if target == "logreturn":
        return y0 * np.exp(np.cumsum(z_path, axis=1))  # y_{t+h} = y_t exp(sum_k z_{t+k})
    if target in DESEASON:
        return _deseason_levels(np.asarray(history, np.float64), z_path, season, span(target, season))
    levels = np.concatenate([np.asarray(history, np.float64), np.zeros_like(z_path)], axis=1)
    m = levels.shape[1] - z_path.shape[1]
    for h in range(z_path.shape[1]):  # y_{t+h} = y_{t+h-m} + z_{t+h}
        levels[:, m + h] = levels[:, h] + z_path[:, h]
    return levels[:, m:]


def _deseason_levels(history, z_path, m: int, q: int) -> np.ndarray:
    """The deseason targets' levels, step by step: c_{t+h} from the log levels so far (forecasts
    included), d_{t+h} = b_{t+h-1} + z_{t+h} with b the mean of the last q adjusted levels."""
    L, H = history.shape[1], z_path.shape[1]
    x = np.concatenate([np.log(history), np.zeros_like(z_path)], axis=1)
    d = x[:, L - q : L] - seasonal_component(x[:, :L], m, np.arange(L - q, L))  # d_{t-q+1} .. d_t
    for h in range(H):  # as next_base, with the adjusted levels carried from step to step
        c = seasonal_component(x[:, : L + h], m, [L + h])[:, 0]  # c_{t+h}: reads x up to t + h - 1
        d_new = d[:, -q:].mean(axis=1) + z_path[:, h]  # d_{t+h} = b_{t+h-1} + z_{t+h}
        x[:, L + h] = d_new + c  # x_{t+h} = d_{t+h} + c_{t+h}
        d = np.concatenate([d[:, 1:], d_new[:, None]], axis=1)
    return np.exp(x[:, L:])


def check_target(values, target: str, where: str = "the series") -> None:
    if target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target in ("logreturn", *DESEASON) and np.any(np.asarray(values) <= 0):
        raise UserError(
            f"--target {target} needs positive values, but {where} has values <= 0; "
            f"use --target diff or level"
        )


def first_origin(window: int, target: str, season: int = 1) -> int:
    """The earliest origin whose window is complete: W - 1 + lag."""
    return window - 1 + lag(target, season)


def histories(y, origins, target: str, season: int = 1):
    """What ``to_levels`` needs besides ``y[origins]``: the last m levels (sdiff), the last
    ``history_length`` levels (deseason; NaN before the series' start), else None."""
    if target not in SEASONAL:
        return None
    m = lag(target, season) if target == "sdiff" else history_length(target, season)
    at = np.asarray(origins)[:, None] + np.arange(-m + 1, 1)[None, :]
    y = np.asarray(y, np.float64)
    return np.where(at >= 0, y[np.clip(at, 0, None)], np.nan)
