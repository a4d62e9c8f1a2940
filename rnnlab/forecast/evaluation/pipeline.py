"""Split, fit, forecast the test part, score the model and the baselines: one evaluation.

The chronological split (``n`` points, the last ``n_test`` are the test part)::

    y_0 ... y_{n_train-1} | y_{n_train} ... y_{n-1}
    training part           test part (targets)

The forecaster and its scaler see ``y[:n_train]`` only (early stopping uses the end of
it). The forecast for a test target ``y_j`` at horizon H is made at origin ``t = j - H``
from ``y[:t+1]``: past values, as they would be known on day t. Backtesting (``folds`` K)
cuts the test part into K consecutive blocks and refits on everything before each block
(a rolling origin with an expanding training part).
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.estimator import choice
from rnnlab.forecast.estimator import combination as Cm
from rnnlab.forecast.estimator import metrics as Mx
from rnnlab.forecast.estimator import params as PR
from rnnlab.forecast.estimator import uncertainty as U
from rnnlab.forecast.estimator.choice import candidates as candidates  # re-exported
from rnnlab.forecast.estimator.heads import interval_levels
from rnnlab.forecast.estimator.model import Forecaster
from rnnlab.forecast.evaluation import baselines as B
from rnnlab.forecast.evaluation import classical as C
from rnnlab.forecast.evaluation import summaries as S
from rnnlab.forecast.series import covariates as Cov
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import horizons as Hz
from rnnlab.forecast.series.calendar import seasonal_scale

# The default configuration of `rnnlab forecast`, chosen by measurement on the bundled data
# (the README has the table): ten small LSTMs on standardised daily price changes, each with
# early stopping on the end of the training part and its predicted change shrunk towards
# "no change" by a factor fitted on that validation slice; their forecasts are averaged.
# Levels lose badly (a tanh network cannot extrapolate past the training range); log returns
# learn the 2014-2017 drift and lose slightly; changes in USD with an ensemble tie persistence.
# The estimator's constructor defaults ARE this configuration; the split is the CLI's.
DEFAULTS = dict(
    PR.DEFAULTS,
    season=1,  # the CLI reads it off the dates (apply_season); the estimator's None means the same
    test_size=0.2,
    train_windows=None,
    covariates=(),  # past-observed columns (--covariates)
    future_covariates=(),  # columns known ahead (--future-covariates)
    calendar=False,  # calendar columns from the dates (--calendar)
)

# The chapter's recipe (docs/EQUATIONS.md section 8) on correctly ordered data.
PRESETS = {
    "book": dict(
        target="level",
        window=7,
        horizon=1,
        strategy="recursive",
        cell="lstm",
        hidden_size=256,
        num_layers=1,
        dropout=0.0,
        batch_size=7,
        lr=1e-3,
        clip=4.0,
        epochs=100,
        train_windows=1000,
        init="book",
        likelihood="none",
        scaling="global",
        min_updates=0,
        valid_size=0.0,
        shuffle=False,
        weight_decay=0.0,
        shrink=False,
        ensemble=1,
    ),
}

MODEL_KEYS = PR.NAMES


def resolve_config(preset=None, **overrides) -> dict:
    """DEFAULTS, then the preset, then every override that is not None."""
    cfg = dict(DEFAULTS)
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        cfg.update(PRESETS[preset])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("test_size") is not None:
        cfg["train_windows"] = None  # an explicit test size wins over the preset's
    cfg["preset"] = preset
    return cfg


def training_part(y, cfg: dict):
    """The levels of ``y`` the model is fitted on (what the test part leaves)."""
    if cfg.get("train_windows"):
        return y  # the book's "first 1000 windows": its target is fixed, nothing to choose
    return y[: len(y) - D.test_count(len(y), cfg["test_size"])]


def check_config(cfg: dict) -> None:
    """UserError for a value the forecaster would refuse (target "auto" checked as its candidates)."""
    for target in candidates(cfg):
        make_forecaster({**cfg, "target": target})._validate()


def covariate_arrays(series: D.Series, cfg: dict):
    """``(past (n, P), future (n, F))`` of a series (None where there are none): the columns
    ``cfg["covariates"]``, then ``cfg["future_covariates"]`` and the calendar (``--calendar``)."""
    past = [series.covariates[c] for c in cfg.get("covariates", ())]
    future = [series.covariates[c] for c in cfg.get("future_covariates", ())]
    block = [np.stack(future, axis=1)] if future else []
    if cfg.get("calendar"):
        block.append(Cov.calendar(series.dates, series.freq))
    return (
        np.stack(past, axis=1) if past else None,
        np.concatenate(block, axis=1) if block else None,
    )


def fit_model(
    cfg: dict, y=None, panel=None, progress=None, past=None, future=None
) -> Forecaster | Cm.Combination:
    """The ``Forecaster`` of ``cfg`` fitted on ``y`` (or ``panel``), its target chosen among the
    candidates (``choice.fit_model``): every fit of ``rnnlab forecast``."""
    return choice.fit_model(Forecaster, cfg, y, panel, progress, past, future)


def make_forecaster(cfg: dict) -> Forecaster:
    return Forecaster(**{k: cfg[k] for k in MODEL_KEYS if k in cfg})  # the rest: Forecaster's defaults


def n_train_of(n: int, cfg: dict, y=None, min_windows=D.MIN_TRAIN_WINDOWS) -> int:
    """Points in the training part (of the series ``y``, n points): from ``train_windows`` (the
    book's "first 1000 windows") or from ``test_size``; UserError unless it holds
    ``min_windows`` training windows (a series of a panel: ``D.MIN_SERIES_WINDOWS``, the pool of
    every series' windows is checked when the model is fitted, ``pooling.pool``)."""
    n_out = cfg["horizon"] if cfg["strategy"] == "direct" else 1
    ys = None if y is None else [training_part(y, cfg)]
    target = max(candidates(cfg, ys), key=lambda t: D.lag(t, cfg["season"]))  # the longest lag
    if cfg.get("train_windows"):
        n_train = cfg["train_windows"] + D.first_origin(cfg["window"], target, cfg["season"]) + n_out
        if n_train >= n:
            raise UserError(
                f"the series has {n} points: too short for {cfg['train_windows']} training "
                f"windows and a test part (it needs at least {n_train + 1} points)"
            )
        Hz.check_horizon(cfg["horizon"], n_train, cfg, target)
        return n_train
    valid = cfg["valid_size"] > 0
    D.check_length(n, cfg["window"], n_out, target, cfg["test_size"], valid, cfg["season"], min_windows)
    n_train = n - D.test_count(n, cfg["test_size"])
    n_windows = n_train - n_out - D.first_origin(cfg["window"], target, cfg["season"])  # fit's
    D.check_validation_split(n_windows, n_out, cfg["valid_size"], min_windows)
    Hz.check_horizon(cfg["horizon"], n_train, cfg, target)
    return n_train


def apply_season(cfg: dict, series: D.Series, season=None, window_given: bool = False) -> dict:
    """``cfg`` with its ``season`` (``season``, else the one detected from the dates) and, unless
    the window was chosen (an option or a preset), a window of at least one season."""
    cfg = dict(cfg)
    cfg["season"] = int(season) if season else int(series.season)
    cfg["frequency"] = series.freq
    if not window_given and cfg.get("preset") is None:
        cfg["window"] = max(int(cfg["window"]), cfg["season"])
    return cfg


def _score(y, j, preds: dict, n_train: int, horizon: int, season: int = 1) -> dict:
    """Metrics of every method on targets ``y[j]`` (forecast from ``j - horizon``); MASE is
    scaled by the training part's seasonal naive error (season 1: the one-step naive's)."""
    scale = seasonal_scale(y[:n_train], season)
    return {name: Mx.all_metrics(y[j], p, y[j - horizon], scale) for name, p in preds.items()}


def _levels(cfg) -> np.ndarray:
    """The quantile levels an evaluation computes: CRPS's grid 0.01 .. 0.99 and the intervals'."""
    return np.array(sorted(set(U.DENSE.tolist()) | set(interval_levels(cfg["intervals"]))))


def evaluate_split(
    series: D.Series, cfg: dict, n_train: int, test_end: int | None = None, progress=None
) -> dict:
    """Fit on ``y[:n_train]``, forecast targets ``y[n_train:test_end]`` at horizon H (and, for
    H > 1, at every step 1 .. H), with the model's quantiles if it has a distribution."""
    past, future = covariate_arrays(series, cfg)
    cut = lambda a: None if a is None else a[:n_train]  # the training part's rows only
    model = fit_model(cfg, series.values[:n_train], progress=progress, past=cut(past), future=cut(future))
    return evaluate_fitted(model, series, cfg, n_train, test_end)


def evaluate_fitted(model, series: D.Series, cfg: dict, n_train: int, test_end=None, series_id=None) -> dict:
    """``evaluate_split`` of a model already fitted on ``y[:n_train]`` (``series_id``: the
    series' id in a model of many)."""
    y, H, W, m = series.values, cfg["horizon"], cfg["window"], cfg.get("season", 1)
    test_end = len(y) if test_end is None else test_end
    j = np.arange(n_train, test_end)  # test targets
    origins = j - H
    O = np.arange(n_train - H, test_end - 1)  # every origin a (target, step) pair needs
    past, future = covariate_arrays(series, cfg)
    paths = model.forecast_from(y, O, H, series_id, past, future)  # (len(O), H) levels
    levels = _levels(cfg)
    Q = None
    if model.probabilistic:  # (len(O), H, L)
        Q = model.quantiles_from(y, O, levels, H, series=series_id, past=past, future=future)
    rows = lambda h: j - h - O[0]  # rows of O holding the origins j - h
    preds = {"model": paths[rows(H), H - 1]}
    for name, b in B.all_baselines(y, origins, H, W, m).items():
        preds[name] = b[:, H - 1]
    classics: dict[str, dict] = {}  # name -> {"bounds": ...} of each statistical classic
    notes: list[str] = []
    if (
        cfg.get("baselines") == "stats"
    ):  # AutoETS, AutoARIMA, AutoTheta (rnnlab[stats]), from every origin in O
        budget = cfg.get("classics_budget", C.BUDGET)
        classics, notes = C.forecasts(y, n_train, O, H, m, cfg["intervals"], budget)
        preds.update({name: r["paths"][rows(H), H - 1] for name, r in classics.items()})
    out = {
        "n_train": n_train,
        "targets": j,
        "preds": preds,
        "quantiles": None if Q is None else Q[rows(H), H - 1],  # (M, L)
        "levels": levels,
        "model": model,
        "classical_bounds": {
            name: {b: (lo[rows(H), H - 1], hi[rows(H), H - 1]) for b, (lo, hi) in r["bounds"].items()}
            for name, r in classics.items()
        },
        "classical_notes": notes,
        "metrics": _score(y, j, preds, n_train, H, m),
        "dm": Mx.dm_test(y[j] - preds["model"], y[j] - preds["persistence"], H),
    }
    if Q is not None:
        out["metrics"]["model"].update(Mx.interval_metrics(y[j], out["quantiles"], levels, cfg["intervals"]))
    for name, bounds in out["classical_bounds"].items():
        out["metrics"][name].update(C.interval_scores(y[j], bounds))
    if H > 1:  # every step 1..H
        by_step = []
        for h in range(1, H + 1):
            p = {"model": paths[rows(h), h - 1], "persistence": B.persistence(y, j - h, h)[:, h - 1]}
            p.update({name: r["paths"][rows(h), h - 1] for name, r in classics.items()})
            step = {
                "step": h,
                **_score(y, j, p, n_train, h, m),
                "dm_vs_persistence": Mx.dm_test(y[j] - p["model"], y[j] - p["persistence"], h),
            }
            if Q is not None:
                step["model"].update(Mx.interval_metrics(y[j], Q[rows(h), h - 1], levels, cfg["intervals"]))
            by_step.append(step)
        out["by_step"] = by_step
    return out


def run(series: D.Series, cfg: dict, folds: int = 1, progress=None) -> dict:
    """The whole evaluation; returns the report (``report`` key) and arrays for the plot."""
    y = series.values
    for target in candidates(cfg, [training_part(y, cfg)]):
        D.check_target(y, target, f"column {series.column!r}")
    n = len(y)
    n_train = n_train_of(n, cfg, y)
    if folds < 1:
        raise UserError(f"--backtest must be at least 1, got {folds}")
    n_test = n - n_train
    if folds > n_test:
        raise UserError(f"--backtest {folds} needs at least {folds} test points, the test part has {n_test}")
    blocks = np.array_split(np.arange(n_train, n), folds)
    return assemble(series, cfg, _fit_folds(series, cfg, blocks, progress), n_train, blocks)


def assemble(series: D.Series, cfg: dict, runs: list, n_train: int, blocks) -> dict:
    """The report of one series from its folds' evaluations, with the arrays for the plot."""
    y, folds = series.values, len(runs)
    last = runs[-1]
    j = np.concatenate([r["targets"] for r in runs])
    preds = {name: np.concatenate([r["preds"][name] for r in runs]) for name in runs[0]["preds"]}
    H = cfg["horizon"]
    metrics = _score(y, j, preds, n_train, H, cfg.get("season", 1))
    quantiles = None
    if runs[0]["quantiles"] is not None:
        quantiles = np.concatenate([r["quantiles"] for r in runs])  # (M, L)
        metrics["model"].update(Mx.interval_metrics(y[j], quantiles, runs[0]["levels"], cfg["intervals"]))
    dm = Mx.dm_test(y[j] - preds["model"], y[j] - preds["persistence"], H)
    p_rmse = metrics["persistence"]["rmse"]
    ratio = metrics["model"]["rmse"] / p_rmse if p_rmse else None  # None: a flat test part
    best = S.best_baseline(metrics) or "persistence"  # the verdict is against the best of the table
    b_rmse = metrics[best]["rmse"]
    b_ratio = metrics["model"]["rmse"] / b_rmse if b_rmse else None
    b_dm = Mx.dm_test(y[j] - preds["model"], y[j] - preds[best], H)
    report = {
        "data": S.data_summary(series, n_train),
        "config": {k: v for k, v in cfg.items()},
        "metrics": metrics,
        "rmse_ratio_vs_persistence": ratio,
        "dm_test_vs_persistence": dm,
        "best_baseline": best,
        "rmse_ratio_vs_best_baseline": b_ratio,
        "dm_test_vs_best_baseline": b_dm,
        "verdict": S.verdict(b_ratio, b_dm, [a for r in runs for a in r["model"].shrinks_], best),
        **S.training_summary(runs),  # history, shrink, ensemble_histories
        "target": last["model"].target,
        "target_scores": getattr(last["model"], "target_scores_", None),
        "predictions": S.predictions(series, j, preds, quantiles, runs[0]["levels"], cfg),
    }
    S.add_classics(report, runs, y, j, H)
    if quantiles is not None:
        report["calibration"] = S.calibration_summary(runs)
    if "by_step" in last and folds == 1:
        report["by_step"] = last["by_step"]
    if folds > 1:
        report["backtest"] = S.backtest_summary(series, runs)
    return {
        "report": report,
        "targets": j,
        "preds": preds,
        "quantiles": quantiles,
        "levels": runs[0]["levels"],
        "n_train": n_train,
        "fold_starts": [int(b[0]) for b in blocks],
        "forecaster": last["model"],
    }


def _fit_folds(series: D.Series, cfg: dict, blocks, progress) -> list:
    """One ``evaluate_split`` per block of test targets, each fit on everything before it;
    ``progress`` (if any) is called as ``(fold, n_folds, member, epoch, train_loss, valid_loss)``."""
    runs = []
    for k, block in enumerate(blocks):
        fold_progress = None
        if progress is not None:
            fold_progress = lambda *a, k=k, **kw: progress(k, len(blocks), *a, **kw)
        runs.append(evaluate_split(series, cfg, int(block[0]), int(block[-1]) + 1, fold_progress))
    return runs


verdict = S.verdict  # re-exported: the sentence under the table
