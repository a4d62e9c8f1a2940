"""What `rnnlab forecast --id-column` prints and plots: one row per series, the summary, and a
grid of the series' test parts with the model's fans."""

from __future__ import annotations

import sys

import numpy as np

from rnnlab.forecast.cli.plots import _plot_fan
from rnnlab.forecast.evaluation import classical as C
from rnnlab.forecast.evaluation.panel import SIMPLE
from rnnlab.io import atomic_write

MAX_PANELS = 12  # series in the plot's grid (the first ones)


def _fmt(v, digits=3):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def print_panel(report: dict, file=sys.stdout) -> None:
    cfg, series = report["config"], report["series"]
    b0 = f"{cfg['intervals'][0]:g}" if cfg.get("likelihood", "none") != "none" else None
    print(f"\nTest metrics per series (one global model), {cfg['horizon']} step(s) ahead:", file=file)
    head = f"  {'series':<16}{'test':>6}{'RMSE':>12}{'/ persist.':>11}{'MASE':>8}"
    head += f"{'cov. ' + format(float(b0), '.0%'):>10}" if b0 else ""
    head += f"  {'best baseline':<16}{'model / best':>12}"
    print(head, file=file)
    print("  " + "-" * (len(head) - 2), file=file)
    for key, r in series.items():
        m = r["metrics"]
        rivals = [n for n in C.NAMES if n in m] or [n for n in SIMPLE if n in m]
        best = min(rivals, key=lambda n: m[n]["rmse"])
        row = (
            f"  {key[:15]:<16}{r['data']['test']['n']:>6}{_fmt(m['model']['rmse'], 2):>12}"
            f"{_fmt(r['rmse_ratio_vs_persistence'], 4):>11}{_fmt(m['model']['mase']):>8}"
        )
        if b0:
            row += f"{_fmt(m['model']['coverage'][b0]):>10}"
        ratio = m["model"]["rmse"] / m[best]["rmse"] if m[best]["rmse"] else None
        row += f"  {best.replace('_', ' '):<16}{_fmt(ratio, 4):>12}"
        print(row, file=file)
    s = report["summary"]
    mean, median = s["mean_rmse_ratio_vs_persistence"], s["median_rmse_ratio_vs_persistence"]
    print(
        f"\nSummary over {s['n_series']} series: RMSE ratio to persistence mean {_fmt(mean, 4)}, "
        f"median {_fmt(median, 4)}; mean MASE {_fmt(s['mean_mase'])}",
        file=file,
    )
    print(
        f"The model beats persistence on {s['share_beating_persistence']:.0%} of the series and the best "
        f"{s['best_baseline_kind']} baseline on {s['share_beating_best_baseline']:.0%}.",
        file=file,
    )
    if "mean_coverage" in s:
        covs = ", ".join(f"{float(b):.0%}: {c:.3f}" for b, c in s["mean_coverage"].items())
        print(f"Mean coverage of the intervals: {covs}.", file=file)
    if s["best_baseline_kind"] == "simple":
        print(f"(AutoETS, AutoARIMA and AutoTheta are not in the table: {C.HOW_TO_GET})", file=file)


def plot_panel(path: str, panel: dict, result: dict) -> str:
    """A grid of the first series: the end of the training part, the test part, the model's
    forecasts and fan, persistence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(panel)[:MAX_PANELS]
    cols = min(3, len(keys))
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        s, r = panel[key], result["results"][key]
        dates = s.dates.astype("O")
        j, n_train = r["targets"], r["n_train"]
        lo = max(0, n_train - 2 * len(j))
        ax.plot(dates[lo:], s.values[lo:], color="black", lw=1.0, label="actual")
        _plot_fan(ax, dates[j], r, r["report"]["config"].get("intervals", ()))
        ax.plot(dates[j], r["preds"]["model"], color="tab:red", lw=1.0, label="model")
        ax.plot(dates[j], r["preds"]["persistence"], color="tab:green", lw=0.8, ls="--", label="persistence")
        ax.axvline(dates[n_train], color="tab:blue", ls="--", lw=1.0)
        ratio = r["report"]["rmse_ratio_vs_persistence"]
        ax.set_title(f"{key}: RMSE / persistence {_fmt(ratio, 3)}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(keys) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="upper left")
    more = f" (the first {MAX_PANELS} of {len(panel)})" if len(panel) > MAX_PANELS else ""
    fig.suptitle(f"one global model over {len(panel)} series{more}", fontsize=11)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    finally:
        plt.close(fig)
