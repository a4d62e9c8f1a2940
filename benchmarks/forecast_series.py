"""`rnnlab forecast` against the statistical classics on public series it was not tuned on.

    pip install -e ".[bench]"     # pmdarima's and statsmodels' series, statsforecast's classics
    python benchmarks/forecast_series.py [--set dev|heldout] [--likelihood ...] [--calibration ...]
                                         [--only NAME ...] [--seeds 0 10 20] [--out FILE.json]

``dev``: six series bundled with pmdarima (pip install pmdarima), of different kinds; the
defaults were chosen on these. ``heldout``: statsmodels' co2, sunspots, elnino, nile and
macrodata (realgdp), the independent check, never used to choose anything. Each series is
written as a CSV with its dates and run through the same pipeline as `rnnlab forecast` (the
default configuration, the season from the dates, --baselines stats), the last 20% of the
points as the test part (msft: its last 2,000 trading days, 400 of them the test part).

Prints a Markdown table (RMSE of each method divided by persistence's, the model's coverage of
its 80% and 95% intervals) and writes the raw reports as JSON (default
benchmarks/results/forecast-SET-DATE.json, git-ignored). ``--seeds``: the model is fitted once per
seed (an ensemble of ten networks seeded ``seed .. seed + 9``: use seeds ten apart for disjoint
ensembles) and its columns are the means over the seeds, with the range of its RMSE ratio; the
classics are deterministic.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from rnnlab.forecast.evaluation import pipeline as P  # noqa: E402
from rnnlab.forecast.series import data as D  # noqa: E402
from rnnlab.io import write_json  # noqa: E402

METHODS = ("model", "seasonal_naive", "AutoETS", "AutoARIMA", "AutoTheta")


def _dated(values, start, freq):
    import pandas as pd

    return np.asarray(values, np.float64), pd.date_range(start, periods=len(values), freq=freq)


def dev_series() -> dict:
    """name -> (kind, values, dates): pmdarima's bundled datasets."""
    from pmdarima import datasets as d

    msft = d.load_msft().tail(2000)
    import pandas as pd

    return {
        "wineind": ("monthly, seasonal", *_dated(d.load_wineind(), "1980-01-01", "MS")),
        "airpassengers": ("monthly, seasonal, trend", *_dated(d.load_airpassengers(), "1949-01-01", "MS")),
        "woolyrnq": ("quarterly, seasonal", *_dated(d.load_woolyrnq(), "1965-01-01", "QS")),
        "austres": ("quarterly, trend", *_dated(d.load_austres(), "1971-01-01", "QS")),
        "lynx": ("yearly, cyclic", *_dated(d.load_lynx(), "1821-01-01", "YS")),
        "msft": (
            "daily (trading days), financial",
            msft["Close"].to_numpy(float),
            pd.to_datetime(msft["Date"]),
        ),
    }


def heldout_series() -> dict:
    """name -> (kind, values, dates): statsmodels' datasets (the independent check)."""
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().ffill()
    sun = sm.datasets.sunspots.load_pandas().data
    elnino = sm.datasets.elnino.load_pandas().data.drop(columns="YEAR").to_numpy().ravel()
    nile = sm.datasets.nile.load_pandas().data
    macro = sm.datasets.macrodata.load_pandas().data
    return {
        "co2": ("monthly, seasonal, trend", co2.to_numpy(float), co2.index),
        "sunspots": ("yearly, cyclic", *_dated(sun["SUNACTIVITY"], "1700-01-01", "YS")),
        "elnino": ("monthly, seasonal", *_dated(elnino, "1950-01-01", "MS")),
        "nile": ("yearly", *_dated(nile["volume"], "1871-01-01", "YS")),
        "realgdp": ("quarterly, trend", *_dated(macro["realgdp"], "1959-01-01", "QS")),
    }


def run_one(name, values, dates, overrides: dict) -> dict:
    days = np.asarray(dates, dtype="datetime64[D]")
    freq, season = __import__("rnnlab.forecast.series.calendar", fromlist=["x"]).detect_frequency(days)
    series = D.Series(values, days, name, "value", "date", [], freq, season)
    test_size = 400 if name == "msft" else 0.2
    cfg = P.resolve_config(None, test_size=test_size, **overrides)
    cfg = P.apply_season(cfg, series)
    if cfg["target"] in D.SEASONAL and cfg["season"] < 2:
        cfg["target"] = "diff"  # no season to difference over
    cfg["baselines"] = "stats"
    t0 = time.perf_counter()
    report = P.run(series, cfg)["report"]
    report["seconds"] = time.perf_counter() - t0
    return report


