"""The series' frequency, read off its dates, and the season it implies.

The usual (median) step between consecutive dates decides::

    step (days)    frequency        season m     (the seasonal naive forecast repeats y_{t+h-m})
    1              daily            7            (a week)
    1, with ~1/5 of the steps 3 days (Friday -> Monday)
                   business-daily   5            (a trading week)
    7              weekly           52
    28 .. 31       monthly          12
    89 .. 92       quarterly        4
    181 .. 184     half-yearly      2
    365 .. 366     yearly           1            (no season)
    other          every N days     1

``--season N`` overrides m (1: no season). The season sets the seasonal-naive baseline, the
seasonal MASE (its denominator is the in-sample seasonal naive error, Hyndman & Koehler 2006)
and the default window (at least one season).
"""

from __future__ import annotations

import numpy as np

FREQUENCIES = {
    "daily": 7,
    "business-daily": 5,
    "weekly": 52,
    "monthly": 12,
    "quarterly": 4,
    "half-yearly": 2,
    "yearly": 1,
}


def detect_frequency(dates) -> tuple[str, int]:
    """``(frequency, season)`` of ascending ``datetime64[D]`` dates (see the module table)."""
    days = np.asarray(dates, dtype="datetime64[D]")
    if len(days) < 3:
        return "unknown", 1
    step = np.diff(days).astype(np.int64)
    usual = int(np.median(step))
    if usual == 1:
        weekend = np.mean(step == 3)
        weekday = days.astype(np.int64) % 7  # 1970-01-01 was a Thursday: 2 Saturday, 3 Sunday
        if 0.1 <= weekend <= 0.3 and not np.isin(weekday, [2, 3]).any():
            return "business-daily", 5
        return "daily", 7
    for name, lo, hi in (
        ("weekly", 7, 7),
        ("monthly", 28, 31),
        ("quarterly", 89, 92),
        ("half-yearly", 181, 184),
        ("yearly", 365, 366),
    ):
        if lo <= usual <= hi:
            return name, FREQUENCIES[name]
    return f"every {usual} days", 1


def seasonal_scale(y_train, season: int) -> float:
    """The seasonal MASE's denominator: ``mean |y_t - y_{t-m}|`` over the training part (m = 1:
    the one-step naive error)."""
    y_train = np.asarray(y_train, np.float64)
    m = max(int(season), 1)
    if len(y_train) <= m:
        m = 1
    return float(np.mean(np.abs(y_train[m:] - y_train[:-m])))
