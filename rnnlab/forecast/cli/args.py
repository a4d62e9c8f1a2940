"""The options of `rnnlab forecast`, by group (``main.add_parser`` puts them together): data,
model, network, uncertainty, training, outputs."""

from __future__ import annotations

import argparse

from rnnlab import cliargs
from rnnlab.errors import UserError
from rnnlab.forecast.estimator.heads import LIKELIHOODS, check_intervals
from rnnlab.forecast.estimator.params import BOUNDS, CALIBRATIONS, PARALLEL, SCALINGS, STRATEGIES
from rnnlab.forecast.estimator.train import CELLS, INITS
from rnnlab.forecast.evaluation import classical as C
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import dates as Dt

DEFAULT_PLOT = "forecast.png"


def _add_classics_budget(g):
    """--classics-budget (the classics' cost bound, rnnlab/forecast/evaluation/classical.py)."""
    g.add_argument(
        "--classics-budget",
        type=cliargs.bounded_int(10**12, 0),
        default=C.BUDGET,
        metavar="VALUES",
        help="bound on the statistical classics' cost, checked before they start: AutoARIMA's and "
        "AutoTheta's test origins x history values (over it: a shorter history, or left out, with a "
        f"note); AutoETS's season at most {C.ETS_MAX_SEASON}; fits on the last {C.MAX_FIT:,} training "
        f"values. 0: no bound (default {C.BUDGET:,})",
    )


def add_data_args(g) -> None:
    """--csv, --column, --date-column, --fill, --test-size, --backtest, --date-format, --freq."""
    d = P.DEFAULTS
    g.add_argument("--csv", metavar="PATH", default=None, help="CSV file (default: the bundled btc.csv)")
    g.add_argument("--column", default="Close", help="column to forecast (default Close)")
    g.add_argument(
        "--id-column",
        metavar="COL",
        default=None,
        help="long format: the column naming each row's series; one global model is trained "
        "across all series, each scaled by its own training part and scored on its own",
    )
    g.add_argument(
        "--date-column", default="Date", help="column of dates; rows are sorted by it (default Date)"
    )
    g.add_argument(
        "--fill",
        choices=D.FILLS,
        default="none",
        help="missing values: refuse them (none, the default) or carry the last one forward",
    )
    g.add_argument(
        "--test-size",
        type=cliargs.count_or_fraction,
        default=None,
        metavar="N|FRACTION",
        help=f"test part: last N points, or a fraction of the series (default {d['test_size']}; "
        f"--preset book: what the first 1000 windows leave)",
    )
    g.add_argument(
        "--season",
        type=cliargs.bounded_int(1000),
        default=None,
        metavar="M",
        help="the season in steps (1: none; default: from the dates' frequency, e.g. 7 daily, 12 monthly)",
    )
    g.add_argument(
        "--baselines",
        choices=C.CHOICES,
        default="auto",
        help="stats: add AutoETS, AutoARIMA and AutoTheta (statsforecast, pip install 'rnnlab[stats]'); "
        "simple: persistence, drift, moving average and seasonal naive only; auto (the default): "
        "stats when statsforecast is installed",
    )
    _add_classics_budget(g)
    g.add_argument(
        "--backtest",
        type=cliargs.bounded_int(1000),
        default=1,
        metavar="K",
        help="rolling-origin backtest: cut the test part into K blocks and refit before each (default 1)",
    )
    add_date_args(g, "read off the dates")


def add_date_args(q, freq_default: str) -> None:
    """--date-format and --freq (README "Dates and frequencies")."""
    q.add_argument(
        "--date-format",
        metavar="FMT",
        default=None,
        help="how the dates are written: a strftime format such as %%d/%%m/%%Y (needed when day and "
        "month could be swapped), excel (Excel serial days) or unix (seconds since 1970); "
        "default: one format guessed for the whole column",
    )
    q.add_argument(
        "--freq",
        metavar="ALIAS",
        type=_freq_type,
        default=None,
        help=f"the dates' frequency as a pandas alias ({Dt.EXAMPLES}), or none for integer steps "
        f"(default: {freq_default})",
    )


def _freq_type(text: str) -> str:
    """argparse type of --freq: the canonical alias, or argparse's one-line error (exit 2)."""
    try:
        return str(Dt.check_freq(text))
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--freq ")) from None


def add_covariate_args(g) -> None:
    """--covariates, --future-covariates, --calendar."""
    g.add_argument(
        "--covariates",
        type=_names,
        default=None,
        metavar="A,B",
        help="past-observed columns of the same CSV, read beside the series (known up to each "
        "forecast origin: one step ahead, or the horizon with --strategy direct)",
    )
    g.add_argument(
        "--future-covariates",
        type=_names,
        default=None,
        metavar="C,D",
        help="columns known ahead (holidays, prices set in advance): the model reads each step's "
        "value for the step it forecasts; `predict` takes them for the future with --future-csv",
    )
    g.add_argument(
        "--calendar",
        action="store_true",
        default=None,
        help="add calendar columns from the dates, known ahead: sin/cos of the day of the week "
        "(daily), the week (weekly), the month (monthly) or the quarter (quarterly)",
    )


