"""`rnnlab forecast predict --model DIR [--csv PATH] [--steps K]`: the next K points.

The series to continue is ``--csv`` or, without it, the last points of the training series
saved inside the model: never a path read from the model file, never the bundled data.
"""

from __future__ import annotations

import numpy as np

from rnnlab import cliargs
from rnnlab.errors import UserError
from rnnlab.forecast import data as D
from rnnlab.forecast import predict_covariates as PC
from rnnlab.forecast.combination import load as load_model
from rnnlab.forecast.heads import interval_levels


def add_predict_parser(p) -> None:
    """The `rnnlab forecast predict` sub-parser."""
    sub = p.add_subparsers(dest="forecast_command", metavar="{predict,export}")
    q = sub.add_parser(
        "predict",
        help="forecast the next points with a saved model",
        description="Load a model saved with `rnnlab forecast --save DIR` and forecast "
        "the next K points after the end of a series.",
    )
    q.add_argument("--model", metavar="DIR", required=True, help="directory written by --save")
    q.add_argument(
        "--csv",
        metavar="PATH",
        default=None,
        help="series to continue (default: the last points of the training series, saved in the model)",
    )
    q.add_argument("--column", default=None, help="column to forecast (default: the model's)")
    q.add_argument("--id", default=None, help="the series to continue, for a model of many series")
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
    q.set_defaults(func=run_predict)
    add_export_parser(sub)


def series_info(series, need: int, keep: int = 64) -> dict:
    """Where the training series came from (for information only: predict never opens it) and
    its last ``max(need, keep)`` points, which predict continues without ``--csv``."""
    tail = slice(max(0, len(series) - max(need, keep)), len(series))
    return {
        "path": series.path,
        "column": series.column,
        "date_column": series.date_column,
        "dates": [str(d) for d in series.dates[tail]],
        "values": [float(v) for v in series.values[tail]],
        "covariates": {c: [float(v) for v in a[tail]] for c, a in series.covariates.items()},
    }


def run_predict(args) -> int:
    f = load_model(args.model)
    sid = _series_id(f, args)
    series = _predict_series(f, args, sid)
    steps = args.steps or f.horizon
    step = _usual_step(series.dates)
    past, future = PC.arrays(f, series, steps, args.future_csv, step, args.id_column, sid)
    values = f.predict(series.values, steps, series=sid, past=past, future=future)
    if not np.isfinite(values).all():
        raise UserError(
            f"the forecast is not a finite number (the series' scale is far from the training one's); "
            f"model {args.model}"
        )
    step = _usual_step(series.dates)
    last = series.dates[-1]
    print(
        f"rnnlab forecast predict: model {args.model} ({f.cell.upper()} {f.hidden_size}, target {f.target}, "
        f"window {f.window}, horizon {f.horizon}, {f.strategy})"
    )
    print(f"series: {series.column!r} from {series.path}, last value {series.values[-1]:,.2f} on {last}")
    for note in series.notes:
        print(f"  {note}")
    head = f"\n  {'step':>4}  {'date':<12}{'forecast':>14}"
    bounds = None
    if f.probabilistic:  # the central intervals, from the sample paths (calibrated if fitted)
        levels = interval_levels(f.intervals)
        q = f.predict_quantiles(series.values, levels, steps, series=sid, past=past, future=future)
        bounds = [
            (b, q[:, levels.index(round((1 - b) / 2, 10))], q[:, levels.index(round((1 + b) / 2, 10))])
            for b in f.intervals
        ]
        head += "".join(f"{f'{b:.0%} low':>14}{f'{b:.0%} high':>14}" for b in f.intervals)
    print(head)
    for k, v in enumerate(values, 1):
        row = f"  {k:>4}  {str(last + k * step):<12}{v:>14,.2f}"
        for _, lo, hi in bounds or ():
            row += f"{lo[k - 1]:>14,.2f}{hi[k - 1]:>14,.2f}"
        print(row)
    if bounds is None:
        print("  (a point forecast: the model was trained with --likelihood none, so it has no intervals)")
    return 0


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


def _predict_series(f, args, sid=None) -> D.Series:
    """``--csv`` if given, else the history saved inside the model; never a path read from the
    model file, never the bundled data."""
    info = f.series_info_
    column = args.column or info.get("column", "Close")
    date_column = args.date_column or info.get("date_column", "Date")
    if args.csv is not None and sid is not None:
        from rnnlab.forecast.panel import load_panel

        if args.id_column is None:
            raise UserError("a model of many series continues a long-format --csv: name its --id-column")
        panel = load_panel(args.csv, args.id_column, column, date_column, args.fill)
        if sid not in panel:
            raise UserError(f"{args.csv} has no series {sid!r} in column {args.id_column!r}")
        return panel[sid]
    if args.csv is not None:
        return D.load_series(args.csv, column, date_column, args.fill, tuple(sum(PC.names(f), [])))
    if sid is not None:
        hist = info.get("panel", {}).get(sid)
        if not hist:
            raise UserError(f"{args.model} holds no history of series {sid!r}: pass it with --csv")
        where = f"the last {len(hist['dates'])} points of series {sid!r} saved in {args.model}"
        dates = np.array(hist["dates"], dtype="datetime64[D]")
        return D.Series(np.array(hist["values"]), dates, where, column, date_column, covariates=_tails(hist))
    if not info.get("values"):
        raise UserError(f"{args.model} holds no history to continue: pass the series with --csv PATH")
    dates = np.array(info["dates"], dtype="datetime64[D]")
    where = f"the last {len(dates)} points saved in {args.model}"
    if info.get("path"):
        where += f" (trained on {info['path']})"
    return D.Series(
        np.array(info["values"], np.float64),
        dates,
        where,
        info["column"],
        info["date_column"],
        covariates=_tails(info),
    )


def _tails(info) -> dict:
    """The saved covariate columns of a history, as arrays."""
    return {c: np.array(v, np.float64) for c, v in (info.get("covariates") or {}).items()}


def _usual_step(dates):
    if len(dates) < 2:
        return np.timedelta64(1, "D")
    return np.timedelta64(int(np.median(np.diff(dates).astype(np.int64))), "D")


def add_export_parser(sub) -> None:
    q = sub.add_parser(
        "export",
        help="write a saved forecaster as one ONNX graph (levels in, levels out)",
        description="Write a model saved with `rnnlab forecast --save DIR` as one ONNX graph: "
        "input `history` (M, window + lag) float64 levels, output `forecast` (M, steps) float64 "
        "levels, the same numbers as `rnnlab forecast predict`.",
    )
    q.add_argument("--model", metavar="DIR", required=True, help="directory written by --save")
    q.add_argument("--out", metavar="FILE.onnx", required=True, type=cliargs.output_file(".onnx"))
    q.add_argument(
        "--steps",
        type=cliargs.bounded_int(1000),
        default=None,
        help="points each forecast has, at most 1000 (default: the model's horizon)",
    )
    q.set_defaults(func=run_export)


def run_export(args) -> int:
    from rnnlab.export import need_onnx
    from rnnlab.export.forecaster import export_forecaster

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
