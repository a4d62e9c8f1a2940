"""The M4 competition's Hourly set (414 series, horizon 48): rnnlab against statsforecast and Naive2.

    pip install -e ".[bench]"
    python benchmarks/m4.py [--data DIR] [--limit N] [--models naive2 snaive ets theta mstl rnnlab]
                            [--strategies recursive direct] [--reuse] [--json PATH]

Data: the organisers' files ``Dataset/Train/Hourly-train.csv`` and ``Dataset/Test/Hourly-test.csv``
of github.com/Mcompetitions/M4-methods, in ``--data`` (default ``$RNNLAB_M4_DIR`` or
``~/.cache/rnnlab/m4``); they are not part of this repository.

Every method sees each series' training part only and forecasts the 48 hours after it; the
scores are the organisers' (``m4_metrics``: sMAPE, MASE with the in-sample seasonal naive scale
at m = 24, OWA against Naive2, all on the set's means). On the whole set the run checks that its
Naive2 reproduces the published Hourly figures (sMAPE 18.383, MASE 2.395) and stops if not.

statsforecast's models (SeasonalNaive, AutoETS, AutoTheta with season 24; MSTL with seasons 24
and 168) run with ``n_jobs=1``; their forecasts are cached in ``benchmarks/results/`` and
``--reuse`` takes them from there (AutoETS alone is ~9 minutes on one core). rnnlab fits one
global model over all the series (``Forecaster.fit_many``) and forecasts all of them from the end
of their training parts in one batch; ``--strategies`` runs it once per strategy (``recursive
direct``). The defaults of the rnnlab options are the configuration of the table in
benchmarks/RESULTS.md (target sdiff, direct, window 168, two networks trained by MSE, forecasts
bounded by each series' range); ``--reuse`` takes its forecasts from the cache too when the
configuration and the series are the same. With ``--likelihood gaussian`` it also scores the
80% / 95% intervals' coverage of the test part and prints the seconds spent training and
sampling the intervals (``phases``).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import m4_metrics as M  # noqa: E402

from rnnlab.errors import UserError  # noqa: E402
from rnnlab.io import read_json_object, write_json  # noqa: E402

H, SEASON = 48, 24
PUBLISHED_NAIVE2 = {"smape": 18.383, "mase": 2.395}  # Makridakis et al. 2020, Hourly
# the M4 winner (Smyl's ES-RNN), Hourly, as published (Makridakis et al. 2020, IJF 36(1), Table 4)
PUBLISHED_WINNER = {"method": "ES-RNN (Smyl), published", "smape": 9.328, "mase": 0.893, "owa": 0.440}
RESULTS = os.path.join(os.path.dirname(__file__), "results")
SF_MODELS = ("snaive", "ets", "theta", "mstl")
ALL_MODELS = ("naive2",) + SF_MODELS + ("rnnlab",)
NAMES = {
    "naive2": "Naive2",
    "snaive": "SeasonalNaive",
    "ets": "AutoETS",
    "theta": "AutoTheta",
    "mstl": "MSTL(24,168)",
}


def default_dir() -> str:
    return os.environ.get("RNNLAB_M4_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "rnnlab", "m4")


def read_m4(path: str) -> dict:
    """``{id: values}`` of an M4 CSV (a header row, then id and values; short series end in blanks)."""
    out = {}
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        next(rows)
        for row in rows:
            out[row[0]] = np.array([float(v) for v in row[1:] if v != ""])
    return out


def load(folder: str, limit: int | None) -> tuple[dict, dict]:
    """The Hourly training and test parts, the first ``limit`` series (all when None)."""
    paths = [os.path.join(folder, f) for f in ("Hourly-train.csv", "Hourly-test.csv")]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise UserError(
            f"{missing[0]} is missing: put Dataset/Train/Hourly-train.csv and Dataset/Test/Hourly-test.csv "
            f"of github.com/Mcompetitions/M4-methods in {folder} (or pass --data DIR)"
        )
    train, test = read_m4(paths[0]), read_m4(paths[1])
    ids = list(train)[:limit] if limit else list(train)
    if any(len(test[i]) != H for i in ids):
        raise UserError(f"{paths[1]}: every Hourly test series should hold {H} values")
    return {i: train[i] for i in ids}, {i: test[i] for i in ids}


def machine() -> dict:
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), model
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": model, "cpus": os.cpu_count(), "load_1min": round(load1, 2)}


def cache_path(name: str) -> str:
    return os.path.join(RESULTS, f"m4_hourly_{name}.json")


def cached(name: str, ids: list):
    """``(forecasts, seconds, cpu seconds)`` from the cache when it holds every id, else None."""
    path = cache_path(name)
    if not os.path.isfile(path):
        return None
    data = read_json_object(path)
    if not set(ids) <= set(data["forecasts"]):
        return None
    share = len(ids) / len(data["forecasts"])  # this subset's share of the cached run's time
    return {i: np.asarray(data["forecasts"][i]) for i in ids}, data["seconds"] * share, data["cpu"] * share


def statsforecast_model(name: str):
    from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive

    return {
        "snaive": lambda: SeasonalNaive(season_length=SEASON),
        "ets": lambda: AutoETS(season_length=SEASON),
        "theta": lambda: AutoTheta(season_length=SEASON),
        "mstl": lambda: MSTL(season_length=[SEASON, 7 * SEASON]),
    }[name]()


def run_statsforecast(name: str, train: dict) -> tuple[dict, float, float]:
    """Forecasts ``{id: (H,)}`` of one statsforecast model (one job), its wall and CPU seconds."""
    import pandas as pd
    from statsforecast import StatsForecast

    df = pd.concat(
        [pd.DataFrame({"unique_id": i, "ds": np.arange(1, len(y) + 1), "y": y}) for i, y in train.items()]
    )
    sf = StatsForecast(models=[statsforecast_model(name)], freq=1, n_jobs=1)
    t0, c0 = time.perf_counter(), time.process_time()
    out = sf.forecast(df=df, h=H)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    col = [c for c in out.columns if c not in ("unique_id", "ds")][0]
    if "unique_id" not in out.columns:
        out = out.reset_index()
    return {i: g[col].to_numpy(np.float64) for i, g in out.groupby("unique_id", sort=False)}, seconds, cpu


def rnnlab_config(args, strategy: str) -> dict:
    return dict(
        season=SEASON,
        target=args.target,
        horizon=H,
        strategy=strategy,
        window=args.window,
        hidden_size=args.hidden,
        ensemble=args.ensemble,
        epochs=args.epochs,
        batch_size=args.batch_size,
        min_updates=args.min_updates,
        patience=args.patience,
        likelihood=args.likelihood,
        calibration=args.calibration,
        bounds=args.bounds,
        lr=args.lr,
        seed=args.seed,
    )


def run_rnnlab(config: dict, train: dict, test: dict, last: int | None) -> dict:
    """One global model on every series (on the ``last`` values of each training part when
    given); forecasts (and, with a distribution, 80% / 95% intervals) of all series from the end
    of each training part in one batch. Returns ``forecasts``, ``fit_seconds``,
    ``forecast_seconds``, ``cpu`` (both), ``phases`` (``train.CLOCK``'s training and intervals
    seconds) and ``coverage`` of the test part by the intervals (None without them)."""
    from rnnlab.forecast import Forecaster
    from rnnlab.forecast.estimator import train as T

    f = Forecaster(**config)
    t0, c0, clock = time.perf_counter(), time.process_time(), dict(T.CLOCK)
    f.fit_many({i: y[-last:] for i, y in train.items()} if last else train)
    t1 = time.perf_counter()
    items = [(y, [len(y) - 1], i, None, None) for i, y in train.items()]
    points = f.forecast_many(items, H)
    coverage = None
    if f.probabilistic:
        q = f.quantiles_many(items, [0.025, 0.1, 0.9, 0.975], H)  # (1, H, 4) each
        y = np.stack([test[i] for i in train])
        lo95, lo80, hi80, hi95 = (np.stack([a[0, :, k] for a in q]) for k in range(4))
        coverage = {
            "80": float(np.mean((y >= lo80) & (y <= hi80))),
            "95": float(np.mean((y >= lo95) & (y <= hi95))),
        }
    return {
        "forecasts": {i: p[0] for i, p in zip(train, points)},
        "fit_seconds": t1 - t0,
        "forecast_seconds": time.perf_counter() - t1,
        "cpu": time.process_time() - c0,
        "phases": T.since(clock),
        "coverage": coverage,
    }


def check_naive2(result: dict) -> None:
    got = {k: round(result[k], 3) for k in PUBLISHED_NAIVE2}
    if got != PUBLISHED_NAIVE2:
        raise SystemExit(f"Naive2 gives {got}, the published Hourly figures are {PUBLISHED_NAIVE2}")
    print(f"Naive2 reproduces the published Hourly sMAPE {got['smape']} and MASE {got['mase']}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_dir(), help="folder of Hourly-train.csv and Hourly-test.csv")
    ap.add_argument("--limit", type=int, default=None, help="the first N series only")
    ap.add_argument("--models", nargs="+", default=list(ALL_MODELS), choices=ALL_MODELS)
    ap.add_argument("--reuse", action="store_true", help="statsforecast forecasts from benchmarks/results/")
    ap.add_argument("--json", default=None, help="raw results (default benchmarks/results/m4_hourly.json)")
    ap.add_argument("--strategies", nargs="+", default=["direct"], choices=["recursive", "direct"])
    ap.add_argument("--target", default="sdiff")
    ap.add_argument("--window", type=int, default=168)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--ensemble", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--min-updates", type=int, default=0)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--likelihood", default="none")
    ap.add_argument("--calibration", default="auto")
    ap.add_argument("--bounds", default="range")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--train-last", type=int, default=None, help="rnnlab trains on each series' last N values"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        train, test = load(args.data, args.limit)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    ids = list(train)
    os.makedirs(RESULTS, exist_ok=True)
    info = machine()
    print(
        f"M4 Hourly: {len(ids)} series, horizon {H}; CPU {info['cpu']}, {info['cpus']} threads, "
        f"load {info['load_1min']}"
    )
    tr, te = [train[i] for i in ids], [test[i] for i in ids]

    rows, forecasts = [], {}
    t0 = time.perf_counter()
    base = M.score(tr, te, [M.naive2(y, H, SEASON) for y in tr], SEASON)
    rows.append({"method": "Naive2", **base, "seconds": time.perf_counter() - t0, "cpu_seconds": 0.0})
    if args.limit is None:
        check_naive2(base)

    for name in args.models:
        if name == "naive2":
            continue
        if name in SF_MODELS:
            hit = cached(name, ids) if args.reuse else None
            if hit is None:
                fc, seconds, cpu = run_statsforecast(name, train)
                if cached(name, ids) is None or len(ids) == len(
                    read_json_object(cache_path(name))["forecasts"]
                ):
                    write_json(  # a run on fewer series never replaces a cache of more
                        cache_path(name),
                        {"seconds": seconds, "cpu": cpu, "forecasts": {i: fc[i].tolist() for i in ids}},
                    )
                how = "run"
            else:
                (fc, seconds, cpu), how = hit, "cached"
            rows.append(
                {
                    "method": NAMES[name],
                    **M.score(tr, te, [fc[i] for i in ids], SEASON),
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "source": how,
                }
            )
            print(f"  {NAMES[name]}: {seconds:.0f} s, CPU {cpu:.0f} s ({how})", flush=True)
        else:
            for strategy in args.strategies:
                config = rnnlab_config(args, strategy)
                key = {"config": config, "train_last": args.train_last, "ids": ids}
                path = cache_path(f"rnnlab_{config['target']}_{config['likelihood']}_{strategy}_{len(ids)}")
                old = read_json_object(path) if args.reuse and os.path.isfile(path) else None
                if old is not None and old["key"] == key:  # the same model on the same series
                    res, how = old, "cached"
                else:
                    res, how = run_rnnlab(config, train, test, args.train_last), "run"
                    res = {**res, "key": key, "forecasts": {i: res["forecasts"][i].tolist() for i in ids}}
                    write_json(path, res)
                fc = {i: np.asarray(v) for i, v in res["forecasts"].items()}
                fit_s, fc_s, cpu = res["fit_seconds"], res["forecast_seconds"], res["cpu"]
                label = f"rnnlab {strategy}"
                rows.append(
                    {
                        "method": label,
                        **M.score(tr, te, [fc[i] for i in ids], SEASON),
                        "seconds": fit_s + fc_s,
                        "fit_seconds": fit_s,
                        "forecast_seconds": fc_s,
                        "cpu_seconds": cpu,
                        "phases": res.get("phases"),
                        "coverage": res.get("coverage"),
                        "train_last": args.train_last,
                        "config": config,
                        "source": how,
                    }
                )
                print(
                    f"  {label}: fit {fit_s:.0f} s, forecast {fc_s:.0f} s, CPU {cpu:.0f} s ({how}); "
                    f"{config}; phases {res.get('phases')}, interval coverage {res.get('coverage')}",
                    flush=True,
                )
                forecasts[label] = {i: fc[i].tolist() for i in ids}

    for r in rows:
        r["owa"] = M.owa(r, base)
    print(f"\n{'method':<28}{'sMAPE':>8}{'MASE':>8}{'OWA':>8}{'seconds':>9}{'CPU s':>8}")
    for r in rows:
        print(
            f"{r['method']:<28}{r['smape']:>8.3f}{r['mase']:>8.3f}{r['owa']:>8.3f}"
            f"{r['seconds']:>9.0f}{r['cpu_seconds']:>8.0f}"
        )
    w = PUBLISHED_WINNER
    print(f"{w['method']:<28}{w['smape']:>8.3f}{w['mase']:>8.3f}{w['owa']:>8.3f}{'':>9}")
    print(f"uptime: {os.popen('uptime').read().strip()}")
    out = args.json or os.path.join(RESULTS, "m4_hourly.json")
    write_json(out, {"machine": info, "n_series": len(ids), "rows": rows, "rnnlab_forecasts": forecasts})
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
