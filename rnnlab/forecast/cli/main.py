"""`rnnlab forecast` and `rnnlab forecast predict`: parse, run, print, write.

    rnnlab forecast                      train on the bundled Bitcoin prices, print the table,
                                         write ./forecast.png
    rnnlab forecast --preset book        the chapter's recipe on correctly ordered data
    rnnlab forecast predict --model DIR  the next points after the end of a series

Everything is checked (input file, options, output paths) before training starts, and
every output is written to a temporary name and renamed, so a failure leaves nothing half.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from rnnlab import cliargs, distributed
from rnnlab.errors import UserError
from rnnlab.forecast.cli import args as A
from rnnlab.forecast.cli import progress as Bars
from rnnlab.forecast.cli.panel_report import plot_panel, print_panel
from rnnlab.forecast.cli.plots import plot_forecast
from rnnlab.forecast.cli.predict import add_predict_parser, series_info
from rnnlab.forecast.cli.report import describe, print_future, print_table
from rnnlab.forecast.estimator import params as PR
from rnnlab.forecast.estimator import train as T
from rnnlab.forecast.estimator import uncertainty as U
from rnnlab.forecast.estimator.model import check_save_dir
from rnnlab.forecast.evaluation import classical as C
from rnnlab.forecast.evaluation import future as F
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.evaluation.panel import load_panel
from rnnlab.forecast.evaluation.panel import run as run_many
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import dates as Dt
from rnnlab.io import check_output_path, write_report

EPILOG = """examples:
  rnnlab forecast                                   the default run on the bundled Bitcoin prices
  rnnlab forecast --preset book                     the chapter's recipe, correctly ordered
  rnnlab forecast --horizon 7 --strategy direct --backtest 4
  rnnlab forecast --csv prices.csv --column Price --out model/
  rnnlab forecast predict --model model/ --steps 5
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "forecast",
        help="train and evaluate a recurrent forecaster (bundled: daily Bitcoin prices)",
        description="Train a recurrent forecaster on a CSV series (default: the bundled daily "
        "Bitcoin closing prices), evaluate it on the last part of the series against "
        "persistence, drift and a moving average, and write a plot and a report.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    A.add_data_args(p.add_argument_group("data"))
    A.add_covariate_args(p.add_argument_group("covariates"))
    m = p.add_argument_group("model (defaults: the measured default configuration; --preset overrides)")
    A.add_model_args(m)
    A.add_network_args(m)
    A.add_distribution_args(p.add_argument_group("uncertainty"))
    training = p.add_argument_group("training")
    A.add_training_args(training)
    A.add_time_budget(training)
    cliargs.add_threads(training)
    A.add_output_args(p.add_argument_group("outputs"))
    A.add_future_args(p.add_argument_group("the future (after the backtest)"))
    p.set_defaults(func=run_forecast)
    add_predict_parser(p)
    return p


# ----------------------------------------------------------------------------- forecast


def _config(args, series) -> dict:
    """The configuration: defaults, preset, options, the season of ``series``; checked."""
    keys = (*PR.CLI, "test_size", "covariates", "future_covariates", "calendar")  # + the CLI's own
    if args.epochs is not None and args.min_updates is None:
        args.min_updates = 0  # --epochs N means N epochs
    cfg = P.resolve_config(args.preset, **{k: getattr(args, k) for k in keys})
    cfg = P.apply_season(cfg, series, args.season, window_given=args.window is not None)
    P.check_config(cfg)  # bad values fail now, not later
    cfg["baselines"] = "stats" if C.wanted(args.baselines) else "simple"
    cfg["classics_budget"] = args.classics_budget
    return cfg


def _units(series) -> str:
    return (
        "USD"
        if os.path.abspath(series.path) == os.path.abspath(D.bundled_csv())
        else f"units of {series.column}"
    )