def _names(text):
    """``a,b`` -> ("a", "b"), for argparse."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected column names like a,b; got {text!r}")
    return names


def add_model_args(m) -> None:
    """--preset, --target, --window, --horizon, --strategy."""
    d = P.DEFAULTS
    m.add_argument(
        "--preset",
        choices=sorted(P.PRESETS),
        default=None,
        help="book: the chapter's recipe (levels, window 7, LSTM 256, batch 7, Adam 1e-3, "
        "clip 4, 100 epochs, first 1000 windows, truncated-normal init)",
    )
    m.add_argument(
        "--target",
        choices=D.TARGETS + ("auto",),
        default=None,
        help=f"what the network models: levels, changes, log returns, seasonal differences, the "
        f"seasonally adjusted log level against its last value (deseason) or its mean over a season "
        f"(deseason_mean), or auto: the best of changes and, with a season, deseason and "
        f"deseason_mean (sdiff for a series not positive) on the validation slice, averaged "
        f"with those within 10%% of it and not significantly worse (default {d['target']})",
    )
    m.add_argument(
        "--window",
        type=cliargs.bounded_int(cliargs.MAX_WINDOW),
        default=None,
        help=f"values per input window (default {d['window']})",
    )
    m.add_argument(
        "--horizon", type=cliargs.positive_int, default=None, help=f"steps ahead (default {d['horizon']})"
    )
    m.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help=f"multi-step forecasts: feed predictions back, or predict all steps at once "
        f"(default {d['strategy']})",
    )


def add_network_args(m) -> None:
    """--cell, --hidden, --layers, --dropout, --init, --ensemble, --no-shrink."""
    d = P.DEFAULTS
    m.add_argument(
        "--cell", choices=sorted(CELLS), default=None, help=f"recurrent cell (default {d['cell']})"
    )
    m.add_argument(
        "--hidden",
        type=cliargs.hidden_size,
        default=None,
        dest="hidden_size",
        help=f"hidden units (default {d['hidden_size']})",
    )
    m.add_argument(
        "--layers",
        type=cliargs.layers,
        default=None,
        dest="num_layers",
        help=f"stacked layers (default {d['num_layers']})",
    )
    m.add_argument(
        "--dropout",
        type=cliargs.fraction,
        default=None,
        help=f"dropout between layers (default {d['dropout']})",
    )
    m.add_argument("--init", choices=INITS, default=None, help=f"weight initialisation (default {d['init']})")
    m.add_argument(
        "--ensemble",
        type=cliargs.bounded_int(100),
        default=None,
        help=f"networks (seeds seed, seed+1, ...) whose forecasts are averaged (default {d['ensemble']})",
    )
    m.add_argument(
        "--no-shrink",
        dest="shrink",
        action="store_const",
        const=False,
        default=None,
        help="do not shrink the predicted change towards persistence on the validation slice",
    )


def _intervals(text):
    """``0.8,0.95`` -> (0.8, 0.95), for argparse (one line if bad)."""
    try:
        return check_intervals([float(v) for v in text.split(",")])
    except ValueError as e:
        why = str(e) if str(e).startswith("coverage ") else "expected coverages in (0, 1) like 0.8,0.95"
        raise argparse.ArgumentTypeError(f"{why}, got {text!r}") from None


def add_distribution_args(u) -> None:
    """--likelihood, --interval, --calibration, --scaling, --samples, --bounds."""
    d = P.DEFAULTS
    u.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default=None,
        help=f"what the networks output: a Gaussian or Student-t distribution (negative "
        f"log-likelihood), quantiles (pinball loss), or none: a point (MSE, no intervals) "
        f"(default {d['likelihood']}; --preset book: none)",
    )
    u.add_argument(
        "--interval",
        type=_intervals,
        default=None,
        dest="intervals",
        metavar="B[,B...]",
        help=f"central prediction intervals, as coverages (default {','.join(map(str, d['intervals']))})",
    )
    u.add_argument(
        "--calibration",
        choices=CALIBRATIONS,
        default=None,
        help=f"calibrate the intervals on the validation slice by split-conformal, or not "
        f"(default {d['calibration']})",
    )
    u.add_argument(
        "--scaling",
        choices=SCALINGS,
        default=None,
        help=f"divide each window of changes by its mean absolute value (window), or only "
        f"standardise by the training part (global) (default {d['scaling']})",
    )
    u.add_argument(
        "--samples",
        type=cliargs.bounded_int(100_000),
        default=None,
        dest="n_samples",
        help=f"sample paths per forecast, over the whole ensemble (default {d['n_samples']})",
    )
    u.add_argument(
        "--bounds",
        choices=BOUNDS,
        default=None,
        help=f"keep forecasts and intervals at or above 0 (positive), or within the least and "
        f"greatest value the series has shown up to the forecast origin (range) "
        f"(default {d['bounds']})",
    )


def add_time_budget(t) -> None:
    """--time-budget: minutes each fit (the backtest's, the refit) may train."""
    t.add_argument(
        "--time-budget",
        type=cliargs.positive_float,
        metavar="MINUTES",
        help="stop training after this many minutes per fit (the backtest's and the refit): no "
        "network starts another epoch past it, every network trains one (default: no limit)",
    )


def add_training_args(t) -> None:
    """--epochs, --batch-size, --lr, --clip, --weight-decay, --valid-size, --patience, --seed."""
    d = P.DEFAULTS
    t.add_argument(
        "--epochs",
        type=cliargs.bounded_int(100_000),
        default=None,
        help=f"maximum epochs (default {d['epochs']})",
    )
    t.add_argument(
        "--parallel",
        choices=PARALLEL,
        default=None,
        help="under mpiexec: each rank trains whole networks of the ensemble (members, the default) "
        "or every rank a shard of every batch, gradients summed (data: a panel too big for one)",
    )
    t.add_argument(
        "--min-updates",
        type=cliargs.nonnegative_int,
        default=None,
        help=f"raise the epochs (and patience) of a short series to this many optimiser steps "
        f"(default {d['min_updates']}; 0 with an explicit --epochs)",
    )
    t.add_argument(
        "--batch-size",
        type=cliargs.positive_int,
        default=None,
        help=f"windows per batch (default {d['batch_size']})",
    )
    t.add_argument(
        "--lr", type=cliargs.learning_rate, default=None, help=f"Adam learning rate (default {d['lr']})"
    )
    t.add_argument(
        "--clip",
        type=cliargs.nonnegative_float,
        default=None,
        help=f"clip gradients to this global norm, 0: off (default {d['clip']})",
    )
    t.add_argument(
        "--weight-decay",
        type=cliargs.nonnegative_float,
        default=None,
        help=f"L2 penalty (default {d['weight_decay']})",
    )
    t.add_argument(
        "--valid-size",
        type=cliargs.fraction,
        default=None,
        help=f"fraction of the training windows, from its end, for early stopping; 0: none "
        f"(default {d['valid_size']})",
    )
    t.add_argument(
        "--patience",
        type=cliargs.positive_int,
        default=None,
        help=f"early-stopping patience in epochs (default {d['patience']})",
    )
    t.add_argument(
        "--seed", type=cliargs.nonnegative_int, default=None, help=f"random seed (default {d['seed']})"
    )


def add_output_args(o) -> None:
    """--report, --plot, --no-plot, --out (--save), --quiet."""
    o.add_argument(
        "--report",
        metavar="FILE.json",
        type=cliargs.output_file(".json"),
        default=None,
        help="write the full report as JSON (- : standard output; the rest then goes to stderr)",
    )
    o.add_argument(
        "--plot",
        metavar="FILE.png",
        type=cliargs.output_file(".png"),
        default=None,
        help=f"write the plot here (default ./{DEFAULT_PLOT})",
    )
    o.add_argument("--no-plot", action="store_true", help="do not write a plot")
    o.add_argument(
        "--out",
        "--save",
        dest="save",
        metavar="DIR",
        type=cliargs.output_dir,
        default=None,
        help="save the trained model (safetensors + JSON) in DIR (--save: the same)",
    )
    o.add_argument(
        "--overwrite",
        action="store_true",
        help="let --save replace a directory that holds something other than a forecast model",
    )
    o.add_argument("--quiet", action="store_true", help="no progress bar")


def add_future_args(o) -> None:
    """--future, --no-refit, --forecast-out: the forecast after the last date (future.py)."""
    o.add_argument(
        "--future",
        metavar="H",
        type=cliargs.bounded_int(cliargs.MAX_STEPS),
        default=None,
        help="after the backtest, refit on the whole series and forecast the next H steps "
        "(default: --horizon)",
    )
    o.add_argument(
        "--no-refit", action="store_true", help="stop after the backtest: no refit, no future forecast"
    )
    o.add_argument(
        "--forecast-out",
        metavar="FILE",
        default=None,
        help="write the future forecast (unique_id, ds, mean, lo-80, hi-80, ...) as .csv, .json or .parquet",
    )


interval_list = _intervals  # the type of --interval, for `forecast predict` too
