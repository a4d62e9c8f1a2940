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

from rnnlab import cliargs, distributed
from rnnlab.forecast import data as D
from rnnlab.forecast import pipeline as P
from rnnlab.forecast.heads import LIKELIHOODS, check_intervals
from rnnlab.forecast.model import CALIBRATIONS, SCALINGS, STRATEGIES, Forecaster, check_save_dir
from rnnlab.forecast.predict import add_predict_parser, series_info
from rnnlab.forecast.report import describe, print_table
from rnnlab.forecast.train import CELLS, INITS
from rnnlab.io import check_output_path, write_report

DEFAULT_PLOT = "forecast.png"
EPILOG = """examples:
  rnnlab forecast                                   the default run on the bundled Bitcoin prices
  rnnlab forecast --preset book                     the chapter's recipe, correctly ordered
  rnnlab forecast --horizon 7 --strategy direct --backtest 4
  rnnlab forecast --csv prices.csv --column Price --save model/
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
    _add_data_args(p.add_argument_group("data"))
    m = p.add_argument_group("model (defaults: the measured default configuration; --preset overrides)")
    _add_model_args(m)
    _add_network_args(m)
    _add_distribution_args(p.add_argument_group("uncertainty"))
    _add_training_args(p.add_argument_group("training"))
    _add_output_args(p.add_argument_group("outputs"))
    p.set_defaults(func=run_forecast)
    add_predict_parser(p)
    return p


def _add_data_args(g) -> None:
    """--csv, --column, --date-column, --fill, --test-size, --backtest."""
    d = P.DEFAULTS
    g.add_argument("--csv", metavar="PATH", default=None, help="CSV file (default: the bundled btc.csv)")
    g.add_argument("--column", default="Close", help="column to forecast (default Close)")
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
        "--backtest",
        type=cliargs.bounded_int(1000),
        default=1,
        metavar="K",
        help="rolling-origin backtest: cut the test part into K blocks and refit before each (default 1)",
    )


def _add_model_args(m) -> None:
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
        "--target", choices=D.TARGETS, default=None, help=f"what the network models (default {d['target']})"
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


def _add_network_args(m) -> None:
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
        return check_intervals(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected coverages in (0, 1) like 0.8,0.95, got {text!r}"
        ) from None


def _add_distribution_args(u) -> None:
    """--likelihood, --interval, --calibration, --scaling, --samples."""
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
        help="central prediction intervals, as coverages (default 0.8,0.95)",
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


def _add_training_args(t) -> None:
    """--epochs, --batch-size, --lr, --clip, --weight-decay, --valid-size, --patience, --seed."""
    d = P.DEFAULTS
    t.add_argument(
        "--epochs",
        type=cliargs.bounded_int(100_000),
        default=None,
        help=f"maximum epochs (default {d['epochs']})",
    )
    t.add_argument(
        "--batch-size",
        type=cliargs.positive_int,
        default=None,
        help=f"windows per batch (default {d['batch_size']})",
    )
    t.add_argument(
        "--lr", type=cliargs.positive_float, default=None, help=f"Adam learning rate (default {d['lr']})"
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


def _add_output_args(o) -> None:
    """--report, --plot, --no-plot, --save, --quiet."""
    o.add_argument(
        "--report",
        metavar="FILE.json",
        type=cliargs.output_file(".json"),
        default=None,
        help="write the full report as JSON",
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
        "--save",
        metavar="DIR",
        type=cliargs.output_dir,
        default=None,
        help="save the trained model (safetensors + JSON) in DIR",
    )
    o.add_argument(
        "--overwrite",
        action="store_true",
        help="let --save replace a directory that holds something other than a forecast model",
    )
    o.add_argument("--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------- forecast


def _config(args) -> dict:
    keys = (
        "target",
        "window",
        "horizon",
        "strategy",
        "cell",
        "hidden_size",
        "num_layers",
        "dropout",
        "init",
        "ensemble",
        "shrink",
        "epochs",
        "batch_size",
        "lr",
        "clip",
        "weight_decay",
        "valid_size",
        "patience",
        "seed",
        "test_size",
        "likelihood",
        "intervals",
        "calibration",
        "scaling",
        "n_samples",
    )
    cfg = P.resolve_config(args.preset, **{k: getattr(args, k) for k in keys})
    Forecaster(**{k: cfg[k] for k in P.MODEL_KEYS})._validate()  # bad values fail now, not later
    return cfg


def _units(series) -> str:
    return (
        "USD"
        if os.path.abspath(series.path) == os.path.abspath(D.bundled_csv())
        else f"units of {series.column}"
    )


def run_forecast(args) -> int:
    # 1. everything that can fail before training
    series = D.load_series(args.csv, args.column, args.date_column, args.fill)
    cfg = _config(args)
    plot = None if args.no_plot else _check_out(args.plot or DEFAULT_PLOT, ".png", "--plot")
    report_path = None if args.report is None else _check_out(args.report, ".json", "--report")
    save_dir = None
    if args.save is not None:
        save_dir = check_save_dir(args.save, args.overwrite)
    n_train = P.n_train_of(len(series), cfg)
    D.check_target(series.values, cfg["target"], f"column {series.column!r}")

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

    # 3. train and evaluate
    progress = None if args.quiet or not root else _Progress(cfg)
    try:
        result = P.run(series, cfg, folds=args.backtest, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    report = result["report"]
    report["config"]["backtest"] = args.backtest

    # 4. print and write
    print_table(report, _units(series), file=out)
    if not root:
        return 0
    if report_path:
        write_report(report_path, report)  # strict JSON; a non-finite number is null, with the reason
        print(f"report: {report_path}", file=out)
    if plot:
        from rnnlab.forecast.plots import plot_forecast

        plot_forecast(plot, series, result)
        print(f"plot:   {plot}", file=out)
    if save_dir:
        f = result["forecaster"]
        f.series_info_ = series_info(series, D.first_origin(f.window, f.target) + 1)
        f.save(save_dir, overwrite=args.overwrite)
        print(f"model:  {save_dir}  (rnnlab forecast predict --model {args.save})", file=out)
    return 0


class _Progress:
    """One tqdm bar per network: epochs, with the running training and validation loss."""

    def __init__(self, cfg):
        self.epochs, self.n_members = cfg["epochs"], cfg["ensemble"]
        self.bar, self.key = None, None

    def __call__(self, fold, n_folds, member, epoch, train_loss, valid_loss):
        from tqdm import tqdm

        if (fold, member) != self.key:
            self.close()
            self.key = (fold, member)
            parts = []
            if n_folds > 1:
                parts.append(f"fold {fold + 1}/{n_folds}")
            if self.n_members > 1:
                parts.append(f"net {member + 1}/{self.n_members}")
            self.bar = tqdm(
                total=self.epochs,
                desc=" ".join(parts) or "training",
                unit="epoch",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        post = {"loss": f"{train_loss:.4f}"}
        if valid_loss is not None:
            post["valid"] = f"{valid_loss:.4f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(epoch - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _check_out(path, suffix, option):
    return check_output_path(path, suffix, option)
