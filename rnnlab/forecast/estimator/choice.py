"""The forecaster a configuration names, fitted: its target chosen among candidates when it is
"auto", its season read off the dates when it is None.

``fit_model`` is what ``rnnlab forecast`` fits (``pipeline``: a backtest's every fold, the refit,
a panel) and ``fit_resolved`` what ``Forecaster.fit`` does with a DataFrame or those defaults
(``frames``): the season from the dates' frequency (``dates.label``; 1 without dates), the window
raised to one season, the target chosen on the validation slice among ``candidates`` (possibly a
``Combination`` of several). Both receive the forecaster's class and build its instances with it,
so this module sits below ``model.py``, which calls it, and never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rnnlab.forecast.estimator.combination import Combination, members
from rnnlab.forecast.estimator.frames import columns_of, to_panel
from rnnlab.forecast.estimator.params import NAMES
from rnnlab.forecast.series import data as D

if TYPE_CHECKING:
    from rnnlab.forecast.estimator.model import Forecaster

SCREEN = 2  # networks per candidate target when "auto" chooses on a long series (then the winner's)
SCREEN_ABOVE = 600  # training points over all series that make a series "long"


def candidates(cfg: dict, ys=None) -> list:
    """The targets ``fit_model`` tries: the one asked for; "auto": diff and, with a season,
    deseason and deseason_mean (training parts ``ys`` positive and a few seasons past their
    history), else sdiff (training parts long enough for its windows).

    Every candidate is another chance for a short validation slice to pick by luck, so there
    are few: the deseason targets do sdiff's work on a positive series, and did it better on
    the development series; logreturn is not tried, its gain there lay inside the ensembles'
    spread (docs/MEASUREMENTS.md, "Why the forecaster chooses as it does")."""
    if cfg["target"] != "auto":
        return [cfg["target"]]
    if cfg["valid_size"] <= 0:
        return ["diff"]
    m = cfg.get("season", 1)
    if m < 2:
        return ["diff"]
    ys = [] if ys is None else [np.asarray(v, np.float64) for v in ys]
    need = D.history_length("deseason_mean", m) + cfg["window"] + 2 * m
    if all(np.all(v > 0) and len(v) >= need for v in ys):
        return ["diff", "deseason", "deseason_mean"]
    n_out = cfg["horizon"] if cfg["strategy"] == "direct" else 1
    sdiff = D.min_train_length(cfg["window"], n_out, "sdiff", True, m)
    return ["diff", "sdiff"] if all(len(v) >= sdiff for v in ys) else ["diff"]


def fit_model(
    cls: type[Forecaster], cfg: dict, y=None, panel=None, progress=None, past=None, future=None
) -> Forecaster | Combination:
    """The forecaster of ``cfg`` (an instance of ``cls``, ``Forecaster``) fitted on the levels ``y``
    (or on ``panel``, {id: levels}), with covariates ``past`` / ``future`` (arrays, or {id: array}
    with a panel).

    Target "auto" fits one forecaster per candidate (``candidates``; of ``SCREEN`` networks past
    ``SCREEN_ABOVE`` training points) and scores each by its one-step forecasts on the
    validation slice: their RMSE relative to persistence's there (the mean of that ratio over
    the series; chosen on the training part alone). It keeps the best target and every other
    close to it (``combination.members``), fits their whole ensembles, and returns the best's
    ``Forecaster`` alone or a ``Combination`` averaging them."""
    ys = [y] if panel is None else list(panel.values())
    ids = [None] if panel is None else list(panel)
    covs = [(past, future)] if panel is None else [((past or {}).get(k), (future or {}).get(k)) for k in ids]

    def fit(c):
        f = cls(**{k: c[k] for k in NAMES if k in c})  # the rest: the class's defaults
        shown = progress  # several candidates: each bar says which target it trains
        if progress is not None and len(targets) > 1:
            shown = lambda *a: progress(*a, label=f"target {c['target']}:")  # noqa: E731
        if panel is None:
            return f.fit(y, progress=shown, past=past, future=future)
        return f.fit_many(panel, progress=shown, past=past, future=future)

    targets = candidates(cfg, ys)
    if len(targets) == 1:
        f = fit({**cfg, "target": targets[0]})
        f.target_scores_ = {targets[0]: None}
        return f
    # a long series: screen the candidates with SCREEN networks each, then fit the members' whole
    # ensembles (their first SCREEN networks are the screened ones again: the same seeds); a
    # short one is cheap, and two networks choose worse there (wineind: docs/MEASUREMENTS.md,
    # "Why the forecaster chooses as it does")
    long = sum(len(v) for v in ys) > SCREEN_ABOVE
    screen = {**cfg, "ensemble": min(cfg["ensemble"], SCREEN)} if long else cfg
    fitted = {t: fit({**screen, "target": t}) for t in targets}
    errors = {t: _validation_errors(fitted[t], ys, ids, covs) for t in targets}
    scores = {t: _ratio(errors[t]) for t in targets}
    keep = members(scores, errors)
    if screen["ensemble"] != cfg["ensemble"]:
        fitted = {t: fit({**cfg, "target": t}) for t in keep}
    f = fitted[keep[0]] if len(keep) == 1 else Combination([fitted[t] for t in keep])
    f.target_scores_ = scores
    return f


def _validation_errors(f: Forecaster, ys, ids, covs) -> list:
    """Per series, ``{origin: one-step error / persistence's RMSE}`` on ``f``'s validation slice
    (a flat slice, where persistence is exact: the errors over their own RMSE)."""
    out = []
    for yi, sid, o, (past, future) in zip(ys, ids, f.valid_origins_, covs):
        yi = np.asarray(yi, np.float64)
        err = yi[o + 1] - f.forecast_from(yi, o, 1, sid, past, future)[:, 0]
        naive = yi[o + 1] - yi[o]
        denom = float(np.sqrt(np.mean(naive * naive)))
        if not denom > 0:
            denom = max(float(np.sqrt(np.mean(err * err))), 1e-300)
        out.append(dict(zip(o.tolist(), (err / denom).tolist())))
    return out


def _ratio(errors: list) -> float:
    """The mean over the series of one-step RMSE / persistence's RMSE (``_validation_errors``)."""
    return float(np.mean([np.sqrt(np.mean(np.square(list(e.values())))) for e in errors]))


def _validation_ratio(f: Forecaster, ys, ids, covs) -> float:
    """The mean over the series of one-step RMSE / persistence's RMSE on the validation slice."""
    return _ratio(_validation_errors(f, ys, ids, covs))


def fit_resolved(f, data, progress=None, past=None, future=None, past_covariates=(), future_covariates=()):
    """``f.fit`` with its defaults resolved (module docstring); returns ``f``."""
    f._validate()
    panel = to_panel(data, past_covariates, future_covariates)
    first = next(iter(panel.values()))
    season = int(f.season) if f.season else int(first.season)
    window = max(int(f.window), season) if not f.season else int(f.window)
    cfg = {**f.get_params(), "season": season, "window": window}
    many = len(panel) > 1
    pasts = {k: columns_of(s, past_covariates) for k, s in panel.items()}
    futures = {k: columns_of(s, future_covariates) for k, s in panel.items()}
    if past is not None or future is not None:  # arrays given as in Forecaster.fit
        pasts = {k: past if not many else past[k] for k in panel} if past is not None else pasts
        futures = {k: future if not many else future[k] for k in panel} if future is not None else futures
    ys = {k: s.values for k, s in panel.items()}
    k0 = next(iter(panel))
    if many:
        model = fit_model(
            type(f),
            cfg,
            panel=ys,
            progress=progress,
            past=_none_if_empty(pasts),
            future=_none_if_empty(futures),
        )
    else:
        model = fit_model(type(f), cfg, ys[k0], progress=progress, past=pasts[k0], future=futures[k0])
    model.covariate_spec_ = {
        "past": list(past_covariates),
        "future": list(future_covariates),
        "calendar": None,
    }
    model.series_info_ = {}
    f.__dict__["model_"] = model
    f.history_, f.ids_ = panel, list(panel)
    f.covariate_names_ = (list(past_covariates), list(future_covariates))
    return f


def _none_if_empty(d: dict):
    return None if all(v is None for v in d.values()) else d
