"""Forecast errors in the series' own units, and the Diebold-Mariano test.

With actual ``y``, forecast ``f``, error ``e = y - f`` over M test points::

    RMSE  = sqrt(mean(e^2))                         MAE  = mean(|e|)
    MAPE  = 100 mean(|e| / |y|)            (%)      sMAPE = 100 mean(2 |e| / (|y| + |f|))   (%)
    MASE  = MAE / mean_t |y_t - y_{t-m}|   the denominator over the *training* part, m the
            season (Hyndman & Koehler 2006; m = 1 without one): MASE < 1 beats the in-sample
            (seasonal) naive forecast.
    directional accuracy = mean(sign(f - y_origin) == sign(y - y_origin)), the share of test
            points where the forecast moves the right way from the value at the forecast
            origin; a forecast of "no change" counts as wrong. None when a method never
            predicts a change (persistence).

Diebold-Mariano (1995) with the Harvey, Leybourne & Newbold (1997) small-sample correction,
loss differential ``d_t = L(e1_t) - L(e2_t)`` for an h-step forecast::

    d_bar = mean(d)           gamma_k = (1/M) sum_{t>=k} (d_t - d_bar)(d_{t-k} - d_bar)
    DM    = d_bar / sqrt((gamma_0 + 2 sum_{k=1}^{h-1} gamma_k) / M)
    DM*   = DM * sqrt((M + 1 - 2h + h(h-1)/M) / M)      p = 2 (1 - F_t(|DM*|; M - 1))

A negative statistic means the first forecast (the model) has the smaller loss.

Intervals and quantiles, with q_tau the forecast quantile at level tau::

    coverage(b)  = mean(q_lo <= y <= q_hi)       the central interval lo = (1 - b) / 2, hi = 1 - lo
    width(b)     = mean(q_hi - q_lo)
    pinball      = mean over the intervals' levels and the median of
                   mean(max(tau (y - q_tau), (tau - 1) (y - q_tau)))
    CRPS         = 2 int_0^1 pinball_tau d tau  ~  2 mean over tau = 0.01 .. 0.99 (Gneiting &
                   Raftery 2007): the distribution's error in the series' units (MAE for a point)
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("rmse", "mae", "mape", "smape", "mase", "directional_accuracy")


def rmse(y, f) -> float:
    e = np.asarray(y, np.float64) - np.asarray(f, np.float64)
    return float(np.sqrt(np.mean(e * e)))


def mae(y, f) -> float:
    return float(np.mean(np.abs(np.asarray(y, np.float64) - np.asarray(f, np.float64))))


def mape(y, f) -> float:
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    if np.any(y == 0):
        return float("nan")  # undefined where the actual value is zero
    return float(100.0 * np.mean(np.abs(y - f) / np.abs(y)))


def smape(y, f) -> float:
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    denom = np.abs(y) + np.abs(f)
    ratio = np.divide(2.0 * np.abs(y - f), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100.0 * np.mean(ratio))


def naive_scale(y_train) -> float:
    """MASE's denominator: mean |y_t - y_{t-1}| over the training part."""
    y_train = np.asarray(y_train, np.float64)
    return float(np.mean(np.abs(np.diff(y_train))))


def mase(y, f, scale: float) -> float:
    return mae(y, f) / scale if scale > 0 else float("nan")


def directional_accuracy(y, f, y_origin):
    """Share of points where the forecast's move from ``y_origin`` has the actual move's sign."""
    y, f, y0 = (np.asarray(a, np.float64) for a in (y, f, y_origin))
    step = f - y0
    moved = np.where(
        np.abs(step) > 1e-9 * np.maximum(np.abs(y0), 1.0), np.sign(step), 0.0
    )  # rounding is no move
    if not np.any(moved):
        return None  # never predicts a direction
    return float(np.mean((moved == np.sign(y - y0)) & (moved != 0)))


def all_metrics(y, f, y_origin, scale: float) -> dict:
    """Every metric of ``METRICS`` as plain floats (None where undefined)."""
    out = {
        "rmse": rmse(y, f),
        "mae": mae(y, f),
        "mape": mape(y, f),
        "smape": smape(y, f),
        "mase": mase(y, f, scale),
        "directional_accuracy": directional_accuracy(y, f, y_origin),
    }
    return {k: (None if v is None or not math.isfinite(v) else v) for k, v in out.items()}


