"""The covariates `rnnlab forecast predict` hands a model fitted with them: past columns over
the history, future-known columns over the history and the steps ahead (those from
``--future-csv``, one row per forecast date), calendar columns from the dates."""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.evaluation.panel import load_panel
from rnnlab.forecast.series import covariates as Cov
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import dates as Dt


def names(f) -> tuple[list, list]:
    """The model's ``(past, future)`` covariate column names."""
    spec = getattr(f, "covariate_spec_", None) or {}
    return list(spec.get("past", [])), list(spec.get("future", []))


def arrays(f, series: D.Series, steps: int, future_csv, ahead, id_column=None, sid=None) -> tuple:
    """``(past (n, P), future (n + steps, F))`` for a forecast of ``steps`` after ``series`` at
    the dates ``ahead`` (``dates.future_dates``; ``--future-csv`` rows are matched on them)
    (``sid``: its id in a model of many series, whose ``--future-csv`` is in long format with
    ``id_column``)."""
    spec = getattr(f, "covariate_spec_", None) or {}
    past_names, future_names = names(f)
    missing = [c for c in past_names + future_names if c not in series.covariates]
    if missing:
        raise UserError(f"the series lacks the model's covariate column(s) {', '.join(missing)}")
    past = np.stack([series.covariates[c] for c in past_names], axis=1) if past_names else None
    ahead = np.asarray(ahead)
    dated = ahead.dtype.kind == "M"  # integer steps (--freq none) have no dates to match on
    if (future_names or spec.get("calendar")) and not dated:
        raise UserError(
            "--freq none gives integer steps, and this model reads covariates at the forecast dates: "
            "pass --freq ALIAS"
        )
    blocks = []
    if future_names:
        if future_csv is None:
            need = ", ".join(future_names)
            raise UserError(f"this model reads {need} ahead: pass their future values with --future-csv")
        known = np.stack([series.covariates[c] for c in future_names], axis=1)
        rows = _future_rows(future_csv, series, future_names, ahead, id_column, sid)
        blocks.append(np.concatenate([known, rows]))
    if spec.get("calendar"):
        blocks.append(Cov.calendar(np.concatenate([series.dates, ahead]), spec["calendar"]))
    future = np.concatenate(blocks, axis=1) if blocks else None
    return past, future


def _future_rows(path, series: D.Series, columns: list, dates, id_column=None, sid=None) -> np.ndarray:
    """The rows of ``--future-csv`` at ``dates`` (len(dates), len(columns)), read in the series'
    ``--date-format`` and matched on the wall-clock time (daily and coarser series: on the day);
    a missing date or value is one clear error. A model of many series (``sid``) reads the rows
    of that series from a long-format file (``id_column``)."""
    date_column, fmt = series.date_column, series.date_format
    if sid is None:
        fut = D.load_series(path, columns[0], date_column, "none", tuple(columns), fmt, Dt.NONE)
    else:
        if id_column is None:
            raise UserError("a model of many series reads a long-format --future-csv: name its --id-column")
        panel = load_panel(path, id_column, columns[0], date_column, "none", tuple(columns), fmt, Dt.NONE)
        if sid not in panel:
            raise UserError(f"{path} has no rows of series {sid!r} in column {id_column!r}")
        fut = panel[sid]
    unit = Dt.UNIT if Dt.is_sub_daily(series.freq_alias) else "datetime64[D]"
    key = lambda d: np.asarray(d).astype(unit).astype(np.int64)  # noqa: E731
    if fut.tz != series.tz and fut.tz is not None and series.tz is not None:
        raise UserError(f"{path} is in time zone {fut.tz}, the series in {series.tz}: write both alike")
    index = {int(k): i for i, k in enumerate(key(fut.dates))}
    absent = [s for s, k in zip(series.date_strings(dates), key(dates)) if int(k) not in index]
    if absent:
        raise UserError(
            f"{path} has no row for {', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}: "
            f"the forecast needs the future covariates at every date it forecasts"
        )
    rows = [index[int(k)] for k in key(dates)]
    return np.stack([fut.covariates[c][rows] for c in columns], axis=1)