def run_forecast(args) -> int:
    # 1. everything that can fail before training
    series = _load(args)
    if isinstance(series, dict):
        return run_panel(args, series)
    cfg = _config(args, series)
    plot = None if args.no_plot else _check_out(args.plot or A.DEFAULT_PLOT, ".png", "--plot")
    report_path = None if args.report is None else _check_out(args.report, ".json", "--report")
    save_dir = None if args.save is None else check_save_dir(args.save, args.overwrite)
    forecast_out = _check_future(args, {None: series}, cfg)
    n_train = P.n_train_of(len(series), cfg, series.values)
    for target in P.candidates(cfg, [P.training_part(series.values, cfg)]):
        D.check_target(series.values, target, f"column {series.column!r}")

    # 2. say what will happen (under MPI, rank 0 alone prints and writes)
    root = distributed.world().is_root
    out = sys.stdout if root else open(os.devnull, "w")  # closed with the process
    print(f"rnnlab forecast: {series.column!r} from {series.path}", file=out)
    print(f"  {len(series)} points, {series.date_str(0)} .. {series.date_str(len(series) - 1)}", file=out)
    for note in series.notes:
        print(f"  {note}", file=out)
    n = len(series)
    print(
        f"  train {series.date_str(0)} .. {series.date_str(n_train - 1)} ({n_train} points), "
        f"test {series.date_str(n_train)} .. {series.date_str(n - 1)} ({n - n_train} points)"
        + (f", {args.backtest} backtest folds" if args.backtest > 1 else ""),
        file=out,
    )
    print("  model: " + describe(cfg), file=out)
    out.flush()

    # 3. train and evaluate; 4. the future: refit on every point, forecast after the last date
    result = _backtest(args, cfg, root, lambda progress: P.run(series, cfg, args.backtest, progress))
    report = result["report"]
    print_table(report, _units(series), file=out)
    out.flush()
    f = _refit(args, {None: series}, cfg, result, root, out)

    # 5. write
    if not root:
        return 0
    _write(report_path, report, plot, lambda path: plot_forecast(path, series, result), out)
    _write_future(forecast_out, result.get("future"), f, out)
    if save_dir:
        f.series_info_ = series_info(series, f.levels_read)
        f.covariate_spec_ = covariate_spec(cfg, series)
        f.save(save_dir, overwrite=args.overwrite)
        what = "refitted on the whole series" if not args.no_refit else "fitted on the training part"
        print(f"model:  {save_dir}  ({what}; rnnlab forecast predict --model {args.save})", file=out)
    return 0


def _backtest(args, cfg: dict, root: bool, run) -> dict:
    """``run(progress)``, the backtest, with its bars; its time in the report's ``seconds``."""
    t0, clock = time.perf_counter(), dict(T.CLOCK)
    progress = None if args.quiet or not root else Bars.Epochs(cfg)
    paths = None if progress is None else Bars.Paths("intervals", "batch")  # calibration, test quantiles
    classics = None if progress is None else Bars.Classics()  # one bar per statistical classic
    try:
        with U.watching(paths), C.watching(classics):
            result = run(progress)
    finally:
        for bar in (progress, paths, classics):
            if bar is not None:
                bar.close()
    result["report"]["config"]["backtest"] = args.backtest
    result["report"]["seconds"] = {"backtest": round(time.perf_counter() - t0, 3), **T.since(clock)}
    return result


def _refit(args, panel: dict, cfg: dict, result: dict, root: bool, out):
    """The model to save: the backtest's (``--no-refit``) or the one refitted on every point,
    whose future goes into ``result["future"]`` and the report."""
    f = result["forecaster"]
    f.covariate_spec_ = covariate_spec(cfg, next(iter(panel.values())))
    if args.no_refit:
        return f
    clock = dict(T.CLOCK)
    fut = _future(args, panel, cfg, f, not args.quiet and root, out)
    report = result["report"]
    for phase, seconds in T.since(clock).items():  # training and intervals: the backtest's and the refit's
        report["seconds"][phase] += seconds
    result["future"], report["forecast"], report["refit"] = fut["rows"], list(fut["rows"]), fut["about"]
    report["seconds"].update(fut["seconds"])
    return fut["model"]


