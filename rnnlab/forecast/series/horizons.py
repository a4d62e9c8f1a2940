"""The longest horizon a training part supports, checked before anything is trained.

An evaluation forecasts the first test target ``y[n_train]`` from the origin ``n_train - H``,
whose window must be complete::

    n_train - H >= first_origin        i.e.  H <= n_train - first_origin

With calibrated intervals (a likelihood and ``--calibration`` not ``none``) every step
``h = 1 .. H`` is calibrated on the validation targets ``y[o + h]`` inside the training part,
``o`` from the first validation origin ``o_0 = t0 + n_fit`` (``pooling.pool``) to
``n_train - 1 - K``; step H has one only if ``o_0 + H <= n_train - 1``, which is::

    H <= n_valid + K - 1               (K: outputs per window, 1 recursive, H direct)

A horizon past either bound used to train for minutes and then fail (issue 34).
"""

from __future__ import annotations

from rnnlab.errors import UserError
from rnnlab.forecast.series.targets import first_origin


def n_valid_windows(n_windows: int, valid_size: float) -> int:
    """The validation slice of ``n_windows`` training windows (``pooling.pool``'s rule)."""
    return max(int(round(valid_size * n_windows)), 2) if valid_size > 0 else 0


def max_horizon(
    n_train: int, window: int, n_out: int, target: str, season: int, valid_size: float, calibrated: bool
) -> tuple[int, int | None]:
    """``(longest an evaluation forecasts, longest the calibration holds or None)`` for a
    training part of ``n_train`` points (module docstring)."""
    t0 = first_origin(window, target, season)
    n_valid = n_valid_windows(n_train - n_out - t0, valid_size)
    return n_train - t0, (n_valid + n_out - 1 if calibrated and n_valid else None)


def check_horizon(horizon: int, n_train: int, cfg: dict, target: str, evaluated: bool = True) -> None:
    """UserError naming the longest horizon unless ``cfg``'s horizon fits ``n_train`` points
    (``target``: the candidate with the longest lag, the one that binds). ``evaluated`` False:
    a fit alone (the Python API), which only the calibration bounds (a recursive model fitted
    without one forecasts as far as it is asked)."""
    n_out = horizon if cfg["strategy"] == "direct" else 1
    calibrated = cfg["likelihood"] != "none" and cfg["calibration"] != "none"
    evaluation, calibration = max_horizon(
        n_train, cfg["window"], n_out, target, cfg["season"], cfg["valid_size"], calibrated
    )
    bounds = [b for b in (evaluation if evaluated else None, calibration) if b is not None]
    if not bounds or horizon <= min(bounds):
        return
    longest = min(bounds)
    why = f"the training part has {n_train} points (window {cfg['window']}, target {target})"
    if calibration is not None and longest == calibration:
        why += f" and its validation slice calibrates the intervals' steps up to {longest}"
        if evaluated and evaluation > calibration:
            why += f" (--calibration none allows up to {evaluation}, a larger --valid-size more)"
    raise UserError(f"--horizon {horizon} is longer than this series supports: at most {longest}; {why}")
