"""The constructor arguments of ``Forecaster``, checked (``validate``): a bad value is one
``UserError`` line that names it."""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast import data as D
from rnnlab.forecast.heads import LIKELIHOODS, check_intervals
from rnnlab.forecast.train import CELLS, INITS

STRATEGIES = ("recursive", "direct")
CALIBRATIONS = ("auto", "conformal", "none")
SCALINGS = ("window", "global")
BOUNDS = ("none", "positive", "range")
PARALLEL = ("members", "data")


def validate(f) -> None:
    """UserError for the first constructor argument of ``f`` that is out of range."""

    def positive_int(name):
        v = getattr(f, name)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise UserError(f"{name} must be a positive integer, got {v!r}")

    for name in "window horizon hidden_size num_layers epochs batch_size ensemble n_samples".split():
        positive_int(name)
    if f.season is not None:  # None: from the dates at fit (frames.py)
        positive_int("season")
    for name, valid in (
        ("strategy", STRATEGIES),
        ("target", (*D.TARGETS, "auto")),  # auto: chosen at fit (pipeline.candidates)
        ("cell", tuple(CELLS)),
        ("init", INITS),
        ("likelihood", LIKELIHOODS),
        ("calibration", CALIBRATIONS),
        ("scaling", SCALINGS),
        ("bounds", BOUNDS),
        ("parallel", PARALLEL),
    ):
        if getattr(f, name) not in valid:
            raise UserError(f"{name} must be one of {', '.join(valid)}, got {getattr(f, name)!r}")
    if not isinstance(f.seed, (int, np.integer)) or isinstance(f.seed, bool) or f.seed < 0:
        raise UserError(f"seed must be an integer >= 0, got {f.seed!r}")  # numpy seeds nothing below 0
    if not isinstance(f.min_updates, (int, np.integer)) or f.min_updates < 0:
        raise UserError(f"min_updates must be an integer >= 0, got {f.min_updates!r}")
    tb = f.time_budget
    if tb is not None and (
        isinstance(tb, bool) or not isinstance(tb, (int, float)) or not 0 < tb < float("inf")
    ):
        raise UserError(f"time_budget must be a positive number of minutes or None, got {tb!r}")
    if tb is not None and f.parallel == "data":
        raise UserError(
            "time_budget does not go with parallel='data' (every rank must stop at the same epoch)"
        )
    if not f.lr > 0:
        raise UserError(f"lr must be positive, got {f.lr!r}")
    if f.clip is not None and not f.clip >= 0:
        raise UserError(f"clip must be >= 0 (0 or None: no clipping), got {f.clip!r}")
    if not 0 <= f.valid_size < 1:
        raise UserError(f"valid_size must lie in [0, 1), got {f.valid_size!r}")
    if not 0 <= f.dropout < 1:
        raise UserError(f"dropout must lie in [0, 1), got {f.dropout!r}")
    if f.target in D.SEASONAL and f.season is not None and f.season < 2:
        raise UserError(f"target {f.target} (seasonal) needs a season of 2 or more")
    try:
        f.intervals = check_intervals(f.intervals)
    except ValueError as e:
        raise UserError(str(e)) from None