def _check_future(args, panel: dict, cfg: dict):
    """Before any work: ``--forecast-out``'s path, and that the options agree; returns the path."""
    if args.no_refit and (args.future is not None or args.forecast_out is not None):
        raise UserError("--no-refit makes no future forecast: drop --future / --forecast-out, or --no-refit")
    asked = args.future is not None or args.forecast_out is not None  # irregular dates: refused now
    undated = next((r for r in map(Dt.undated, panel.values()) if r), None) if asked else None
    if undated:
        raise UserError(undated)
    return None if args.forecast_out is None else F.check_forecast_out(args.forecast_out)


def _future(args, panel: dict, cfg: dict, model, show: bool, out) -> dict:
    """Refit ``model`` on every point of every series of ``panel`` ({id: Series}; one series:
    {None: it}) and forecast the next ``--future`` (default ``--horizon``) steps of each;
    printed, returned as ``{"model", "rows", "about", "seconds"}``."""
    steps = args.future or cfg["horizon"]
    many = None not in panel
    arrays = [P.covariate_arrays(s, cfg) for s in panel.values()]
    epochs = [F.epochs_found(h) for h in model.histories_]
    bar = Bars.Epochs({**cfg, "epochs": max(epochs)}, "refit") if show else None
    t0 = time.perf_counter()
    try:
        fitted = F.refit(
            model,
            [s.values for s in panel.values()],
            list(panel) if many else None,
            [a[0] for a in arrays],
            [a[1] for a in arrays],
            None if bar is None else (lambda *a: bar(0, 1, *a)),
        )
    finally:
        if bar is not None:
            bar.close()
    fitted.covariate_spec_ = covariate_spec(cfg, next(iter(panel.values())))
    t1 = time.perf_counter()
    rows, skipped = [], None
    undated = next((r for r in map(Dt.undated, panel.values()) if r), None)
    paths_bar = Bars.Paths("intervals", "batch") if show and fitted.probabilistic else None
    try:
        rows = F.panel_rows(fitted, panel, steps, progress=paths_bar)
    except UserError as e:
        if not cfg.get("future_covariates") and not undated:
            raise
        rows, skipped = [], str(e)
    finally:
        if paths_bar is not None:
            paths_bar.close()
    t2 = time.perf_counter()
    about = {
        "points": int(sum(len(s) for s in panel.values())),
        "epochs": epochs,
        "shrink_and_calibration": "the backtest's (fitted on its validation slice)",
        "steps": steps,
    }
    if skipped:
        about["no_forecast"] = skipped
        tail = "" if undated else "; use rnnlab forecast predict --future-csv"
        print(f"\nThe future: not forecast ({skipped}){tail}", file=out)
    else:
        span = f"{min(epochs)}-{max(epochs)}" if min(epochs) != max(epochs) else str(epochs[0])
        title = (
            f"\nThe future: the next {steps} step(s), from the model refitted on all {about['points']} "
            f"points ({span} epochs a network, as early stopping found in the backtest; shrink and "
            "calibration from the backtest's validation slice):"
        )
        print_future(rows, fitted, title, file=out)
    return {"model": fitted, "rows": rows, "about": about, "seconds": {"refit": t1 - t0, "future": t2 - t1}}


def _write_future(path, rows, model, out) -> None:
    if path and rows:
        F.write_frame(rows, path)
        print(f"future: {path}", file=out)


def _write(report_path, report: dict, plot, draw, out) -> None:
    """The report (strict JSON: a non-finite number is null, with the reason) and the plot
    (``draw(path)``), each where asked, each said."""
    if report_path:
        write_report(report_path, report)
        print(f"report: {report_path}", file=out)
    if plot:
        draw(plot)
        print(f"plot:   {plot}", file=out)


