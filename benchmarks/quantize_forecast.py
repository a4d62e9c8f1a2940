"""The accuracy cost of int8 forecasting (issue 32, item 4): the default forecaster of
``rnnlab forecast`` fitted once on the bundled BTC series (its own split, as the command does),
then its test part forecast at float32 and with every network's recurrent layer quantised
(``rnnlab.nn.quantize_dynamic``, forced: ``forecast predict --precision int8`` would refuse it
here, being slower): test RMSE, MAE and the 80% / 95% interval coverage of both, the relative
RMSE change and each precision's forecast time.

    flock /tmp/rnnlab-cpu.lock nice .venv/bin/python benchmarks/quantize_forecast.py [--epochs 2]

The swap is ``rnnlab/forecast/precision.py``'s (``net.rnn`` replaced by its int8 copy; head,
scaling and the calibration of the intervals stay float32). The float32 pass runs twice to show
the evaluation is deterministic (same seeds), so the difference is the precision's. Prints the
numbers and writes them as JSON under benchmarks/raw/ (git-ignored).
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
from rnnlab.nn.backend import intgemm  # noqa: E402


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, help="fewer epochs (a smoke run); default: the command's")
    opts = ap.parse_args()
    argv = ["forecast", "--quiet", "--no-plot"] + (
        [] if opts.epochs is None else ["--epochs", str(opts.epochs)]
    )
    args = build_parser().parse_args(argv)
    series = forecast_main._load(args)
    cfg = forecast_main._config(args, series)
    n_train = P.n_train_of(len(series), cfg, series.values)
    t0 = time.perf_counter()
    model = P.fit_model(cfg, series.values[:n_train])
    fit_s = time.perf_counter() - t0
    nets = [net for f in _forecasters(model) for net in f.nets_]
    res = {"float32": _scores(model, series, cfg, n_train)}
    res["float32_again"] = _scores(model, series, cfg, n_train)
    floats = [net.rnn for net in nets]
    for net in nets:
        net.rnn = quantize_dynamic(net.rnn)
    res["int8"] = _scores(model, series, cfg, n_train)
    for net, rnn in zip(nets, floats):
        net.rnn = rnn
    f32, q = res["float32"], res["int8"]
    env = {"cpu": cpu_model(), **intgemm.describe(), "commit": bench_commit(), "command": sys.argv}
    env.update(networks=len(nets), cell=cfg["cell"], hidden=cfg["hidden_size"], window=cfg["window"])
    env.update(target=model.target, n_train=n_train, n_test=len(series) - n_train, fit_seconds=fit_s)
    rel = q["rmse"] / f32["rmse"] - 1
    diff = float(np.abs(q.pop("preds") - f32.pop("preds")).max())
    res["float32_again"].pop("preds")
    env.update(shrinks=[float(a) for f in _forecasters(model) for a in f.shrinks_], max_pred_change=diff)
    print(env)
    for name, r in res.items():
        cov = ", ".join(f"{k}: {v:.3f}" for k, v in r["coverage"].items())
        width = ", ".join(f"{k}: {v:.1f}" for k, v in r["interval_width"].items())
        print(
            f"{name}: RMSE {r['rmse']:.3f}  MAE {r['mae']:.3f}  coverage {cov}  width {width}"
            f"  ({r['seconds']:.2f} s)"
        )
    print(f"int8 vs float32: RMSE {100 * rel:+.3f}% (the issue's bar for a default: 1%)")
    print(f"largest change of a test forecast: {diff:.3f} USD; shrink factors {env['shrinks']}")
    print(f"float32 twice identical: {res['float32']['rmse'] == res['float32_again']['rmse']}")
    write_raw("quantize-forecast", {"environment": env, "results": res, "rmse_relative_change": rel})


if __name__ == "__main__":
    main()
