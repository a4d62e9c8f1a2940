"""The Python API at the command line's level: DataFrames in, dated forecasts out.

As in statsforecast and neuralforecast::

    f = Forecaster()                           # the CLI's defaults: target "auto", season from the dates
    f.fit(df)                                  # long format: unique_id, ds, y (and covariate columns)
    f.predict(12, level=[80, 95])              # DataFrame: unique_id, ds, mean, lo-80, hi-80, lo-95, hi-95
    f.predict(12, new_df=other)                # continue another history (the same ids)
    f.sample_paths(12, 500)                    # (series, 500, 12) sample paths, in f.ids_ order

``fit`` also takes a pandas Series with a DatetimeIndex (one series; its name is the id) or,
as before, an array of levels (no dates: the forecast's ``ds`` are the steps ahead, 1 .. h).

A ``Forecaster`` whose ``target`` is ``"auto"`` or whose ``season`` is None (the defaults), or
one fitted on a DataFrame, resolves them at ``fit`` as ``rnnlab forecast`` does
(``choice.fit_resolved``). The fitted model is ``model_``; the ``Forecaster`` answers for it.
This module reads the data and writes the forecasts (``rows``); it fits nothing.
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.estimator import uncertainty as U
from rnnlab.forecast.estimator.rows import columns, frame, rows_many
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import dates as Dt

FRAME_COLUMNS = ("unique_id", "ds", "y")


def resolves(f, y) -> bool:
    """Whether ``fit(y)`` goes through ``choice.fit_resolved``: a DataFrame or Series, target "auto" or
    season None; otherwise ``Forecaster._fit`` on the arrays as given."""
    import pandas as pd

    return isinstance(y, (pd.DataFrame, pd.Series)) or f.target == "auto" or f.season is None


def to_panel(data, past_covariates=(), future_covariates=()) -> dict:
    """``{id: Series}`` of a long DataFrame (``unique_id, ds, y`` and the covariate columns), a
    pandas Series with a DatetimeIndex, an array of levels or a dict of arrays; UserError (one
    line) for what does not fit."""
    import pandas as pd

    extra = tuple(past_covariates) + tuple(future_covariates)
    if isinstance(data, pd.Series):
        if not isinstance(data.index, pd.DatetimeIndex):
            return {str(data.name or "y"): _undated(data.to_numpy(np.float64), str(data.name or "y"))}
        data = pd.DataFrame({"unique_id": str(data.name or "y"), "ds": data.index, "y": data.to_numpy()})
    if isinstance(data, dict):
        return {str(k): _undated(np.asarray(v, np.float64), str(k)) for k, v in data.items()}
    if not isinstance(data, pd.DataFrame):
        y = np.asarray(data, np.float64)
        if y.ndim != 1:
            raise ValueError(f"fit expects a 1-D series of levels (n,), got shape {y.shape}")
        return {"y": _undated(y, "y")}
    missing = [c for c in FRAME_COLUMNS + extra if c not in data.columns]
    if missing:
        raise UserError(
            f"the DataFrame lacks column(s) {', '.join(missing)} (it needs unique_id, ds, y and the "
            f"covariates named; it has {', '.join(map(str, data.columns))})"
        )
    out = {}
    for key, g in data.groupby("unique_id", sort=False):
        g = g.sort_values("ds", kind="stable")
        ds = pd.DatetimeIndex(pd.to_datetime(g["ds"]))
        if ds.has_duplicates:
            raise UserError(f"series {key!r} has duplicate ds values: keep one row per date")
        tz = None if ds.tz is None else str(ds.tz)
        wall = ds.tz_localize(None) if tz else ds
        values = _numbers(g["y"], f"series {key!r}, column y")
        covs = {c: _numbers(g[c], f"series {key!r}, column {c}") for c in extra}
        alias = Dt.infer_freq(wall.to_numpy().astype(Dt.UNIT))
        freq, season = Dt.label(alias)
        s = D.Series(values, wall.to_numpy(), "<DataFrame>", "y", "ds", [], freq, season, covs, alias, tz)
        out[str(key)] = s
    return out


def _numbers(col, where: str) -> np.ndarray:
    v = np.asarray(col, np.float64)
    if not np.isfinite(v).all():
        raise UserError(f"{where}: {int((~np.isfinite(v)).sum())} value(s) missing or not finite")
    return v


def _undated(y: np.ndarray, name: str) -> D.Series:
    """A series without dates: row numbers, integer steps ahead (``--freq none``)."""
    if y.ndim != 1:
        raise ValueError(f"fit expects a 1-D series of levels (n,), got shape {y.shape}")
    dates = np.arange(len(y)).astype("datetime64[D]")
    return D.Series(y, dates, "<array>", name, "", [], "none", 1, {}, Dt.NONE, None)


def _columns(s: D.Series, names) -> np.ndarray:
    """(n, len(names)): the covariates ``names`` of ``s``, one column each."""
    return np.stack([s.covariates[c] for c in names], axis=1)


def columns_of(s: D.Series, names) -> np.ndarray | None:
    """(n, len(names)): the covariates ``names`` of ``s`` (None: no names)."""
    return _columns(s, names) if names else None


def predict_frame(f, h: int, level=None, new_df=None, futr_df=None):
    """The next ``h`` values after each fitted (or ``new_df``'s) history: a DataFrame with
    ``unique_id, ds, mean`` and ``lo-<l>``/``hi-<l>`` for each ``level`` (percent, e.g. 80, 95;
    default the model's intervals), ``ds`` the dates after each history's last one."""
    import pandas as pd

    model = _fitted(f) if new_df is None else vars(f).get("model_", f)
    h = int(h)
    if h < 1:
        raise UserError(f"h must be at least 1, got {h}")
    past_names, future_names = getattr(f, "covariate_names_", ([], []))
    panel = f.history_ if new_df is None else to_panel(new_df, past_names, future_names)
    ahead = None if futr_df is None else to_panel(futr_df, (), future_names)
    intervals = None if level is None else [_coverage(v) for v in np.atleast_1d(level)]
    items = []
    many = len(getattr(model, "series_ids_", None) or []) > 0
    for key, s in panel.items():
        sid = key if many else None
        past = columns_of(s, past_names)
        fut = None
        if future_names:
            if ahead is None or key not in ahead or len(ahead[key]) < h:
                raise UserError(
                    f"this model reads {', '.join(future_names)} ahead: pass their next {h} values of "
                    f"series {key!r} with futr_df (unique_id, ds and those columns)"
                )
            fut = np.concatenate([_columns(s, future_names), _columns(ahead[key], future_names)[:h]])
        items.append((s, sid, past, fut, key))
    df = frame(rows_many(model, items, h, intervals))  # every series in one batch
    return df if len(df) else pd.DataFrame(columns=columns(()))


def _coverage(v) -> float:
    v = float(v)
    b = v / 100 if v > 1 else v
    if not 0 < b < 1:
        raise UserError(f"level must be a percent in (0, 100), e.g. [80, 95], got {v!r}")
    return round(b, 10)


def sample_paths(f, h: int, n: int = 1000, new_df=None) -> np.ndarray:
    """``(series, n, h)`` sample paths of the levels after each history (``f.ids_`` order),
    pooled over the networks (and over the members of a combination)."""
    model = _fitted(f)
    if not model.probabilistic:
        raise UserError("this forecaster gives point forecasts only (likelihood none): no sample paths")
    past_names, _ = getattr(f, "covariate_names_", ([], []))
    panel = f.history_ if new_df is None else to_panel(new_df, past_names, ())
    members = getattr(model, "members_", [model])
    many = len(getattr(model, "series_ids_", None) or []) > 0
    out = []
    for key, s in panel.items():
        sid = key if many else None
        paths = []
        for m in members:
            old = m.n_samples
            m.n_samples = max(1, -(-int(n) // len(members)))
            try:
                paths.append(U.sample_paths(m, s.values, np.array([len(s) - 1]), int(h), m._scaler(sid))[0])
            finally:
                m.n_samples = old
        p = np.concatenate(paths, axis=0)
        out.append(p[np.linspace(0, len(p) - 1, int(n)).round().astype(int)])
    return np.stack(out)


def _fitted(f):
    """The model that forecasts for ``f`` (``model_``, or ``f`` fitted on arrays as given),
    with the histories ``predict(h)`` continues."""
    f._check_fitted()
    if getattr(f, "history_", None) is None:
        raise UserError("predict(h) continues the histories given to fit: pass new_df to name one")
    return vars(f).get("model_", f)
