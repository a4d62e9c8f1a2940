"""The statistical classics as baselines: AutoETS, AutoARIMA and AutoTheta from statsforecast
(``pip install 'rnnlab[stats]'``), in the same table and under the same protocol as the model.

Each is fitted once on the training part ``y[:n_train]`` (season m as detected or given), then
rolled over the test part without a refit: for a test target at horizon H its forecast is
``model.forward(y[:t + 1], h=H)`` from the origin ``t = j - H``, the fitted model applied to
the history up to t, the true values included (statsforecast's ``forward``: the parameters
stay those of the fit, the intervals' sigma is that of the residuals up to t). Their own
prediction intervals come with it, so their coverage is scored as the model's.

**AutoETS in one pass.** Its ``forward`` is a filter started from the fit's initial state, and
its sigma the residuals' up to t: so the states after every origin come from ONE run of the
filter over the series (``forward_ets`` with the fitted parameters), and each origin's forecast
and intervals from its own state and the running sum of squared residuals up to that origin
(``_ets_rows``). Checked against the per-origin ``forward``: equal to 2e-16, means and 80/95%
bounds, ANN/AAN/AAA/MAM/MAdA fits (``test_ets_in_one_pass_is_the_per_origin_forward``). No
test value reaches a parameter, and an origin's intervals read the residuals up to it only:
``forward(y=full, fitted=True)``, tried before, took sigma from the whole series. AutoARIMA's
``forward`` reruns a Kalman filter whose states statsforecast does not return, and AutoTheta's
re-decomposes the season on each history, so neither has such a pass: they keep one
``forward`` per origin over the last ``MAX_HISTORY`` values at most, cut at whole seasons from
the fit's start (the seasonal states keep their phase).

**The bound**, checked before a classic starts (``plan``), its notes printed under the table:
a classic is fitted on the last ``MAX_FIT`` training values at most (whole seasons); AutoARIMA's
and AutoTheta's ``origins x history`` per-origin values are at most ``BUDGET``, the history
thinned to fit (a note says so) or, below ``2 m`` and ``MIN_HISTORY`` values, the classic left
out (a note says why); AutoETS with a season over ``ETS_MAX_SEASON`` is left out (its fit has
one initial state per season step: on 2,400 points, idle machine, 0.9 s at m = 24, 2.5 s at
168, 5.7 s at 365, and at 1000 it fails after 6.4 s; under a load of 5, 172 s to fail).
``--classics-budget 0`` lifts all of it.

Measured (2-core AMD EPYC, nice'd, load 0-1; ``C.forecasts`` alone on a daily sine + noise,
``--horizon 1``, the last 20% the test part): 10,000 points 41.2 s -> 40.6 s (the fits are
most of it: AutoARIMA 25 s); 100,000 points, before: fits on 80,000 values (AutoARIMA 79 s at
20,000 and growing faster than linearly), after 106 s (AutoETS 9.9 s for 20,000 origins in one
pass, AutoARIMA 68 s and AutoTheta 28 s on 994 values of history); ``--season 1000`` on 3,000
points 11.2 s -> 4.0 s (AutoETS left out instead of failing after 7 s).
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
import warnings

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.estimator.train import CLOCK

NAMES = ("AutoETS", "AutoARIMA", "AutoTheta")
CHOICES = ("auto", "stats", "simple")
HOW_TO_GET = "pip install 'rnnlab[stats]'"
MAX_HISTORY = 2_000  # values of history a per-origin forward reads (module docstring)
MAX_FIT = 10_000  # training values a classic is fitted on, the last ones
BUDGET = 20_000_000  # origins x history values of one classic's per-origin forwards (--classics-budget)
MIN_HISTORY = 200  # the shortest history the budget may thin to; below it the classic is left out
ETS_MAX_SEASON = 400  # AutoETS's longest season under the bound (module docstring)
WATCHERS: list = []  # progress(name, done, total) hooks (``watching``)


def available() -> bool:
    return importlib.util.find_spec("statsforecast") is not None


def wanted(choice: str) -> bool:
    """``--baselines``: stats (UserError without the extra), simple, or auto (stats if installed)."""
    if choice not in CHOICES:
        raise UserError(f"--baselines must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "stats" and not available():
        raise UserError(f"--baselines stats needs statsforecast: {HOW_TO_GET}")
    return choice == "stats" or (choice == "auto" and available())


@contextlib.contextmanager
def watching(progress):
    """While inside, ``forecasts`` given no ``progress`` reports to this one (a command line's
    bar, deep inside a backtest); None: nothing."""
    WATCHERS.append(progress)
    try:
        yield
    finally:
        WATCHERS.pop()


def _model(name: str, season: int):
    from statsforecast import models

    return getattr(models, name)(season_length=max(int(season), 1))


def fit_start(n_train: int, season: int, budget: int = BUDGET) -> int:
    """The first training value the classics are fitted on: the last ``MAX_FIT`` at most, on a
    whole number of seasons from the series' start (0 without a bound)."""
    start = max(0, n_train - MAX_FIT) if budget else 0
    return start + (-start) % max(int(season), 1) if start else 0


