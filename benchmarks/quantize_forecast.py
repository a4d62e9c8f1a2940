"""The accuracy cost of int8 and bf16 forecasting (issue 32, item 4): the default forecaster of
``rnnlab forecast`` fitted once per series (its own split, as the command does), then its test
part forecast at float32 and with every network's recurrent layer quantised
(``rnnlab.nn.quantize_dynamic``, forced: ``forecast predict --precision`` may refuse it where it
is slower): test RMSE, MAE and the 80% / 95% interval coverage at each precision, the relative
RMSE change and each precision's forecast time.

    flock /tmp/rnnlab-cpu.lock nice .venv/bin/python benchmarks/quantize_forecast.py [--set btc|dev]
          [--epochs 2]

``btc``: the bundled Bitcoin series, the command's defaults. ``dev``: the six development series
of ``benchmarks/forecast_series.py`` (pmdarima's; ``pip install -e ".[bench]"``), each through
that script's configuration. The swap is ``rnnlab/forecast/precision.py``'s (``net.rnn``
replaced by its copy; head, scaling and the calibration of the intervals stay float32). The
float32 pass runs twice to show the evaluation is deterministic (same seeds), so a difference is
the precision's. Prints the numbers and writes them as JSON under benchmarks/raw/ (git-ignored).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from quantize import bench_commit, cpu_model, write_raw  # noqa: E402  (this folder's)

from rnnlab.cli import build_parser  # noqa: E402
from rnnlab.forecast.cli import main as forecast_main  # noqa: E402
from rnnlab.forecast.evaluation import pipeline as P  # noqa: E402
from rnnlab.forecast.precision import _forecasters  # noqa: E402
from rnnlab.nn import quantize_dynamic  # noqa: E402
from rnnlab.nn.backend import bf16gemm, intgemm  # noqa: E402


def _scores(model, series, cfg, n_train) -> dict:
    t0 = time.perf_counter()
    ev = P.evaluate_fitted(model, series, cfg, n_train)
    m = ev["metrics"]["model"]
    out = {
        "seconds": time.perf_counter() - t0,
        "rmse": m["rmse"],
        "mae": m["mae"],
        "preds": ev["preds"]["model"],
    }
    out["coverage"] = m.get("coverage", {})
    out["interval_width"] = m.get("interval_width", {})
    return out


PRECISIONS = ("int8", "bf16")


def accuracy(series, cfg, epochs=None) -> dict:
    """Fit ``cfg``'s forecaster on ``series``' training part once; its test scores at float32
    (twice) and at each reduced precision, and what changed."""
    if epochs is not None:
        cfg = {**cfg, "epochs": epochs}
    n_train = P.n_train_of(len(series), cfg, series.values)
    t0 = time.perf_counter()
    model = P.fit_model(cfg, series.values[:n_train])
    fit_s = time.perf_counter() - t0
    nets = [net for f in _forecasters(model) for net in f.nets_]
    res = {"float32": _scores(model, series, cfg, n_train)}
    res["float32_again"] = _scores(model, series, cfg, n_train)
    floats = [net.rnn for net in nets]
    for dtype in PRECISIONS:
        for net, rnn in zip(nets, floats):
            net.rnn = quantize_dynamic(rnn, dtype)
        res[dtype] = _scores(model, series, cfg, n_train)
    for net, rnn in zip(nets, floats):
        net.rnn = rnn
    info = {"networks": len(nets), "cell": cfg["cell"], "hidden": cfg["hidden_size"], "window": cfg["window"]}
    info.update(target=model.target, n_train=n_train, n_test=len(series) - n_train, fit_seconds=fit_s)
    info["shrinks"] = [float(a) for f in _forecasters(model) for a in getattr(f, "shrinks_", [])]
    base = res["float32"]
    for dtype in PRECISIONS:
        info[f"{dtype}_rmse_change"] = res[dtype]["rmse"] / base["rmse"] - 1
        info[f"{dtype}_max_pred_change"] = float(np.abs(res[dtype]["preds"] - base["preds"]).max())
    info["float32_deterministic"] = bool(base["rmse"] == res["float32_again"]["rmse"])
    for r in res.values():
        r.pop("preds")
    return {"info": info, "results": res}


def report(name: str, out: dict) -> None:
    info, res = out["info"], out["results"]
    print(f"## {name}: {info['networks']} x {info['cell']}-{info['hidden']}, window {info['window']}, "
          f"target {info['target']}, {info['n_train']} train / {info['n_test']} test")  # fmt: skip
    for prec, r in res.items():
        cov = ", ".join(f"{k}: {v:.3f}" for k, v in r["coverage"].items())
        print(f"{prec}: RMSE {r['rmse']:.4f}  MAE {r['mae']:.4f}  coverage {cov}  ({r['seconds']:.2f} s)")
    for dtype in PRECISIONS:
        print(
            f"{dtype} vs float32: RMSE {100 * info[f'{dtype}_rmse_change']:+.4f}% (bar for a default: 1%), "
            f"largest forecast change {info[f'{dtype}_max_pred_change']:.4g}"
        )
    print(f"float32 twice identical: {info['float32_deterministic']}", flush=True)


def _dev_runs():
    """(name, series, cfg) of forecast_series.py's development set, its configuration."""
    import forecast_series as FS  # this folder's

    from rnnlab.forecast.series import calendar
    from rnnlab.forecast.series import data as D

    for name, (_, values, dates) in FS.dev_series().items():
        days = np.asarray(dates, dtype="datetime64[D]")
        freq, season = calendar.detect_frequency(days)
        series = D.Series(values, days, name, "value", "date", [], freq, season)
        cfg = P.apply_season(P.resolve_config(None, test_size=400 if name == "msft" else 0.2), series)
        if cfg["target"] in D.SEASONAL and cfg["season"] < 2:
            cfg["target"] = "diff"
        yield name, series, cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["btc", "dev"], default="btc")
    ap.add_argument("--epochs", type=int, help="fewer epochs (a smoke run); default: the command's")
    opts = ap.parse_args()
    if opts.set == "btc":
        args = build_parser().parse_args(["forecast", "--quiet", "--no-plot"])
        series = forecast_main._load(args)
        runs = [("btc", series, forecast_main._config(args, series))]
    else:
        runs = list(_dev_runs())
    env = {"cpu": cpu_model(), "int8": intgemm.describe(), "bf16": bf16gemm.describe()}
    env.update(commit=bench_commit(), command=sys.argv)
    print(env)
    out = {}
    for name, series, cfg in runs:
        out[name] = accuracy(series, cfg, opts.epochs)
        report(name, out[name])
    for dtype in PRECISIONS:
        worst = max(abs(o["info"][f"{dtype}_rmse_change"]) for o in out.values())
        print(f"{dtype}: largest |RMSE change| over {len(out)} series {100 * worst:.4f}%")
    write_raw(f"quantize-forecast-{opts.set}", {"environment": env, "series": out})


if __name__ == "__main__":
    main()
