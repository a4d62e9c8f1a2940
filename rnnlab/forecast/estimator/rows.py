"""A forecast as a table: the next ``steps`` values after each history, one row per series and
step, with the central intervals as the columns statsforecast users know::

    unique_id, ds, mean, lo-80, hi-80, lo-95, hi-95

``rows_many`` asks any fitted forecaster (a ``Forecaster`` or a ``Combination``) for the points
and quantiles of many series in one batch; ``frame`` makes a DataFrame of them. The DataFrame
API (``frames.predict_frame``) and the future after a backtest (``future.panel_rows``) share them.
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.estimator.heads import interval_levels
from rnnlab.forecast.series.dates import date_strings, future_dates


def level_name(b: float) -> str:
    """``0.8`` -> ``"80"``, ``0.975`` -> ``"97.5"``: the percent in statsforecast's column names."""
    return f"{round(100 * float(b), 8):g}"


def columns(intervals) -> list:
    """The columns of a forecast frame: ``unique_id, ds, mean`` and a pair per interval."""
    cols = ["unique_id", "ds", "mean"]
    for b in sorted(intervals):
        cols += [f"lo-{level_name(b)}", f"hi-{level_name(b)}"]
    return cols


def rows_many(model, items: list, steps: int, intervals=None, progress=None) -> list:
    """The rows of every ``(series, sid, past, future, name)`` in ``items``, batched: one
    ``forecast_many`` and one ``quantiles_many`` for them all (one forward per network and step
    for every series of a panel). ``progress(done, total)``: the sample paths' progress."""
    sets = [(s.values, [len(s) - 1], sid, past, fut) for s, sid, past, fut, _ in items]
    means = [m[0] for m in model.forecast_many(sets, steps)]
    for (s, *_), mean in zip(items, means):
        if not np.isfinite(mean).all():
            raise UserError(
                f"the forecast of {s.path} is not a finite number (the series' scale is far from "
                "the training one's)"
            )
    intervals = tuple(model.intervals if intervals is None else intervals) if model.probabilistic else ()
    qs = [np.empty((steps, 0))] * len(items)  # (h, L) quantiles of each series; none asked: L = 0
    if intervals:
        levels = interval_levels(intervals)
        qs = [q[0] for q in model.quantiles_many(sets, levels, steps, True, progress)]
    rows = []
    for (s, sid, _, _, name), mean, q in zip(items, means, qs):
        ds = date_strings(future_dates(s, steps), getattr(s, "freq_alias", None), getattr(s, "tz", None))
        uid = str(name if name is not None else sid if sid is not None else s.column)
        for k in range(steps):
            row = {"unique_id": uid, "ds": ds[k], "mean": float(mean[k])}
            for b in sorted(intervals):
                lo, hi = levels.index(round((1 - b) / 2, 10)), levels.index(round((1 + b) / 2, 10))
                row[f"lo-{level_name(b)}"] = float(q[k, lo])
                row[f"hi-{level_name(b)}"] = float(q[k, hi])
            rows.append(row)
    return rows


def frame(rows: list):
    """The rows as a pandas DataFrame, ``ds`` as timestamps (integers with ``--freq none``)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(rows[0]) if rows else columns(()))
    if len(df) and str(df["ds"].iloc[0]).lstrip("-").isdigit():
        df["ds"] = df["ds"].astype(np.int64)  # --freq none: steps ahead
    elif len(df):
        try:
            df["ds"] = pd.to_datetime(df["ds"], format="ISO8601")
        except (ValueError, TypeError):  # offsets that change (a zone with summer time): as UTC
            df["ds"] = pd.to_datetime(df["ds"], format="ISO8601", utc=True)
    return df