def plan(name: str, n_origins: int, longest: int, season: int, budget: int = BUDGET):
    """``(history, note)``: the values of history each per-origin forward of ``name`` reads
    (None: left out; 0: AutoETS's one pass) and the note saying what the bound did, if anything.
    ``longest``: the history of the last origin from the fit's start."""
    m, force = max(int(season), 1), "--classics-budget 0 to run it anyway"
    if name == "AutoETS":
        if budget and m > ETS_MAX_SEASON:
            why = f"its fit has an initial state per step of the season: slow, failing at 1000; {force}"
            return None, f"AutoETS left out: season {m} is over {ETS_MAX_SEASON} ({why})"
        return 0, None
    history = min(MAX_HISTORY, longest)
    if not budget or n_origins * history <= budget:
        return history, None
    thin = budget // max(n_origins, 1)
    thin -= thin % m
    cost = f"{n_origins:,} origins x {history:,} values of history are over the bound of {budget:,}"
    if thin < max(MIN_HISTORY, 2 * m):
        return None, f"{name} left out: {cost} ({force}, or fewer test points)"
    return thin, f"{name} read the last {thin:,} values of history per origin: {cost}"


def forecasts(
    y, n_train: int, origins, horizon: int, season: int, intervals, budget: int = BUDGET, progress=None
) -> tuple[dict, list]:
    """``({name: {"paths": (M, H), "bounds": {b: (lo (M, H), hi (M, H))}}}, notes)``: each
    classic's forecasts of steps 1 .. H from every origin, and a note for each one the bound
    thinned or left out or that could not be fitted. ``progress(name, done, total)``: called
    as each classic starts and as its origins are forecast."""
    y, origins = np.asarray(y, np.float64), np.asarray(origins, np.int64)
    levels = [int(round(100 * b)) if abs(100 * b - round(100 * b)) < 1e-9 else 100 * b for b in intervals]
    progress = progress if progress is not None or not WATCHERS else WATCHERS[-1]
    first = fit_start(n_train, season, budget)
    out, notes = {}, []
    t0 = time.perf_counter()
    for name in NAMES:
        longest = int(origins[-1]) + 1 - first if len(origins) else 0
        history, note = plan(name, len(origins), longest, season, budget)
        notes += [note] if note else []
        if history is None:
            continue
        report = (lambda d, n=name: progress(n, d, len(origins))) if progress is not None else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows = _rows(name, y, first, n_train, origins, horizon, season, levels, history, report)
        except Exception as e:  # a classic that cannot fit this series is left out, said why
            first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
            notes.append(f"{name} could not be fitted: {first_line}")
            continue
        paths = np.array([r["mean"][:horizon] for r in rows]).reshape(len(rows), horizon)
        if not np.isfinite(paths).all():
            notes.append(f"{name} gave non-finite forecasts: left out")
            continue
        out[name] = {"paths": paths, "bounds": _bounds(rows, intervals, levels, horizon)}
    CLOCK["classics"] += time.perf_counter() - t0
    return out, notes


def _bounds(rows, intervals, levels, horizon: int) -> dict:
    """``{b: (lo (M, H), hi (M, H))}`` of each coverage from the rows of forecasts."""
    stack = lambda key: np.array([r[key][:horizon] for r in rows]).reshape(len(rows), horizon)
    return {b: (stack(f"lo-{lv}"), stack(f"hi-{lv}")) for b, lv in zip(intervals, levels)}


def _rows(name, y, first, n_train, origins, horizon, season, levels, history, report) -> list:
    """One dict of forecasts (``mean``, ``lo-L``, ``hi-L``) per origin: AutoETS in one pass
    (``history`` 0), the others by a ``forward`` per origin over ``history`` values at most."""
    if report is not None:
        report(0)
    fitted = _model(name, season).fit(y[first:n_train])
    if history == 0 and np.ptp(y[first : origins[0] + 1]) > 0:  # a constant history: forward's own case
        return _ets_rows(fitted, y, first, origins, horizon, levels, report)
    rows = []
    for k, t in enumerate(origins):
        start = _start(int(t), season, first, history or MAX_HISTORY)
        rows.append(fitted.forward(y=y[start : t + 1], h=horizon, level=levels))
        if report is not None:
            report(k + 1)
    return rows


def _ets_rows(fitted, y, first, origins, horizon, levels, report) -> list:
    """AutoETS's per-origin ``forward(y[first:t + 1])`` from one run of its filter: the state
    after t and sigma^2 from the squared residuals up to t (statsforecast's own formula)."""
    from statsforecast.ets import forecast_ets, forward_ets

    full = forward_ets(fitted.model_, y[first:])  # the fitted parameters, one pass
    sq = full["residuals"] ** 2
    running = np.cumsum(np.where(np.isinf(sq), 0.0, sq))
    rows = []
    for k, t in enumerate(origins - first):
        one = dict(full, states=full["states"][t + 1 : t + 2], sigma2=running[t] / (t - full["n_params"]))
        rows.append(forecast_ets(one, h=horizon, level=levels))
        if report is not None and (k % 64 == 63 or k == len(origins) - 1):
            report(k + 1)
    return rows


def _start(t: int, season: int, first: int = 0, history: int | None = None) -> int:
    """The first value of the history a forward from origin ``t`` reads: ``history`` (default
    ``MAX_HISTORY``) back at most, on a multiple of the season from ``first`` (the fit's start)."""
    start = max(first, t + 1 - (MAX_HISTORY if history is None else history))
    return start + (first - start) % max(int(season), 1)


def interval_scores(y, bounds: dict) -> dict:
    """Coverage and mean width of a classic's own intervals ``{b: (lo, hi)}``."""
    y = np.asarray(y, np.float64)
    return {
        "coverage": {f"{b:g}": float(np.mean((y >= lo) & (y <= hi))) for b, (lo, hi) in bounds.items()},
        "interval_width": {f"{b:g}": float(np.mean(hi - lo)) for b, (lo, hi) in bounds.items()},
    }
