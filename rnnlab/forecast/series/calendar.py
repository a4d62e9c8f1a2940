"""The series' frequency, read off its dates, and the season it implies.

The frequency is a pandas offset alias (``dates.infer_freq``: ``pd.infer_freq``, or the grid
that the bulk of the dates follow when rows are missing); its name and season are::

    alias                 frequency        season m     (the seasonal naive forecast repeats y_{t+h-m})
    15min, 30min ...      sub-hourly       steps a day (at most 96), else steps an hour
    h                     hourly           24           (a day)
    D                     daily            7            (a week)
    B                     business-daily   5            (a trading week)
    W-SUN, W-WED ...      weekly           52
    MS, ME                monthly          12
    QS-JAN, QE-DEC ...    quarterly        4
    6MS, 2QS ...          half-yearly      2
    YS-JAN, YE-DEC ...    yearly           1            (no season)
    10D, 2W ...           every N days     1 (52 / N for every N weeks)
    (none)                irregular        1

``--season N`` overrides m (1: no season); ``--freq ALIAS`` the alias. The season sets the
seasonal-naive baseline, the seasonal MASE (its denominator is the in-sample seasonal naive
error, Hyndman & Koehler 2006) and the default window (at least one season).
"""

from __future__ import annotations

import numpy as np

from rnnlab.forecast.series import dates as Dt


def detect_frequency(dates) -> tuple[str, int]:
    """``(frequency, season)`` of ascending dates (see the module table): the name and season of
    their alias (``dates.label(dates.infer_freq(dates))``); ``("unknown", 1)`` for < 3 dates."""
    d = np.asarray(dates).astype(Dt.UNIT)
    if len(d) < 3:
        return "unknown", 1
    return Dt.label(Dt.infer_freq(d))


def seasonal_scale(y_train, season: int) -> float:
    """The seasonal MASE's denominator: ``mean |y_t - y_{t-m}|`` over the training part (m = 1:
    the one-step naive error)."""
    y_train = np.asarray(y_train, np.float64)
    m = max(int(season), 1)
    if len(y_train) <= m:
        m = 1
    return float(np.mean(np.abs(y_train[m:] - y_train[:-m])))
