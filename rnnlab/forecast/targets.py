"""What the network models (``target``), and the way back to levels::

    level      z_t = y_t                          y_hat_{t+1} = z_hat_{t+1}
    diff       z_t = y_t - y_{t-1}                y_hat_{t+1} = y_t + z_hat_{t+1}
    logreturn  z_t = log y_t - log y_{t-1}        y_hat_{t+1} = y_t * exp(z_hat_{t+1})
    sdiff      z_t = y_t - y_{t-m}                y_hat_{t+h} = y_hat_{t+h-m} + z_hat_{t+h}
               (the seasonal difference, season m; "no change" is the seasonal naive forecast,
               and a step past the season builds on the forecast a season before it)

A window of ``W`` transformed values ends at the forecast origin ``t``: ``z_{t-W+1} .. z_t``
(this reads ``W + lag`` levels ``y_{t-W-lag+1} .. y_t``, lag 0, 1, 1 and m).
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError

TARGETS = ("level", "diff", "logreturn", "sdiff")


def lag(target: str, season: int = 1) -> int:
    """Levels consumed before the first transformed value (0 for level, 1 for changes, m for
    the seasonal difference)."""
    return {"level": 0, "sdiff": max(int(season), 1)}.get(target, 1)


def transform(y, target: str, season: int = 1) -> np.ndarray:
    """Levels (n,) -> z (n,); the first ``lag`` values of z are NaN (no earlier value)."""
    y = np.asarray(y, np.float64)
    if target == "level":
        return y.copy()
    k = lag(target, season)
    z = np.full_like(y, np.nan)
    if target == "logreturn":
        z[1:] = np.log(y[1:]) - np.log(y[:-1])  # z_t = log y_t - log y_{t-1}
    else:
        z[k:] = y[k:] - y[:-k]  # z_t = y_t - y_{t-k}  (diff: k = 1, sdiff: k = m)
    return z


def to_levels(y_origin, z_path, target: str, history=None) -> np.ndarray:
    """Forecast path of z (M, H) from origins with level y_origin (M,) -> levels (M, H).

    ``history (M, m)``: for sdiff, the last m levels up to each origin (oldest first)."""
    z_path = np.asarray(z_path, np.float64)
    if target == "level":
        return z_path
    y0 = np.asarray(y_origin, np.float64)[:, None]
    if target == "diff":
        return y0 + np.cumsum(z_path, axis=1)  # y_{t+h} = y_t + sum_k z_{t+k}
    if target == "logreturn":
        return y0 * np.exp(np.cumsum(z_path, axis=1))  # y_{t+h} = y_t exp(sum_k z_{t+k})
    levels = np.concatenate([np.asarray(history, np.float64), np.zeros_like(z_path)], axis=1)
    m = levels.shape[1] - z_path.shape[1]
    for h in range(z_path.shape[1]):  # y_{t+h} = y_{t+h-m} + z_{t+h}
        levels[:, m + h] = levels[:, h] + z_path[:, h]
    return levels[:, m:]


def check_target(values, target: str, where: str = "the series") -> None:
    if target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == "logreturn" and np.any(np.asarray(values) <= 0):
        raise UserError(
            f"--target logreturn needs positive values, but {where} has values <= 0; "
            f"use --target diff or level"
        )


def first_origin(window: int, target: str, season: int = 1) -> int:
    """The earliest origin whose window is complete: W - 1 + lag."""
    return window - 1 + lag(target, season)


def histories(y, origins, target: str, season: int = 1):
    """What ``to_levels`` needs besides ``y[origins]``: the last m levels (sdiff), else None."""
    if target != "sdiff":
        return None
    m = lag(target, season)
    return np.asarray(y, np.float64)[np.asarray(origins)[:, None] + np.arange(-m + 1, 1)[None, :]]
