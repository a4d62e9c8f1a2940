"""`rnnlab forecast predict --model DIR [--csv PATH] [--steps K]`: the next K points.

The series to continue is ``--csv`` or, without it, the last points of the training series
saved inside the model: never a path read from the model file, never the bundled data.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from rnnlab import cliargs
from rnnlab.errors import UserError
from rnnlab.export import need_onnx
from rnnlab.forecast import precision
from rnnlab.forecast.cli.args import add_date_args, interval_list
from rnnlab.forecast.cli.report import print_future
from rnnlab.forecast.estimator.export import export_forecaster
from rnnlab.forecast.estimator.model import load_model
from rnnlab.forecast.evaluation import future as F
from rnnlab.forecast.evaluation import predict_covariates as PC
from rnnlab.forecast.evaluation.panel import load_panel
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import dates as Dt


def add_predict_parser(p) -> None:
    """The `rnnlab forecast predict` sub-parser."""
    sub = p.add_subparsers(dest="forecast_command", metavar="{predict,export}")
    q = sub.add_parser(
        "predict",
        help="forecast the next points with a saved model",
        description="Load a model saved with `rnnlab forecast --out DIR` and forecast "
        "the next K points after the end of a series.",
    )
    q.add_argument("--model", metavar="DIR", required=True, help="directory written by --out (--save)")
    q.add_argument(
        "--csv",
        metavar="PATH",
        default=None,
        help="series to continue (default: the last points of the training series, saved in the model)",
    )
    q.add_argument("--column", default=None, help="column to forecast (default: the model's)")
    q.add_argument(
        "--id",
        default=None,
        help="for a model of many series: the series to forecast, comma-separated (default: all)",
    )
    q.add_argument(
        "--future-csv",
        metavar="PATH",
        default=None,
        help="the future values of the model's --future-covariates: a CSV with the date column and "
        "one row per forecast date",
    )
    q.add_argument(
        "--id-column", default=None, metavar="COL", help="with --csv in long format: the column of series ids"
    )
    q.add_argument("--date-column", default=None, help="column of dates (default: the model's)")
    add_date_args(q, "the model's, else read off the dates")
    q.add_argument(
        "--fill",
        choices=D.FILLS,
        default="none",
        help="missing values: refuse them (none, the default) or carry the last one forward",
    )
    q.add_argument(
        "--steps",
        type=cliargs.bounded_int(cliargs.MAX_STEPS),
        default=None,
        help=f"points to forecast, at most {cliargs.MAX_STEPS} (default: the model's horizon)",
    )
    _add_output_args(q)
    precision.add_argument(q)
    q.set_defaults(func=run_predict)
    add_export_parser(sub)


def _add_output_args(q) -> None:
    """`forecast predict`'s --out and --interval."""
    q.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="write the forecast (unique_id, ds, mean, lo-80, hi-80, ...) as .csv, .json or .parquet "
        "instead of printing it",
    )
    q.add_argument(
        "--interval",
        dest="intervals",
        type=interval_list,
        default=None,
        help="central intervals, as coverages (default: the model's, e.g. 0.8,0.95)",
    )


def series_info(series, need: int, keep: int = 64) -> dict:
    """Where the training series came from (for information only: predict never opens it) and
    its last ``max(need, keep)`` points, which predict continues without ``--csv``."""
    tail = slice(max(0, len(series) - max(need, keep)), len(series))
    return {
        "path": series.path,
        "column": series.column,
        "date_column": series.date_column,
        "dates": [str(d) for d in np.asarray(series.dates[tail]).astype(Dt.UNIT)],  # to the second
        "values": [float(v) for v in series.values[tail]],
        "covariates": {c: [float(v) for v in a[tail]] for c, a in series.covariates.items()},
        "freq_alias": series.freq_alias,  # "none": integer steps; null: irregular
        "date_format": series.date_format,  # --date-format, predict's default for --csv
        "tz": series.tz,
    }


def run_predict(args) -> int:
    out_path = None if args.out is None else F.check_forecast_out(args.out)
    f = load_model(args.model)
    precision.choose(f, args.precision)
    if args.intervals is not None and not f.probabilistic:
        raise UserError(
            f"--interval: {args.model} gives point forecasts only (trained with --likelihood none)"
        )
    steps = args.steps or f.horizon
    ids = _series_ids(f, args)
    panel = _csv_panel(f, args) if args.csv is not None and ids[0] is not None else None
    histories = {sid: _predict_series(f, args, sid, panel) for sid in ids}
    about = next(iter(histories.values()))
    rows = F.panel_rows(f, histories, steps, args.future_csv, args.id_column, None, args.intervals)
    n_ids = len({r["unique_id"] for r in rows})
    print(
        f"rnnlab forecast predict: model {args.model} ({f.cell.upper()} {f.hidden_size}, target {f.target}, "
        f"window {f.window}, horizon {f.horizon}, {f.strategy})"
    )
    if n_ids == 1:
        last = F.last_date(about)
        print(f"series: {about.column!r} from {about.path}, last value {about.values[-1]:,.2f} on {last}")
        for note in about.notes:
            print(f"  {note}")
    else:
        print(f"series: {n_ids} of the model's series, each from its own last date")
    if out_path is not None:
        F.write_frame(rows, out_path)
        print(f"forecast: {len(rows)} rows ({n_ids} series x {steps} steps) in {out_path}")
    else:
        print_future(rows, f, f"\nthe next {steps} step(s):", limit=steps, max_series=n_ids)
    return 0


def _series_ids(f, args) -> list:
    """The series to forecast: the one of a model of one series; of a model of many, those of
    ``--id`` (comma-separated) or, by default, every series it was fitted on."""
    ids = getattr(f, "series_ids_", None)
    if not ids:
        return [_series_id(f, args)]
    if args.id is None:
        return list(ids)
    wanted = [k.strip() for k in str(args.id).split(",") if k.strip()]
    for k in wanted:
        _series_id(f, argparse.Namespace(**{**vars(args), "id": k}))
    return wanted


