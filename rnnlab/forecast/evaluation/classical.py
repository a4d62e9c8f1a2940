"""The statistical classics as baselines: AutoETS, AutoARIMA and AutoTheta from statsforecast
(``pip install 'rnnlab[stats]'``), in the same table and under the same protocol as the model.

Each is fitted once on the training part ``y[:n_train]`` (season m as detected or given), then
rolled over the test part without a refit: for a test target at horizon H its forecast is
``model.forward(y[:t + 1], h=H)`` from the origin ``t = j - H``, the fitted model applied to
the history up to t, the true values included (statsforecast's ``forward``: the parameters
stay those of the fit). Their own prediction intervals come with it, so their coverage is
scored as the model's.

Each ``forward`` runs the fitted model's filter over the history it is given, so rolling over
every test origin of a long series costs the history's length per origin: quadratic (10,000
points: 208 s). The history given is therefore the last ``MAX_HISTORY`` values up to the origin
at most, cut at a whole number of seasons from the series' start (the seasonal states keep
their phase): the cost is linear in the test part, and no series shorter than ``MAX_HISTORY``
(every benchmark series) sees a difference.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from rnnlab.errors import UserError

NAMES = ("AutoETS", "AutoARIMA", "AutoTheta")
CHOICES = ("auto", "stats", "simple")
HOW_TO_GET = "pip install 'rnnlab[stats]'"
MAX_HISTORY = 2_000  # values of history a classic's forward reads per origin (module docstring)


def available() -> bool:
    return importlib.util.find_spec("statsforecast") is not None


def wanted(choice: str) -> bool:
    """``--baselines``: stats (UserError without the extra), simple, or auto (stats if installed)."""
    if choice not in CHOICES:
        raise UserError(f"--baselines must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "stats" and not available():
        raise UserError(f"--baselines stats needs statsforecast: {HOW_TO_GET}")
    return choice == "stats" or (choice == "auto" and available())


def _model(name: str, season: int):
    from statsforecast import models

    return getattr(models, name)(season_length=max(int(season), 1))


def forecasts(y, n_train: int, origins, horizon: int, season: int, intervals) -> tuple[dict, list]:
    """``({name: {"paths": (M, H), "bounds": {b: (lo (M, H), hi (M, H))}}}, notes)``: each
    classic's forecasts of steps 1 .. H from every origin, and a note for each one that could
    not be fitted."""
    y = np.asarray(y, np.float64)
    levels = [int(round(100 * b)) if abs(100 * b - round(100 * b)) < 1e-9 else 100 * b for b in intervals]
    out, notes = {}, []
    for name in NAMES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = _model(name, season).fit(y[:n_train])
                rows = [
                    fitted.forward(y=y[_start(t, season) : t + 1], h=horizon, level=levels) for t in origins
                ]
        except Exception as e:  # a classic that cannot fit this series is left out, said why
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            notes.append(f"{name} could not be fitted: {first}")
            continue
        paths = np.array([r["mean"][:horizon] for r in rows]).reshape(len(rows), horizon)
        bounds = {
            b: (
                np.array([r[f"lo-{lv}"][:horizon] for r in rows]).reshape(len(rows), horizon),
                np.array([r[f"hi-{lv}"][:horizon] for r in rows]).reshape(len(rows), horizon),
            )
            for b, lv in zip(intervals, levels)
        }
        if not np.isfinite(paths).all():
            notes.append(f"{name} gave non-finite forecasts: left out")
            continue
        out[name] = {"paths": paths, "bounds": bounds}
    return out, notes


def _start(t: int, season: int) -> int:
    """The first value of the history a forward from origin ``t`` reads: ``MAX_HISTORY`` back at
    most, on a multiple of the season from the series' start."""
    start = max(0, t + 1 - MAX_HISTORY)
    return start + (-start) % max(int(season), 1)


def interval_scores(y, bounds: dict) -> dict:
    """Coverage and mean width of a classic's own intervals ``{b: (lo, hi)}``."""
    y = np.asarray(y, np.float64)
    return {
        "coverage": {f"{b:g}": float(np.mean((y >= lo) & (y <= hi))) for b, (lo, hi) in bounds.items()},
        "interval_width": {f"{b:g}": float(np.mean(hi - lo)) for b, (lo, hi) in bounds.items()},
    }
