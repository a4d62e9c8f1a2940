"""The future: refit on everything, forecast after the last date, hand the rows over.

A backtest scores a model fitted on the training part; the forecast a user acts on comes from a
model that saw the whole series. ``refit`` fits the configuration the backtest chose again on
every point of every series:

- the target (for ``--target auto``: the one chosen, or every member of the combination);
- each network's epoch count: the epoch early stopping restored in the backtest (no validation
  slice is held back, so nothing is left to stop on);
- the shrink factors and the conformal calibration, which need held-out data, are the
  backtest's, fitted on its validation slice (the refit has none).

``panel_rows`` gives the next ``steps`` values of each series after its last date (the rows of
``rows.py``: ``unique_id, ds, mean, lo-80, hi-80, ...``) and ``write_frame`` writes them as
``.csv``, ``.json`` (records) or ``.parquet`` (pyarrow), atomically.
"""

from __future__ import annotations

import os

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.estimator import combination as Cm
from rnnlab.forecast.estimator.model import Forecaster
from rnnlab.forecast.estimator.rows import columns, frame, rows_many
from rnnlab.forecast.evaluation import predict_covariates as PC
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series.dates import date_strings, future_dates
from rnnlab.io import atomic_write, output_file_problem

SUFFIXES = (".csv", ".json", ".parquet")


def epochs_found(history: dict) -> int:
    """The epochs a network of the backtest trained for: the restored best epoch, or every
    epoch it ran when it had no validation slice."""
    return int(history.get("best_epoch") or len(history["train_loss"]) or 1)


def refit(model, ys, ids=None, pasts=None, futures=None, progress=None):
    """``model`` (a fitted ``Forecaster`` or ``Combination``) fitted again on the whole series
    ``ys`` (a list of levels; ``ids`` their ids for a model of many series) with covariates
    ``pasts`` / ``futures`` (lists aligned with ``ys``), as the module docstring says."""
    if isinstance(model, Cm.Combination):
        members = [refit(m, ys, ids, pasts, futures, progress) for m in model.members_]
        out = Cm.Combination(members, getattr(model, "target_scores_", None))
        out.target_scores_ = getattr(model, "target_scores_", None)
        return out
    epochs = [epochs_found(h) for h in model.histories_]
    g = Forecaster(**{**model.get_params(), "valid_size": 0.0, "min_updates": 0, "epochs": max(epochs)})
    g.member_epochs_ = epochs
    if ids is None:
        g.fit(ys[0], progress=progress, past=(pasts or [None])[0], future=(futures or [None])[0])
    else:
        keys = list(ids)
        past = None if pasts is None or pasts[0] is None else dict(zip(keys, pasts))
        future = None if futures is None or futures[0] is None else dict(zip(keys, futures))
        g.fit_many(dict(zip(keys, ys)), progress=progress, past=past, future=future)
    g.shrinks_ = list(model.shrinks_)  # fitted on the backtest's validation slice
    g.calibration_ = getattr(model, "calibration_", None)
    g.target_scores_ = getattr(model, "target_scores_", None)
    return g


def last_date(series: D.Series) -> str:
    """The series' last date as the forecast rows write dates."""
    alias, tz = getattr(series, "freq_alias", None), getattr(series, "tz", None)
    return date_strings(np.asarray(series.dates[-1:]), alias, tz)[0]


def panel_rows(
    model, panel: dict, steps: int, future_csv=None, id_column=None, progress=None, intervals=None
):
    """The rows (dicts, ``columns``) of the next ``steps`` values after each series of ``panel``
    ({id: Series}; one series: {None: it}) at the dates that follow its last one, with the central
    ``intervals`` (default the model's; none for a point forecaster) and the covariates the model
    reads from each series and ``future_csv`` (``predict_covariates.arrays``); batched
    (``rows_many``)."""
    items = []
    for sid, s in panel.items():
        past, fut = PC.arrays(model, s, steps, future_csv, future_dates(s, steps), id_column, sid)
        items.append((s, sid, past, fut, None))
    return rows_many(model, items, steps, intervals, progress)


def check_forecast_out(path) -> str:
    """``--forecast-out FILE``: a known suffix and a folder it can be written in, checked before
    any work (one line and exit 2 otherwise)."""
    path = str(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UserError(f"--forecast-out must end in {', '.join(SUFFIXES)}, got {path!r}")
    problem = output_file_problem(path, suffix)
    if problem:
        raise UserError(f"--forecast-out: {problem}")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError(
                "--forecast-out FILE.parquet needs pyarrow: pip install 'rnnlab[parquet]'"
            ) from None
    return os.path.abspath(path)


def write_frame(rows: list, path) -> str:
    """Write ``rows`` to ``path`` by its suffix, atomically (a temporary file renamed): CSV
    and JSON with ``ds`` as ISO text, Parquet with ``ds`` a timestamp column."""
    import json

    path = str(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        text = json.dumps(rows, indent=1, allow_nan=False) + "\n"  # ds is ISO text already

        def write_text(tmp):
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)

        return atomic_write(path, write_text)
    if suffix == ".csv":
        import pandas as pd

        df = pd.DataFrame(rows, columns=list(rows[0]) if rows else columns(()))
        return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.10g"))
    return atomic_write(path, lambda tmp: frame(rows).to_parquet(tmp, index=False))
