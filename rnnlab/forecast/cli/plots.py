"""The forecast picture: actual vs predicted (with persistence) and the loss curves.

Top panel: the end of the training part and the whole test part, the train/test boundary
(and backtest fold starts) marked, the model's test forecasts with a fan of its prediction
intervals (when it has a distribution) and the persistence baseline.
Bottom panel: training and validation loss per epoch (log scale) with the restored best
epoch marked. An inset on the top panel zooms on the last test points, where the model's
and persistence's one-step lag behind the actual series can be seen.
"""

from __future__ import annotations

import numpy as np

from rnnlab.forecast.estimator.metrics import level_index
from rnnlab.io import atomic_write


def plot_forecast(path: str, series, result: dict, title: str = "") -> str:
    """Write the PNG atomically (a temp file renamed into place); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dates = series.dates.astype("datetime64[s]").astype("O")  # datetimes: hourly series keep their hours
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 8.5), gridspec_kw={"height_ratios": [1.5, 1]})
    _plot_actual_vs_predicted(ax1, dates, series, result, title)
    _plot_last_points(ax1, dates, series.values, result)
    _plot_losses(ax2, result)
    fig.tight_layout()

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)


def _plot_actual_vs_predicted(ax1, dates, series, result: dict, title: str) -> None:
    """Top panel: the end of the training part, the boundary (and fold starts), the test part
    with the model's and persistence's forecasts."""
    y = series.values
    j = result["targets"]
    preds = result["preds"]
    report = result["report"]
    n_train = result["n_train"]
    H = report["config"]["horizon"]
    units = series.column
    lo = max(0, n_train - 2 * len(j))  # some training context
    ax1.plot(dates[lo:n_train], y[lo:n_train], color="0.55", lw=1.0, label="actual (training part)")
    ax1.plot(dates[n_train:], y[n_train:], color="black", lw=1.2, label="actual (test part)")
    _plot_fan(ax1, dates[j], result, report["config"].get("intervals", ()))
    ax1.plot(
        dates[j],
        preds["model"],
        color="tab:red",
        lw=1.0,
        label=f"model, {H} step(s) ahead (RMSE {report['metrics']['model']['rmse']:,.1f})",
    )
    ax1.plot(
        dates[j],
        preds["persistence"],
        color="tab:green",
        lw=1.0,
        ls="--",
        label=f"persistence, tomorrow = today (RMSE {report['metrics']['persistence']['rmse']:,.1f})",
    )
    ax1.axvline(dates[n_train], color="tab:blue", ls="--", lw=1.2, label="train | test boundary")
    for k, start in enumerate(result.get("fold_starts", [])[1:]):
        ax1.axvline(
            dates[start],
            color="tab:blue",
            ls=":",
            lw=0.8,
            label="backtest fold start (refit on all before it)" if k == 0 else None,
        )
    _plot_future(ax1, result.get("future"), report["config"].get("intervals", ()))
    ax1.set_ylabel(units)
    ratio = report["rmse_ratio_vs_persistence"]
    ax1.set_title(
        title
        or (
            f"{series.column}: test {report['data']['test']['start']} .. "
            f"{report['data']['test']['end']}, RMSE ratio model / persistence = "
            + ("n/a" if ratio is None else f"{ratio:.4f}")
        )
    )
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(alpha=0.3)


def future_x(rows):
    """The future rows' dates as datetimes for the x axis (wall clock); None for integer steps."""
    import pandas as pd

    ds = [r["ds"] for r in rows]
    if not ds or str(ds[0]).lstrip("-").isdigit():
        return None
    t = pd.to_datetime(pd.Series(ds), utc=False, format="ISO8601")
    if getattr(t.dt, "tz", None) is not None:
        t = t.dt.tz_localize(None)
    return [d.to_pydatetime() for d in t]


def _plot_future(ax, rows, intervals) -> None:
    """The future after the last date (the refitted model's): its mean and a fan of its
    intervals, in blue to tell it from the backtest."""
    x = None if not rows else future_x(rows)
    if x is None:
        return
    for b in sorted(intervals, reverse=True):
        lo, hi = f"lo-{round(100 * b, 8):g}", f"hi-{round(100 * b, 8):g}"
        if lo in rows[0]:
            alpha = 0.15 + 0.2 * (b != max(intervals))
            ax.fill_between(
                x, [r[lo] for r in rows], [r[hi] for r in rows], color="tab:blue", alpha=alpha, lw=0
            )
    ax.plot(
        x,
        [r["mean"] for r in rows],
        color="tab:blue",
        lw=1.4,
        label=f"the future: next {len(rows)} step(s), refitted on all",
    )