def _series_id(f, args):
    """``--id``: required by a model of many series (and refused by one of one)."""
    ids = getattr(f, "series_ids_", None)
    if not ids:
        if args.id is not None:
            raise UserError(f"{args.model} was fitted on one series: --id does not apply")
        return None
    if args.id is None or args.id not in ids:
        shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
        what = "needs --id" if args.id is None else f"has no series {args.id!r}"
        raise UserError(f"{args.model} is a model of {len(ids)} series and {what}: one of {shown}")
    return args.id


def _csv_panel(f, args) -> dict:
    """``{id: Series}`` of a long-format ``--csv`` for a model of many series (read once)."""
    if args.id_column is None:
        raise UserError("a model of many series continues a long-format --csv: name its --id-column")
    info = f.series_info_
    column = args.column or info.get("column", "Close")
    date_column = args.date_column or info.get("date_column", "Date")
    covariates = tuple(sum(PC.names(f), []))  # the model's covariate columns, read with the values
    return load_panel(
        args.csv,
        args.id_column,
        column,
        date_column,
        args.fill,
        covariates,
        _date_format(args, info),
        _freq(args),
    )


def _predict_series(f, args, sid=None, panel=None) -> D.Series:
    """``--csv`` if given (``panel``: its series by id, for a model of many), else the history
    saved inside the model; never a path read from the model file, never the bundled data."""
    info = f.series_info_
    column = args.column or info.get("column", "Close")
    date_column = args.date_column or info.get("date_column", "Date")
    if panel is not None:
        if sid not in panel:
            raise UserError(f"{args.csv} has no series {sid!r} in column {args.id_column!r}")
        return panel[sid]
    if args.csv is not None:
        covariates = tuple(sum(PC.names(f), []))
        fmt, freq = _date_format(args, info), _freq(args)
        return D.load_series(args.csv, column, date_column, args.fill, covariates, fmt, freq)
    if sid is not None:
        hist = info.get("panel", {}).get(sid)
        if not hist:
            raise UserError(f"{args.model} holds no history of series {sid!r}: pass it with --csv")
        where = f"the last {len(hist['dates'])} points of series {sid!r} saved in {args.model}"
        return _saved_series(
            {**hist, "date_format": info.get("date_format")}, where, column, date_column, _freq(args)
        )
    if not info.get("values"):
        raise UserError(f"{args.model} holds no history to continue: pass the series with --csv PATH")
    where = f"the last {len(info['dates'])} points saved in {args.model}"
    if info.get("path"):
        where += f" (trained on {info['path']})"
    return _saved_series(info, where, info["column"], info["date_column"], _freq(args))


def _freq(args):
    return getattr(args, "freq", None)


def _date_format(args, info=None):
    """``--date-format``, else the one the model was trained with (None: guessed)."""
    return getattr(args, "date_format", None) or (info or {}).get("date_format")


def _saved_series(hist: dict, where: str, column: str, date_column: str, freq=None) -> D.Series:
    """A history saved inside the model as a checked ``Series``: its dates (ISO text; models before
    the frequency was saved hold days), zone and frequency alias (``freq``: ``--freq`` instead)."""
    dates = np.array(hist["dates"], dtype=Dt.UNIT)
    values = np.array(hist["values"], np.float64)
    missing = np.zeros(len(values), bool)
    extra = {c: (v, missing) for c, v in _tails(hist).items()}
    freq = Dt.check_freq(freq if freq is not None else hist.get("freq_alias"))
    tz, fmt = hist.get("tz"), hist.get("date_format")  # fmt: for the --future-csv beside it
    return D.series_of(values, missing, dates, where, column, date_column, "none", [], extra, tz, freq, fmt)


def _tails(info) -> dict:
    """The saved covariate columns of a history, as arrays."""
    return {c: np.array(v, np.float64) for c, v in (info.get("covariates") or {}).items()}


def add_export_parser(sub) -> None:
    q = sub.add_parser(
        "export",
        help="write a saved forecaster as one ONNX graph (levels in, levels out)",
        description="Write a model saved with `rnnlab forecast --out DIR` as one ONNX graph: "
        "input `history` (M, window + lag) float64 levels, output `forecast` (M, steps) float64 "
        "levels, the same numbers as `rnnlab forecast predict`.",
    )
    q.add_argument("--model", metavar="DIR", required=True, help="directory written by --out (--save)")
    q.add_argument("--out", metavar="FILE.onnx", required=True, type=cliargs.output_file(".onnx"))
    q.add_argument("--overwrite", action="store_true", help="replace FILE.onnx if it exists")
    q.add_argument(
        "--steps",
        type=cliargs.bounded_int(1000),
        default=None,
        help="points each forecast has, at most 1000 (default: the model's horizon)",
    )
    q.set_defaults(func=run_export)


def run_export(args) -> int:
    if os.path.lexists(args.out) and not args.overwrite:  # as translate export refuses
        raise UserError(f"--out {args.out} exists: choose another name, or pass --overwrite to replace it")
    need_onnx()
    f = load_model(args.model)
    steps = args.steps or f.horizon
    path = export_forecaster(f, args.out, steps)
    L = f.levels_read
    print(f"rnnlab forecast export: {path}")
    print(f"  input  history  (M, {L}) float64: the last {L} levels up to each origin")
    print(f"  output forecast (M, {steps}) float64: the next {steps} levels")
    print(f"  ({f.cell.upper()} {f.hidden_size}, {len(f.nets_)} network(s), target {f.target}, {f.strategy})")
    return 0
