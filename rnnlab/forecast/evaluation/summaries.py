"""The sections of a forecast report, from the folds' evaluations (``pipeline.assemble``):
the data, the training, the predictions with their quantiles, the classics, the calibration,
the backtest, and the verdict."""

from __future__ import annotations

import math

import numpy as np

from rnnlab.forecast.estimator import metrics as Mx
from rnnlab.forecast.estimator.heads import interval_levels
from rnnlab.forecast.evaluation import classical as C
from rnnlab.forecast.series import data as D


def data_summary(series: D.Series, n_train: int) -> dict:
    """The report's ``data`` section: the file, its checks' notes, the train and test parts."""
    n = len(series)
    return {
        "path": series.path,
        "column": series.column,
        "date_column": series.date_column,
        "n_points": n,
        "notes": list(series.notes),
        "train": {"start": series.date_str(0), "end": series.date_str(n_train - 1), "n": n_train},
        "test": {"start": series.date_str(n_train), "end": series.date_str(n - 1), "n": n - n_train},
    }


def training_summary(runs: list) -> dict:
    """The report's ``history``, ``shrink`` and ``ensemble_histories``: the last fold's
    networks (the first one's full history), the training time of every fold."""
    last = runs[-1]
    hist = last["model"].histories_[0]
    return {
        "history": {
            "train_loss": hist["train_loss"],
            "valid_loss": hist["valid_loss"],
            "best_epoch": hist["best_epoch"],
            "stopped_epoch": hist["stopped_epoch"],
            "train_seconds": sum(h["seconds"] for r in runs for h in r["model"].histories_),
        },
        "shrink": last["model"].shrinks_,
        "ensemble_histories": [
            {"train_loss": h["train_loss"], "valid_loss": h["valid_loss"], "best_epoch": h["best_epoch"]}
            for h in last["model"].histories_
        ],
    }


def predictions(series: D.Series, j, preds: dict, quantiles, levels, cfg) -> list:
    """The report's ``predictions``: per test target, the actual, the model's and persistence's,
    and the model's quantiles at the levels of its intervals (when it has a distribution)."""
    y = series.values
    out = [
        {
            "date": series.date_str(int(t)),
            "actual": float(y[t]),
            "predicted": float(preds["model"][i]),
            "persistence": float(preds["persistence"][i]),
        }
        for i, t in enumerate(j)
    ]
    if quantiles is not None:
        keep = [(f"{lv:g}", Mx.level_index(levels, lv)) for lv in interval_levels(cfg["intervals"])]
        for i, entry in enumerate(out):
            entry["quantiles"] = {name: float(quantiles[i, k]) for name, k in keep}
    return out


def add_classics(report: dict, runs: list, y, j, H: int) -> None:
    """The classics' interval scores over every fold, the Diebold-Mariano test of the model
    against the best of them (lowest RMSE) and why any was left out; or how to get them."""
    metrics = report["metrics"]
    names = [n for n in C.NAMES if n in metrics]
    if report["config"].get("baselines") != "stats":
        report["classical"] = {"included": False, "how_to_get": C.HOW_TO_GET}
        return
    for name in names:
        bounds = {
            b: tuple(np.concatenate([r["classical_bounds"][name][b][k] for r in runs]) for k in (0, 1))
            for b in runs[0]["classical_bounds"][name]
        }
        metrics[name].update(C.interval_scores(y[j], bounds))
    notes = sorted({n for r in runs for n in r["classical_notes"]})
    report["classical"] = {"included": True, "models": names, "notes": notes}
    if names:
        best = min(names, key=lambda n: metrics[n]["rmse"])
        pred_best = np.concatenate([r["preds"][best] for r in runs])
        pred_model = np.concatenate([r["preds"]["model"] for r in runs])
        dm = Mx.dm_test(y[j] - pred_model, y[j] - pred_best, H)
        ratio = metrics["model"]["rmse"] / metrics[best]["rmse"] if metrics[best]["rmse"] else None
        report["classical"].update(best=best, rmse_ratio_vs_best=ratio, dm_test_vs_best=dm)


def calibration_summary(runs) -> dict | None:
    """How the intervals were calibrated: the last fold's conformal factors and the raw
    coverage they corrected on the validation slice (None: raw intervals)."""
    cal = runs[-1]["model"].calibration_
    if not cal:
        return {"method": "none"}
    if not cal.get("applied", True):
        return {"method": "none: the raw coverage passed a binomial test on the validation slice", **cal}
    return {"method": "split-conformal on the validation slice", **cal}


def backtest_summary(series, runs) -> dict:
    folds = []
    for k, r in enumerate(runs):
        j = r["targets"]
        folds.append(
            {
                "fold": k + 1,
                "train": {
                    "start": series.date_str(0),
                    "end": series.date_str(r["n_train"] - 1),
                    "n": r["n_train"],
                },
                "test": {
                    "start": series.date_str(int(j[0])),
                    "end": series.date_str(int(j[-1])),
                    "n": len(j),
                },
                "metrics": r["metrics"],
                "dm_test_vs_persistence": {"statistic": r["dm"]["statistic"], "p_value": r["dm"]["p_value"]},
            }
        )
    average: dict[str, dict[str, float | None]] = {}
    for name in runs[0]["metrics"]:
        average[name] = {}
        for m in Mx.METRICS:
            vals = [f["metrics"][name][m] for f in folds if f["metrics"][name][m] is not None]
            average[name][m] = float(np.mean(vals)) if vals else None
    return {"folds": folds, "average": average}


NAMES = {"persistence": "persistence ('tomorrow = today')", "moving_average": "the moving average"}


def best_baseline(metrics: dict) -> str | None:
    """The baseline of the table with the lowest RMSE (persistence, drift, moving average,
    seasonal naive and, when installed, the statistical classics); None if there is none."""
    rmse = {k: v["rmse"] for k, v in metrics.items() if k != "model" and v.get("rmse") is not None}
    return min(rmse, key=lambda k: (rmse[k], k != "persistence")) if rmse else None


def verdict(ratio: float | None, dm: dict, shrinks=(), against: str = "persistence") -> str:
    """The sentence under the table: the model against ``against`` (the best baseline of the
    table), by RMSE ``ratio`` and the Diebold-Mariano test ``dm`` of the two."""
    name = NAMES.get(against, against.replace("_", " "))
    p = dm.get("p_value")
    ptxt = "n/a" if p is None else f"{p:.3f}"
    if ratio is None or not math.isfinite(ratio):
        return f"no verdict: {name}'s error is zero (the test part is flat)"
    if shrinks and not any(shrinks):
        return (
            "the forecast IS persistence: on the validation slice every network did worse than "
            "'no change', so each was shrunk to it (factor 0); nothing here beats persistence"
        )
    if ratio < 1.0:
        pct = 100 * (1 - ratio)
        if p is not None and p < 0.05:
            return (
                f"the model beats the best baseline, {name}: RMSE {pct:.2f}% lower, and the "
                f"Diebold-Mariano test finds the difference significant (p = {ptxt})"
            )
        return (
            f"the model's RMSE is {pct:.2f}% lower than the best baseline's ({name}), but the "
            f"Diebold-Mariano test does not find the difference significant (p = {ptxt}): in "
            f"practice it is no better than {name}"
        )
    if ratio == 1.0:
        return f"the model's RMSE equals the best baseline's ({name})"
    return (
        f"the model does NOT beat the best baseline, {name}: its RMSE is {100 * (ratio - 1):.2f}% "
        f"higher (Diebold-Mariano p = {ptxt})"
    )
