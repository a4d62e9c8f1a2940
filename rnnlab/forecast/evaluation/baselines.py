"""The baselines every forecast must be compared with (Hyndman & Athanasopoulos, FPP3 5.2).

For a forecast origin t (the last value seen is y_t) and steps h = 1..H::

    persistence      y_hat_{t+h} = y_t                                   (the naive forecast)
    drift            y_hat_{t+h} = y_t + h (y_t - y_0) / t               (the line from the first
                                                                         value through y_t)
    moving average   y_hat_{t+h} = mean(y_{t-W+1} .. y_t)                (the model's window W)
    seasonal naive   y_hat_{t+h} = y_{t+h-m ceil(h/m)}                   (the same season's last
                                                                         value; season m > 1)

Each uses only values up to the origin, so none of them sees the test targets.
All functions take the levels ``y (n,)`` and origins ``(M,)`` and return ``(M, H)``.
"""

from __future__ import annotations

import numpy as np

BASELINES = ("persistence", "drift", "moving_average")


def persistence(y, origins, horizon: int) -> np.ndarray:
    y, origins = np.asarray(y, np.float64), np.asarray(origins)
    return np.repeat(y[origins][:, None], horizon, axis=1)  # (M, H)


def drift(y, origins, horizon: int) -> np.ndarray:
    y, origins = np.asarray(y, np.float64), np.asarray(origins)
    if np.any(origins < 1):
        raise ValueError("drift needs at least two values before the origin")
    slope = (y[origins] - y[0]) / origins  # (M,) (y_t - y_0) / t
    h = np.arange(1, horizon + 1)[None, :]
    return y[origins][:, None] + h * slope[:, None]  # (M, H)


def moving_average(y, origins, horizon: int, window: int) -> np.ndarray:
    y, origins = np.asarray(y, np.float64), np.asarray(origins)
    if np.any(origins < window - 1):
        raise ValueError(f"moving average of {window} needs {window} values up to the origin")
    c = np.concatenate([[0.0], np.cumsum(y)])
    mean = (c[origins + 1] - c[origins + 1 - window]) / window  # (M,)
    return np.repeat(mean[:, None], horizon, axis=1)  # (M, H)


def seasonal_naive(y, origins, horizon: int, season: int) -> np.ndarray:
    y, origins = np.asarray(y, np.float64), np.asarray(origins)
    if np.any(origins < season - 1):
        raise ValueError(f"the seasonal naive forecast needs a season ({season} values) up to the origin")
    h = np.arange(1, horizon + 1)[None, :]
    back = season * np.ceil(h / season).astype(np.int64)  # m ceil(h / m) >= h
    return y[origins[:, None] + h - back]  # (M, H)


def all_baselines(y, origins, horizon: int, window: int, season: int = 1) -> dict:
    out = {
        "persistence": persistence(y, origins, horizon),
        "drift": drift(y, origins, horizon),
        "moving_average": moving_average(y, origins, horizon, window),
    }
    if season > 1 and np.min(origins) >= season - 1:
        out["seasonal_naive"] = seasonal_naive(y, origins, horizon, season)
    return out