def _load(args):
    """The series of ``--csv`` (with its covariate columns), or ``{id: series}`` of two or more
    with ``--id-column`` (one: that series, as without the option)."""
    extra = tuple(args.covariates or ()) + tuple(args.future_covariates or ())
    dating = (getattr(args, "date_format", None), getattr(args, "freq", None))  # --date-format, --freq
    if args.id_column is None:
        return D.load_series(args.csv, args.column, args.date_column, args.fill, extra, *dating)
    panel = load_panel(args.csv, args.id_column, args.column, args.date_column, args.fill, extra, *dating)
    return panel if len(panel) > 1 else next(iter(panel.values()))


def covariate_spec(cfg: dict, series) -> dict:
    """What a saved model needs to be given again: its covariates' names and calendar."""
    return {
        "past": list(cfg.get("covariates", ())),
        "future": list(cfg.get("future_covariates", ())),
        "calendar": series.freq if cfg.get("calendar") else None,
    }


def run_panel(args, panel: dict) -> int:
    """`rnnlab forecast --id-column COL` with two or more series: one global model."""
    first = next(iter(panel.values()))
    cfg = _config(args, first)
    plot = None if args.no_plot else _check_out(args.plot or A.DEFAULT_PLOT, ".png", "--plot")
    report_path = None if args.report is None else _check_out(args.report, ".json", "--report")
    save_dir = None if args.save is None else check_save_dir(args.save, args.overwrite)
    forecast_out = _check_future(args, panel, cfg)
    root = distributed.world().is_root
    out = sys.stdout if root else open(os.devnull, "w")  # closed with the process
    lengths = [len(s) for s in panel.values()]
    print(
        f"rnnlab forecast: {first.column!r} of {len(panel)} series by {args.id_column!r} from "
        f"{args.csv or D.bundled_csv()}",
        file=out,
    )
    print(
        f"  {min(lengths)} .. {max(lengths)} points per series; {first.notes[-1]} (the first series)",
        file=out,
    )
    freqs: dict[str, int] = {}
    for s in panel.values():
        freqs[s.freq] = freqs.get(s.freq, 0) + 1
    if len(freqs) > 1:  # one season and calendar serve every series: say whose
        shown = ", ".join(f"{n} {f}" for f, n in freqs.items())
        print(
            f"  note: the series have different frequencies ({shown}); the first series' season "
            f"{cfg['season']} is used for all (--season N to choose; or split the file by frequency)",
            file=out,
        )
    folds = f", in {args.backtest} backtest folds (one model refitted per fold)" if args.backtest > 1 else ""
    print(f"  test part: the last {cfg['test_size']} of each series' points{folds}", file=out)
    print("  model: " + describe(cfg) + ", one network set for every series", file=out)
    out.flush()
    result = _backtest(args, cfg, root, lambda progress: run_many(panel, cfg, progress, args.backtest))
    report = result["report"]
    print_panel(report, file=out)
    out.flush()
    f = _refit(args, panel, cfg, result, root, out)
    if not root:
        return 0
    _write(report_path, report, plot, lambda path: plot_panel(path, panel, result), out)
    _write_future(forecast_out, result.get("future"), f, out)
    if save_dir:
        f.covariate_spec_ = covariate_spec(cfg, first)
        f.series_info_ = _panel_info(args, panel, f.levels_read)
        f.save(save_dir, overwrite=args.overwrite)
        print(f"model:  {save_dir}  (rnnlab forecast predict --model {args.save} --id ID)", file=out)
    return 0


def _panel_info(args, panel: dict, need: int) -> dict:
    """What a panel model saves of its series: the columns, and each series' last points."""
    first = next(iter(panel.values()))
    keep = ("column", "date_column", "date_format")
    return {
        **{k: v for k, v in series_info(first, need).items() if k in keep},
        "path": args.csv or D.bundled_csv(),
        "panel": {
            k: {x: series_info(s, need)[x] for x in ("dates", "values", "covariates", "freq_alias", "tz")}
            for k, s in panel.items()
        },
    }


def _check_out(path, suffix, option):
    return check_output_path(path, suffix, option)