def model_ratios(reports: list) -> np.ndarray:
    """The model's RMSE / persistence's, one per seed."""
    return np.array([r["metrics"]["model"]["rmse"] / r["metrics"]["persistence"]["rmse"] for r in reports])


def best_classic(m: dict) -> str:
    return min((m[k]["rmse"], k) for k in METHODS[2:] if k in m)[1]


def table(results: dict, kinds: dict) -> str:
    head = (
        "| series | kind | test | "
        + " | ".join(m.replace("_", " ") for m in METHODS)
        + " | cov. 80% | cov. 95% |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, reports in results.items():
        m = reports[0]["metrics"]
        p = m["persistence"]["rmse"]
        cells = []
        ratios = model_ratios(reports)
        for k in METHODS:
            if k not in m:
                cells.append("n/a")
                continue
            if k != "model":
                cells.append(f"{m[k]['rmse'] / p:.3f}")
                continue
            txt = f"{ratios.mean():.3f}"
            txt = f"**{txt}**" if ratios.mean() * p <= m[best_classic(m)]["rmse"] else txt
            cells.append(txt + (f" ({ratios.min():.3f}–{ratios.max():.3f})" if len(ratios) > 1 else ""))
        cov = [
            np.mean([r["metrics"]["model"].get("coverage", {}).get(b, np.nan) for r in reports])
            for b in ("0.8", "0.95")
        ]
        lines.append(
            f"| {name} | {kinds[name]} | {reports[0]['data']['test']['n']} | "
            + " | ".join(cells)
            + f" | {cov[0]:.2f} | {cov[1]:.2f} |"
        )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["dev", "heldout"], default="dev")
    ap.add_argument("--likelihood", default=None)
    ap.add_argument("--calibration", default=None)
    ap.add_argument("--only", nargs="+", default=None)
    ap.add_argument(
        "--param", nargs="+", default=[], metavar="KEY=VALUE", help="other settings, e.g. target=sdiff"
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="one model per seed (ten apart)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    data = dev_series() if args.set == "dev" else heldout_series()
    overrides = {k: v for k, v in (("likelihood", args.likelihood), ("calibration", args.calibration)) if v}
    for kv in args.param:
        k, v = kv.split("=", 1)
        overrides[k] = int(v) if v.isdigit() else (float(v) if v.replace(".", "", 1).isdigit() else v)
    results, kinds = {}, {}
    for name, (kind, values, dates) in data.items():
        if args.only and name not in args.only:
            continue
        results[name], kinds[name] = [], kind
        for seed in args.seeds:
            r = run_one(name, values, dates, {**overrides, "seed": seed})
            results[name].append(r)
            print(
                f"{name} (seed {seed}): {r['seconds']:.0f} s, target {r['target']}, "
                f"model/persistence {r['rmse_ratio_vs_persistence']:.3f}",
                flush=True,
            )
    print(f"\nsettings: {overrides or 'the defaults'}, seeds {args.seeds}\n")
    print(table(results, kinds))
    ratios = [
        np.mean([r["metrics"]["model"]["rmse"] for r in reports])
        / reports[0]["metrics"][best_classic(reports[0]["metrics"])]["rmse"]
        for reports in results.values()
    ]
    covs = [
        r["metrics"]["model"]["coverage"]["0.8"]
        for reports in results.values()
        for r in reports
        if "coverage" in r["metrics"]["model"]
    ]
    print(
        f"\nmodel / best classic RMSE: {', '.join(f'{x:.3f}' for x in ratios)}; beats it on "
        f"{sum(x <= 1 for x in ratios)} of {len(ratios)}, within 10% on {sum(x <= 1.1 for x in ratios)}; "
        f"mean 80% coverage {np.mean(covs):.3f}"
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"forecast-{args.set}-{stamp}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write_json(out, {"settings": overrides, "seeds": args.seeds, "reports": results})
    print(f"raw reports: {out}")


if __name__ == "__main__":
    main()
