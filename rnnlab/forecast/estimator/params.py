"""The constructor arguments of ``Forecaster``, declared once: ``TABLE``, one row per argument
(name, default, JSON type, what is valid, help), in the signature's order.

Everything that names the arguments reads this table: ``validate`` (a bad value is one
``UserError`` line that names it), ``Forecaster.get_params`` / ``set_params`` and its docstring,
the model file's type checks, size limits and the meaning of an argument absent from an older
model (``storage``), ``pipeline.DEFAULTS`` and the options ``rnnlab forecast`` passes on
(``cli.main._config``). ``Forecaster.__init__`` spells the signature out for readers and editors;
``tests/forecast/test_forecast_params.py`` holds it to this table, name for name, default for
default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab import cliargs
from rnnlab.errors import UserError
from rnnlab.forecast.estimator.heads import INTERVALS, LIKELIHOODS, check_intervals
from rnnlab.forecast.estimator.train import CELLS, INITS
from rnnlab.forecast.series import data as D

STRATEGIES = ("recursive", "direct")
CALIBRATIONS = ("auto", "conformal", "none")
SCALINGS = ("window", "global")
BOUNDS = ("none", "positive", "range")
PARALLEL = ("members", "data")
SAME = object()  # before: an older model meant the default


# -- the checks: (name, value) -> the value (normalised), or UserError -----------------------
def _integer(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def positive_int(name, v):
    if not _integer(v) or v < 1:
        raise UserError(f"{name} must be a positive integer, got {v!r}")
    return v


def season(name, v):  # None: from the dates at fit (frames.py)
    return v if v is None else positive_int(name, v)


def nonnegative_int(name, v):  # seed: numpy seeds nothing below 0
    if not _integer(v) or v < 0:
        raise UserError(f"{name} must be an integer >= 0, got {v!r}")
    return v


def minutes(name, v):
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf")):
        raise UserError(f"{name} must be a positive number of minutes or None, got {v!r}")
    return v


def positive(name, v):
    if not v > 0:
        raise UserError(f"{name} must be positive, got {v!r}")
    return v


def clip_norm(name, v):
    if v is not None and not v >= 0:
        raise UserError(f"{name} must be >= 0 (0 or None: no clipping), got {v!r}")
    return v


def fraction(name, v):
    if not 0 <= v < 1:
        raise UserError(f"{name} must lie in [0, 1), got {v!r}")
    return v


def coverages(name, v):
    try:
        return check_intervals(v)
    except ValueError as e:
        raise UserError(str(e)) from None


def one_of(*choices) -> Callable:
    def check(name, v):
        if v not in choices:
            raise UserError(f"{name} must be one of {', '.join(choices)}, got {v!r}")
        return v

    check.choices = choices  # type: ignore[attr-defined]
    return check


def unchecked(name, v):
    return v


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    json: str  # its type in config.json (``io.check_schema``'s names)
    check: Callable  # (name, value) -> value, UserError if bad
    help: str  # what it means (the docstring's line)
    cli: bool = True  # `rnnlab forecast` passes an option of this name on (cli.main._config)
    high: int | None = None  # the most a saved model may ask for (the command line's bound)
    before: Any = SAME  # its meaning in a model saved before the argument existed


# fmt: off
TABLE = (
    Param("window", 7, "int", positive_int, "values per input window (W)", high=cliargs.MAX_WINDOW),
    Param("horizon", 1, "int", positive_int, "steps ahead the model is trained for (H)",
          high=cliargs.MAX_STEPS),
    Param("strategy", "recursive", "str", one_of(*STRATEGIES), "how H > 1 steps are produced: feed the "
          "one-step predictions back into the window, or one network output per step ahead"),
    Param("target", "auto", "str", one_of(*D.TARGETS, "auto"), "what the network models (see "
          "``targets``); auto: chosen on the validation slice at fit (``pipeline.candidates``)",
          before="diff"),
    Param("cell", "lstm", "str", one_of(*CELLS), "the recurrent cell"),
    Param("hidden_size", 16, "int", positive_int, "hidden units of the recurrent layer",
          high=cliargs.MAX_HIDDEN),
    Param("num_layers", 1, "int", positive_int, "stacked recurrent layers", high=cliargs.MAX_LAYERS),
    Param("dropout", 0.0, "number", fraction, "dropout between the recurrent layers"),
    Param("epochs", 60, "int", positive_int, "most epochs of training (Adam)"),
    Param("batch_size", 32, "int", positive_int, "windows per batch"),
    Param("lr", 1e-3, "number", positive, "Adam's learning rate"),
    Param("clip", 4.0, "number|null", clip_norm, "clip the gradients to this global norm (0 or None: "
          "no clipping)"),
    Param("weight_decay", 0.0, "number", unchecked, "L2 penalty"),
    Param("valid_size", 0.15, "number", fraction, "fraction of the training windows, taken from the END, "
          "used for early stopping (0 disables it: the last epoch's weights are kept)"),
    Param("patience", 10, "int", unchecked, "epochs without a better validation loss before stopping"),
    Param("init", "pytorch", "str", one_of(*INITS), "weight initialisation (``rnnlab.nn.init``)"),
    Param("shuffle", True, "bool", unchecked, "shuffle the training windows each epoch", cli=False),
    Param("shrink", True, "bool", unchecked, "after training, shrink the predicted change towards "
          "persistence by a factor in [0, 1] (``shrinks_``, one per network) that best fits the "
          "validation slice (least squares); 0 means the network found nothing persistence does not"),
    Param("ensemble", 10, "int", positive_int, "networks (seeds seed, seed + 1, ...) whose forecasts "
          "are averaged", high=100),
    Param("likelihood", "gaussian", "str", one_of(*LIKELIHOODS), "what the networks output per step: a "
          "distribution trained by its negative log-likelihood, quantiles trained by the pinball "
          "loss, or a point trained by MSE (none: no intervals)", before="none"),
    Param("scaling", "window", "str", one_of(*SCALINGS), "after the training part's standard scaling, "
          "divide each window of changes (and its targets) by its mean absolute value, or not "
          "(levels: not)", before="global"),
    Param("intervals", INTERVALS, "list", coverages, "the central intervals' coverages",
          before=list(INTERVALS)),
    Param("calibration", "auto", "str", one_of(*CALIBRATIONS), "split-conformal calibration of the "
          "intervals on the validation slice (needs valid_size > 0): when a binomial test there finds "
          "the raw coverage off (auto), always, or never"),
    Param("n_samples", 500, "int", positive_int, "sample paths per forecast, pooled over the ensemble",
          high=100_000),
    Param("bounds", "none", "str", one_of(*BOUNDS), "where forecasts (points, paths, quantiles) may lie: "
          "anywhere, at or above 0, or within the range the history up to the origin has shown "
          "(``uncertainty.bound``)"),
    Param("season", None, "int", season, "the season m in steps (the seasonal targets use it; 1: none; "
          "None: from the dates at fit)", cli=False, high=1000, before=1),
    Param("min_updates", 1500, "int", nonnegative_int, "epochs (and patience) are raised to hold at "
          "least this many optimiser steps (patience a tenth of them); 0: the epochs as given",
          before=0),
    Param("seed", 0, "int", nonnegative_int, "all randomness (initialisation, shuffling, sampling)"),
    Param("parallel", "members", "str", one_of(*PARALLEL), "how MPI ranks share the training "
          "(docs/DISTRIBUTED.md): each rank trains whole networks of the ensemble, or every rank "
          "takes its shard of every batch and the gradients are summed"),
    Param("time_budget", None, "number|null", minutes, "minutes a fit may train (None: no limit): past "
          "it no network starts another epoch (each trains at least one; early stopping's best epoch "
          "is kept)"),
)
# fmt: on

NAMES = tuple(p.name for p in TABLE)
DEFAULTS = {p.name: p.default for p in TABLE}
TYPES = {p.name: p.json for p in TABLE}  # storage's type checks
LIMITS = {p.name: p.high for p in TABLE if p.high is not None}  # storage's size limits
BEFORE = {p.name: p.before for p in TABLE if p.before is not SAME}
CLI = tuple(p.name for p in TABLE if p.cli)  # what `rnnlab forecast` passes on


def store(f, values: dict) -> None:
    """``Forecaster.__init__``: every argument stored under its name, nothing else (scikit-learn)."""
    for name in NAMES:
        setattr(f, name, values[name])


def doc() -> str:
    """The Parameters section of ``Forecaster``'s docstring, one numpydoc entry per row."""

    def kind(p):
        valid = getattr(p.check, "choices", None)
        return "{" + ", ".join(map(repr, valid)) + "}" if valid else p.json.replace("|null", " or None")

    return "".join(f"    {p.name} : {kind(p)}, default {p.default!r}\n        {p.help}.\n" for p in TABLE)


def validate(f) -> None:
    """UserError for the first constructor argument of ``f`` that is out of range (its row's
    check), then for the combinations that do not go together; the intervals normalised."""
    for p in TABLE:
        setattr(f, p.name, p.check(p.name, getattr(f, p.name)))
    if f.time_budget is not None and f.parallel == "data":
        raise UserError(
            "time_budget does not go with parallel='data' (every rank must stop at the same epoch)"
        )
    if f.target in D.SEASONAL and f.season is not None and f.season < 2:
        raise UserError(f"target {f.target} (seasonal) needs a season of 2 or more")
