"""The M4 competition's accuracy measures and its Naive2 benchmark, as the organisers compute them.

Transcribed from ``Benchmarks and Evaluation.R`` in the organisers' repository
(github.com/Mcompetitions/M4-methods), the code that produced the published benchmark figures:

    sMAPE_t = 200 |y_t - f_t| / (|y_t| + |f_t|)                       (per point, in %)
    MASE_t  = |y_t - f_t| / (1/(n-m) sum_{j=m+1..n} |x_j - x_{j-m}|)    (x: the training series)
    OWA     = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2

sMAPE and MASE of a set are the means over every point of every series' horizon (all series
have the same horizon, so this is the mean of the per-series means); OWA is computed from the
set's two means, not per series.

Naive2 is the naive forecast of the seasonally adjusted series, reseasonalised: a series is
seasonal when its autocorrelation at lag m exceeds the 90% one-sided limit
``1.645 / sqrt(n) * sqrt(1 + 2 sum_{k<m} r_k^2)`` (R's ``SeasonalityTest``; it needs n >= 3m);
the seasonal indices are those of R's ``decompose(type="multiplicative")`` (a centred 2xm moving
average for even m, the mean ratio to it per position in the season, normalised to mean 1).
"""

from __future__ import annotations

import numpy as np

TCRIT = 1.645  # the one-sided 90% normal quantile of R's SeasonalityTest


def smape_points(y, f) -> np.ndarray:
    """Per-point sMAPE in percent: 200 |y - f| / (|y| + |f|)."""
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    return 200.0 * np.abs(y - f) / (np.abs(y) + np.abs(f))


def mase_scale(insample, m: int) -> float:
    """MASE's denominator: the in-sample mean absolute error of the seasonal naive forecast at lag m."""
    x = np.asarray(insample, np.float64)
    if len(x) <= m:
        raise ValueError(f"the training series needs more than m={m} values for MASE, got {len(x)}")
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase_points(insample, y, f, m: int) -> np.ndarray:
    """Per-point MASE: |y - f| over ``mase_scale(insample, m)``."""
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    return np.abs(y - f) / mase_scale(insample, m)


def acf(x, max_lag: int) -> np.ndarray:
    """R's ``acf``: r_k = sum_{t} (x_t - mean)(x_{t+k} - mean) / sum_t (x_t - mean)^2, k = 1..max_lag."""
    x = np.asarray(x, np.float64)
    d = x - x.mean()
    c0 = float(d @ d)
    return np.array([float(d[k:] @ d[:-k]) / c0 for k in range(1, max_lag + 1)])


def seasonality_test(x, m: int) -> bool:
    """R's ``SeasonalityTest``: seasonal when |r_m| > 1.645 / sqrt(n) * sqrt(1 + 2 sum_{k=1}^{m-1} r_k^2).

    False when n < 3m (too short to tell)."""
    x = np.asarray(x, np.float64)
    if m <= 1 or len(x) < 3 * m:
        return False
    r = acf(x, m)
    limit = TCRIT / np.sqrt(len(x)) * np.sqrt(1.0 + 2.0 * np.sum(r[: m - 1] ** 2))
    return bool(abs(r[m - 1]) > limit)


def seasonal_indices(x, m: int) -> np.ndarray:
    """R's ``decompose(x, "multiplicative")$figure``: indices (m,) of positions 0..m-1, mean 1.

    Trend: a centred moving average (weights 1/m, the two ends 1/(2m) when m is even);
    index of position i: the mean of x_t / trend_t over the t = i (mod m) where the trend exists.
    """
    x = np.asarray(x, np.float64)
    n = len(x)
    if n < 2 * m:
        raise ValueError(f"decompose needs at least two seasons ({2 * m} values), got {n}")
    w = np.full(m + 1, 1.0 / m) if m % 2 == 0 else np.full(m, 1.0 / m)
    if m % 2 == 0:
        w[0] = w[-1] = 0.5 / m
    half = len(w) // 2
    trend = np.full(n, np.nan)
    trend[half : n - half] = np.convolve(x, w, mode="valid")
    ratio = x / trend
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    return figure / figure.mean()


def naive2(x, h: int, m: int) -> np.ndarray:
    """The M4 Naive2 forecast (h,): the last seasonally adjusted value, times the future's indices."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if m > 1 and seasonality_test(x, m):
        si = seasonal_indices(x, m)
        adjusted = x / si[np.arange(n) % m]
        future = si[np.arange(n, n + h) % m]
    else:
        adjusted, future = x, np.ones(h)
    return adjusted[-1] * future


def seasonal_naive(x, h: int, m: int) -> np.ndarray:
    """The last season repeated (R's ``naive_seasonal``)."""
    x = np.asarray(x, np.float64)
    return np.resize(x[-m:], h)


def score(train: list, test: list, forecasts: list, m: int) -> dict:
    """sMAPE and MASE of a set: the means over every point of every series' horizon."""
    s = np.concatenate([smape_points(y, f) for y, f in zip(test, forecasts)])
    q = np.concatenate([mase_points(x, y, f, m) for x, y, f in zip(train, test, forecasts)])
    return {"smape": float(np.mean(s)), "mase": float(np.mean(q))}


def owa(result: dict, naive2_result: dict) -> float:
    """Overall weighted average: (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2 on the set's means."""
    return 0.5 * (result["smape"] / naive2_result["smape"] + result["mase"] / naive2_result["mase"])
