"""One global model on a real panel: `rnnlab forecast --id-column` against per-series baselines.

    pip install -e ".[bench]"
    python benchmarks/forecast_panel.py [--seeds 0 10 20] [--test-size 4] [--out FILE.json]

The panel is statsmodels' Grunfeld investment data: gross investment of 11 US firms, yearly
1935-1954 (20 points each, scales from 1 to 1,500). Each series alone is far too short for a
network (20 training windows are needed); in the panel every series adds its windows to one
pool. Each series' last ``--test-size`` points are its test part, forecast one step ahead with
the true values, no refit; the classics (AutoETS, AutoARIMA, AutoTheta) are fitted per series
on its training part. Nothing was tuned on this panel: it runs the defaults.

Prints, per seed (an ensemble of ten networks seeded ``seed .. seed + 9``), the report's
summary (mean and median RMSE ratio to persistence, the shares of series where the model beats
persistence and the best classic, mean interval coverage), then the per-series table of the
last seed; raw reports to ``benchmarks/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rnnlab.forecast.evaluation import panel as Panel  # noqa: E402
from rnnlab.forecast.evaluation import pipeline as P  # noqa: E402
from rnnlab.io import write_json  # noqa: E402


def grunfeld_csv(folder: str) -> str:
    """statsmodels' Grunfeld panel as a long CSV (firm, date, invest)."""
    import statsmodels.api as sm

    df = sm.datasets.grunfeld.load_pandas().data
    df["date"] = df["year"].astype(int).astype(str) + "-01-01"
    path = os.path.join(folder, "grunfeld.csv")
    df[["firm", "date", "invest"]].to_csv(path, index=False)
    return path


def run(path: str, seed: int, test_size: int) -> dict:
    panel = Panel.load_panel(path, "firm", "invest", "date")
    first = next(iter(panel.values()))
    cfg = P.apply_season(P.resolve_config(None, test_size=test_size, seed=seed), first)
    cfg["baselines"] = "stats"
    t0 = time.perf_counter()
    report = Panel.run(panel, cfg)["report"]
    report["seconds"] = time.perf_counter() - t0
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 10, 20])
    ap.add_argument("--test-size", type=int, default=4)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    reports = []
    with tempfile.TemporaryDirectory() as folder:
        path = grunfeld_csv(folder)
        for seed in args.seeds:
            r = run(path, seed, args.test_size)
            reports.append(r)
            s = r["summary"]
            print(
                f"seed {seed}: {r['seconds']:.0f} s, target {r['target']}; RMSE / persistence "
                f"mean {s['mean_rmse_ratio_vs_persistence']:.3f}, "
                f"median {s['median_rmse_ratio_vs_persistence']:.3f}; "
                f"beats persistence on {s['share_beating_persistence']:.0%}, the best classic on "
                f"{s['share_beating_best_baseline']:.0%}; coverage 80% "
                f"{s['mean_coverage']['0.8']:.2f}, 95% {s['mean_coverage']['0.95']:.2f}",
                flush=True,
            )
    med = [r["summary"]["median_rmse_ratio_vs_persistence"] for r in reports]
    print(f"\nmedian series, RMSE / persistence: {np.mean(med):.3f} ({min(med):.3f}-{max(med):.3f})\n")
    print("| firm | test | model / persistence | model / best classic | best classic | cov. 80% |")
    print("|---|---|---|---|---|---|")
    for firm, s in reports[-1]["series"].items():
        m = s["metrics"]
        classics = [(m[k]["rmse"], k) for k in ("AutoETS", "AutoARIMA", "AutoTheta") if k in m]
        best = min(classics)[1] if classics else None
        vs_best = f"{m['model']['rmse'] / m[best]['rmse']:.3f}" if best else "n/a"
        cov = m["model"].get("coverage", {}).get("0.8")
        print(
            f"| {firm} | {s['data']['test']['n']} | {s['rmse_ratio_vs_persistence']:.3f} | {vs_best} | "
            f"{best or 'n/a'} | {'n/a' if cov is None else f'{cov:.2f}'} |"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"forecast-panel-{stamp}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write_json(out, {"seeds": args.seeds, "reports": reports})
    print(f"raw reports: {out}")


if __name__ == "__main__":
    main()