# ----------------------------------------------------------------------------- intervals


def level_index(levels, level: float) -> int:
    """The index of ``level`` in ``levels`` (KeyError if absent)."""
    k = int(np.argmin(np.abs(np.asarray(levels) - level)))
    if abs(levels[k] - level) > 1e-9:
        raise KeyError(f"quantile level {level} was not computed")
    return k


def pinball(y, q, tau: float) -> float:
    r = np.asarray(y, np.float64) - np.asarray(q, np.float64)
    return float(np.mean(np.maximum(tau * r, (tau - 1.0) * r)))


def interval_metrics(y, q, levels, intervals) -> dict:
    """``coverage`` and ``interval_width`` per interval (keys "0.8", ...), ``pinball`` and
    ``crps`` of quantiles ``q (M, L)`` at ``levels (L,)`` (which hold 0.01 .. 0.99 and every
    interval's bounds) for the actual values ``y (M,)``."""
    y, q = np.asarray(y, np.float64), np.asarray(q, np.float64)
    coverage, width, taus = {}, {}, [0.5]
    for b in intervals:
        lo, hi = round((1 - b) / 2, 10), round((1 + b) / 2, 10)
        qlo, qhi = q[:, level_index(levels, lo)], q[:, level_index(levels, hi)]
        coverage[f"{b:g}"] = float(np.mean((y >= qlo) & (y <= qhi)))
        width[f"{b:g}"] = float(np.mean(qhi - qlo))
        taus += [lo, hi]
    grid = [level_index(levels, t) for t in np.round(np.arange(1, 100) / 100, 2)]
    return {
        "coverage": coverage,
        "interval_width": width,
        "pinball": float(np.mean([pinball(y, q[:, level_index(levels, t)], t) for t in sorted(set(taus))])),
        "crps": 2.0 * float(np.mean([pinball(y, q[:, k], levels[k]) for k in grid])),
    }


# ----------------------------------------------------------------------------- distributions


def normal_cdf(x: float) -> float:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))  # even step
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))  # odd step
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b  # symmetry for convergence


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail P(|T| >= |t|) of Student's t with ``df`` degrees of freedom:
    I_{df / (df + t^2)}(df / 2, 1 / 2)."""
    if not math.isfinite(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


# ----------------------------------------------------------------------------- Diebold-Mariano


def dm_test(e1, e2, horizon: int = 1, loss: str = "squared") -> dict:
    """Diebold-Mariano test of equal accuracy with the HLN correction.

    ``e1, e2``: errors (M,) of the two forecasts on the same targets; ``horizon``: h.
    Returns ``{"statistic", "p_value", "n", "horizon", "loss"}``; statistic and p-value
    are None when the two forecasts are the same (up to rounding) or the loss differential
    has no variance.
    """
    e1, e2 = np.asarray(e1, np.float64), np.asarray(e2, np.float64)
    if e1.shape != e2.shape or e1.ndim != 1:
        raise ValueError(
            f"dm_test: errors must be two 1-D arrays of the same length, got {e1.shape}, {e2.shape}"
        )
    if loss == "squared":
        d = e1 * e1 - e2 * e2
    elif loss == "absolute":
        d = np.abs(e1) - np.abs(e2)
    else:
        raise ValueError(f"dm_test: loss must be 'squared' or 'absolute', got {loss!r}")
    M, h = len(d), int(horizon)
    out: dict[str, float | int | str | None] = {
        "statistic": None,
        "p_value": None,
        "n": M,
        "horizon": h,
        "loss": loss,
    }
    scale = float(np.mean(np.abs(e1)) + np.mean(np.abs(e2)))
    if M < 2 or np.all(np.abs(e1 - e2) <= 1e-9 * max(scale, 1e-300)):
        return out  # the same forecasts (up to rounding): no test
    dc = d - d.mean()
    gamma = [float(np.dot(dc[k:], dc[: M - k])) / M for k in range(min(h, M))]  # autocovariances
    V = gamma[0] + 2.0 * sum(gamma[1:])
    if not V > 0:
        return out
    dm = float(d.mean()) / math.sqrt(V / M)
    correction = (M + 1 - 2 * h + h * (h - 1) / M) / M
    if correction <= 0:
        return out
    stat = dm * math.sqrt(correction)
    out.update(statistic=stat, p_value=t_sf2(stat, M - 1))
    return out