def _plot_fan(ax, x, result: dict, intervals) -> None:
    """The model's central intervals around its forecasts (the widest palest), if it has any."""
    q = result.get("quantiles")
    if q is None:
        return
    levels = result["levels"]
    for b in sorted(intervals, reverse=True):
        lo, hi = level_index(levels, round((1 - b) / 2, 10)), level_index(levels, round((1 + b) / 2, 10))
        shade = 0.12 + 0.18 * (1 - b) / (1 - min(intervals) + 1e-9) * (b != max(intervals))
        ax.fill_between(
            x, q[:, lo], q[:, hi], color="tab:red", alpha=0.12 + shade, lw=0, label=f"{b:.0%} interval"
        )


def _plot_last_points(ax1, dates, y, result: dict) -> None:
    """The inset on the top panel: the last (up to 30) test points, none if fewer than 5."""
    import matplotlib.dates

    j = result["targets"]
    preds = result["preds"]
    # an inset on the last few test points, where the one-step lag of each forecast shows
    k = min(len(j), 30)
    if k >= 5:
        ins = ax1.inset_axes([0.05, 0.30, 0.36, 0.36])
        tail = slice(len(j) - k, len(j))
        ins.plot(dates[j[tail]], y[j[tail]], color="black", lw=1.2, marker=".", ms=4)
        _plot_fan(
            ins, dates[j[tail]], {**result, "quantiles": _tail(result.get("quantiles"), tail)}, _ivals(result)
        )
        ins.plot(dates[j[tail]], preds["model"][tail], color="tab:red", lw=1.0, marker=".", ms=3)
        ins.plot(dates[j[tail]], preds["persistence"][tail], color="tab:green", lw=1.0, ls="--")
        ins.set_title(f"last {k} test points, {dates[j[len(j) - k]]} .. {dates[j[-1]]}", fontsize=8)
        ins.tick_params(labelsize=7)
        ins.xaxis.set_major_locator(matplotlib.dates.AutoDateLocator(maxticks=4))
        ins.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%m-%d"))
        ins.grid(alpha=0.3)


def _tail(q, tail):
    return None if q is None else q[tail]


def _ivals(result: dict):
    return result["report"]["config"].get("intervals", ())


def _plot_losses(ax2, result: dict) -> None:
    """Bottom panel: training and validation loss per epoch (log scale), the other networks of
    the ensemble faintly, the restored best epoch marked."""
    report = result["report"]
    hist = report["history"]
    tr, va = hist["train_loss"], hist["valid_loss"]
    epochs = np.arange(1, len(tr) + 1)
    for k, other in enumerate(report.get("ensemble_histories", [])[1:]):  # the other networks
        e = np.arange(1, len(other["train_loss"]) + 1)
        ax2.plot(e, other["train_loss"], color="tab:purple", lw=0.6, alpha=0.35)
        if other["valid_loss"]:
            ax2.plot(
                e,
                other["valid_loss"],
                color="tab:orange",
                lw=0.6,
                alpha=0.35,
                label="the ensemble's other networks" if k == 0 else None,
            )
    ax2.plot(epochs, tr, color="tab:purple", label="training loss")
    if va:
        ax2.plot(epochs[: len(va)], va, color="tab:orange", label="validation loss (end of training part)")
        if hist.get("best_epoch"):
            ax2.axvline(
                hist["best_epoch"],
                color="0.4",
                ls=":",
                lw=1.0,
                label=f"best epoch {hist['best_epoch']} (weights restored)",
            )
    values = [v for v in list(tr) + list(va or []) if v is not None]
    ax2.set_yscale("log" if values and min(values) > 0 else "linear")  # an NLL can be negative
    ax2.set_xlabel("epoch")
    lik = report["config"].get("likelihood", "none")
    ax2.set_ylabel({"none": "MSE", "quantile": "pinball loss"}.get(lik, f"{lik} NLL") + " (scaled)")
    ax2.set_title(
        "loss per epoch" + (" (last backtest fold)" if len(result.get("fold_starts", [])) > 1 else "")
    )
    ax2.legend(loc="upper right", fontsize=8)
    ax2.grid(alpha=0.3, which="both")
