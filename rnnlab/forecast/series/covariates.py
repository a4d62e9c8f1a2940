"""Covariates: more inputs per step beside the series' own (scaled) value.

Two kinds, each an array aligned with the series' time index (row tau = the value at time tau):

    past   (n, P)     observed with the series (``--covariates``): known up to the origin only
    future (n_f, F)   known ahead (``--calendar``, ``--future-covariates``): n_f may run past the
                      end of the series, as far as a forecast needs

The window ending at origin t has W steps tau = t-W+1 .. t; step tau's inputs are::

    [ s_tau / nu,  (past_tau - mean) / sd,  (future_{tau+1} - mean) / sd ]

so the last step carries the future covariates of the target's own time t+1 (DeepAR's
alignment). Each column is standardised by its mean and sd over the training part of its
series. A recursive forecast of step h > 1 would need past covariates after the origin, which
nobody knows: past covariates forecast one step (recursive) or ``horizon`` steps (direct).
``calendar`` derives the future-known calendar columns from dates and their frequency.
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError

# the calendar's columns by frequency: (name, period, the date's position in the period)
_CYCLES = {
    "daily": (("day of week", 7),),
    "business-daily": (("day of week", 7),),
    "weekly": (("week of year", 52.1775),),
    "monthly": (("month", 12),),
    "quarterly": (("quarter", 4),),
    "half-yearly": (("half", 2),),
}


def calendar(dates, freq: str) -> np.ndarray:
    """``(n, 2 C)`` sin / cos of each cycle of ``freq`` at the dates (datetime64[D]); UserError
    for a frequency without one (yearly, irregular)."""
    if freq not in _CYCLES:
        raise UserError(f"--calendar: {freq} data has no calendar cycle to encode (daily .. half-yearly)")
    d = np.asarray(dates, dtype="datetime64[D]")
    months = d.astype("datetime64[M]").astype(np.int64) % 12  # 0 = January
    position = {
        "day of week": (d.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday: 0 = Monday
        "week of year": (d - d.astype("datetime64[Y]")).astype(np.int64) / 7.0,
        "month": months,
        "quarter": months // 3,
        "half": months // 6,
    }
    cols = []
    for name, period in _CYCLES[freq]:
        angle = 2 * np.pi * position[name] / period
        cols += [np.sin(angle), np.cos(angle)]
    return np.stack(cols, axis=1)


def calendar_names(freq: str) -> list[str]:
    return [f"{kind} {name}" for name, _ in _CYCLES.get(freq, ()) for kind in ("sin", "cos")]


def as_2d(a, name: str, n_min: int | None = None):
    """``a`` as float64 ``(n, k)`` (a 1-D array is one column), finite; None stays None."""
    if a is None:
        return None
    a = np.asarray(a, np.float64)
    a = a[:, None] if a.ndim == 1 else a
    if a.ndim != 2 or not np.isfinite(a).all():
        raise UserError(f"{name} covariates must be a finite (n, k) array, got shape {a.shape}")
    if n_min is not None and len(a) < n_min:
        raise UserError(f"{name} covariates have {len(a)} rows; the series needs {n_min}")
    return a


def fit_scaler(past, future, n: int):
    """``(mean, sd)`` of every covariate column over the training part (rows < n)."""
    cols = [c[:n] for c in (past, future) if c is not None]
    if not cols:
        return None
    block = np.concatenate(cols, axis=1)
    sd = block.std(axis=0)
    return block.mean(axis=0), np.where(sd > 0, sd, 1.0)


def windows(past, future, origins, W: int, scaler) -> np.ndarray | None:
    """``(M, W, P + F)`` standardised covariate windows for the origins (module docstring)."""
    if scaler is None:
        return None
    steps = np.asarray(origins)[:, None] + np.arange(-W + 1, 1)[None, :]  # (M, W) times tau
    parts = []
    if past is not None:
        parts.append(past[steps])  # past_tau
    if future is not None:
        if steps.max() + 1 >= len(future):
            short = steps.max() + 2 - len(future)
            raise UserError(
                f"a future covariate is missing: the forecast needs its value {short} step(s) past "
                f"the {len(future)} given (pass them with --future-csv)"
            )
        parts.append(future[steps + 1])  # future_{tau+1}
    mean, sd = scaler
    return (np.concatenate(parts, axis=2) - mean) / sd


def window_fn(f, past, future, origins, scaler):
    """``shift -> (M, W, C)``: the covariate windows ``shift`` steps after ``origins`` (what
    ``uncertainty.roll`` reads); None without covariates."""
    if scaler is None:
        return None
    return lambda shift: windows(past, future, np.asarray(origins) + shift, f.window, scaler)


def for_forecast(f, series, past, future, origins, steps: int):
    """``window_fn`` of a forecast by the fitted ``f``, its covariates checked against the fit."""
    P, F = getattr(f, "n_past_", 0), getattr(f, "n_future_", 0)
    if not P and not F:
        if past is not None or future is not None:
            raise UserError("this model was fitted without covariates")
        return None
    past, future = as_2d(past, "past"), as_2d(future, "future")
    if (0 if past is None else past.shape[1]) != P or (0 if future is None else future.shape[1]) != F:
        raise UserError(f"this model needs {P} past and {F} future covariate column(s)")
    if P and steps > f._n_out:
        raise UserError(
            f"past covariates are unknown after the origin: this model forecasts {f._n_out} step(s)"
        )
    ids = getattr(f, "series_ids_", None) or []
    k = 0 if series is None else ids.index(str(series))
    return window_fn(f, past, future, origins, f.cov_scalers_[k])
