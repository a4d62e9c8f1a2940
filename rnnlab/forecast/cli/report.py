"""What `rnnlab forecast` prints: the model line and the tables of the report.

describe(cfg)                  "LSTM 16x1 on diff, window 7, horizon 1 (recursive), ..."
print_table(report, units)     test metrics of the model and the baselines, the RMSE ratio,
                               the Diebold-Mariano test, the verdict, training, shrinking
                               and (with --backtest K > 1) the per-fold table
"""

from __future__ import annotations

import sys

from rnnlab.forecast.estimator import combination as Cm


def describe(cfg) -> str:
    s = (
        f"{cfg['cell'].upper()} {cfg['hidden_size']}x{cfg['num_layers']} on {cfg['target']}, window "
        f"{cfg['window']}, horizon {cfg['horizon']} ({cfg['strategy']}), batch {cfg['batch_size']}, "
        f"Adam {cfg['lr']:g}, clip {cfg['clip']:g}, {cfg['epochs']} epochs"
    )
    if cfg["valid_size"] > 0:
        s += f" max, early stopping on the last {cfg['valid_size']:.0%} of the training windows"
    if cfg.get("ensemble", 1) > 1:
        s += f", ensemble of {cfg['ensemble']}"
    if cfg.get("likelihood", "none") != "none":
        s += f", {cfg['likelihood']} likelihood"
    if cfg.get("season", 1) > 1:
        s += f", season {cfg['season']}"
    if cfg.get("preset"):
        s += f" [preset {cfg['preset']}]"
    return s


def _ratio(a, b):
    return a / b if b else None


def _fmt(v, digits=2):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def print_table(report, units, file=sys.stdout):
    """Print the report's tables to ``file``; ``units`` names the series' units (e.g. USD)."""
    _print_metrics(report, units, file)
    _print_intervals(report, units, file)
    _print_classics(report, file)
    _print_summary(report, file)
    if "backtest" in report:
        _print_backtest(report["backtest"], units, file)


def _print_metrics(report, units, file):
    """The test-metrics table: one row for the model, one per baseline."""
    H = report["config"]["horizon"]
    test = report["data"]["test"]
    print(
        f"\nTest metrics ({units}), {H} step(s) ahead, {test['n']} points {test['start']} .. {test['end']}:",
        file=file,
    )
    head = f"  {'method':<16}{'RMSE':>11}{'MAE':>11}{'MAPE %':>9}{'sMAPE %':>9}{'MASE':>8}{'dir. acc.':>11}"
    print(head, file=file)
    print("  " + "-" * (len(head) - 2), file=file)
    for name in ("model",) + tuple(k for k in report["metrics"] if k != "model"):
        m = report["metrics"][name]
        print(
            f"  {name.replace('_', ' '):<16}{_fmt(m['rmse']):>11}{_fmt(m['mae']):>11}{_fmt(m['mape'], 3):>9}"
            f"{_fmt(m['smape'], 3):>9}{_fmt(m['mase'], 3):>8}{_fmt(m['directional_accuracy'], 3):>11}",
            file=file,
        )


def _print_intervals(report, units, file):
    """The model's intervals on the test part: coverage against the nominal, mean width, the
    pinball loss and CRPS, and how they were calibrated."""
    m = report["metrics"]["model"]
    if "coverage" not in m:
        if report["config"].get("likelihood") == "none":
            print("\nNo intervals: the model is a point forecast (--likelihood none).", file=file)
        return
    print(f"\nPrediction intervals of the model on the test part ({units}):", file=file)
    others = [n for n, v in report["metrics"].items() if n != "model" and "coverage" in v]
    print(
        f"  {'interval':<10}{'coverage':>10}{'mean width':>14}" + "".join(f"{n:>22}" for n in others),
        file=file,
    )
    for b, cov in m["coverage"].items():
        row = f"  {float(b):<10.0%}{cov:>10.3f}{_fmt(m['interval_width'][b]):>14}"
        for n in others:
            o = report["metrics"][n]
            row += f"{o['coverage'][b]:>8.3f}{_fmt(o['interval_width'][b]):>14}"
        print(row, file=file)
    lik = report["config"]["likelihood"]
    print(f"  pinball loss {_fmt(m['pinball'])}, CRPS {_fmt(m['crps'])} ({lik} likelihood)", file=file)
    cal = report.get("calibration") or {}
    if cal.get("factors") and cal.get("applied", True):
        parts = []
        for b, f, raw in zip(cal["intervals"], cal["factors"], cal["raw_coverage"]):
            parts.append(f"{b:.0%} x{f[-1]:.2f} (raw coverage {_fmt(raw[-1], 2)})")
        print(
            f"  calibrated by split-conformal on the {cal['n'][-1]} validation targets: " + ", ".join(parts),
            file=file,
        )
    elif cal.get("factors"):
        parts = [
            f"{b:.0%}: {_fmt(raw[-1], 2)} (binomial p {_fmt(p[-1], 2)})"
            for b, raw, p in zip(cal["intervals"], cal["raw_coverage"], cal["p_values"])
        ]
        print(
            f"  raw intervals: their coverage on the {cal['n'][-1]} validation targets is consistent with "
            f"the nominal (" + ", ".join(parts) + "), so no conformal calibration",
            file=file,
        )
    else:
        print("  raw intervals (no conformal calibration)", file=file)


def _print_classics(report, file):
    """The model against the best statistical classic, or how to get them."""
    cl = report.get("classical") or {}
    if not cl.get("included"):
        print(
            f"\nAutoETS, AutoARIMA and AutoTheta are not in the table: {cl.get('how_to_get', '')}", file=file
        )
        return
    for note in cl.get("notes", []):
        print(f"  note: {note}", file=file)
    if cl.get("best"):
        dm = cl["dm_test_vs_best"]
        print(
            f"\nAgainst the best statistical classic ({cl['best']}): RMSE ratio "
            f"{_fmt(cl['rmse_ratio_vs_best'], 4)}, Diebold-Mariano statistic {_fmt(dm['statistic'], 3)}, "
            f"p-value {_fmt(dm['p_value'], 3)}",
            file=file,
        )


def _print_summary(report, file):
    """Below the table: the RMSE ratio, the Diebold-Mariano test, the verdict, the training
    and (if fitted) the shrink factors."""
    H = report["config"]["horizon"]
    dm = report["dm_test_vs_persistence"]
    print(f"\nRMSE ratio model / persistence: {_fmt(report['rmse_ratio_vs_persistence'], 5)}", file=file)
    print(
        f"Diebold-Mariano test vs persistence (squared error, HLN-corrected, h={H}): "
        f"statistic {_fmt(dm['statistic'], 3)}, p-value {_fmt(dm['p_value'], 3)} "
        f"(negative: the model's errors are smaller)",
        file=file,
    )
    best = report.get("best_baseline")
    if best and best != "persistence":
        bdm, name = report["dm_test_vs_best_baseline"], best.replace("_", " ")
        print(
            f"Best baseline of the table: {name}, RMSE ratio model / {name} "
            f"{_fmt(report['rmse_ratio_vs_best_baseline'], 5)}, Diebold-Mariano statistic "
            f"{_fmt(bdm['statistic'], 3)}, p-value {_fmt(bdm['p_value'], 3)}",
            file=file,
        )
    print(f"Verdict: {report['verdict']}.", file=file)
    hist = report["history"]
    line = f"Training: {len(hist['train_loss'])} epochs"
    if hist.get("best_epoch"):
        line += f", best validation loss at epoch {hist['best_epoch']} (weights restored)"
    n_nets = len(report.get("ensemble_histories", [])) or 1
    line += f"; {hist['train_seconds']:.1f} s of training in all"
    if n_nets > 1:
        line += f" ({n_nets} networks, forecasts averaged)"
    print(line, file=file)
    scores = report.get("target_scores") or {}
    if len(scores) > 1:
        shown = ", ".join(f"{t} {_fmt(v, 3)}" for t, v in scores.items())
        what = f"the {'better' if len(scores) == 2 else 'best'} on the validation slice"
        if "+" in report["target"]:
            what = f"averaged, each within {Cm.BAND - 1:.0%} of the best on the validation slice"
        print(
            f"Target {report['target']}: {what} (one-step RMSE / persistence's there: {shown})",
            file=file,
        )
    if report["config"].get("shrink"):
        print(
            "Shrink factor towards persistence, fitted on the validation slice (1 = the network "
            "as trained, 0 = persistence): " + ", ".join(f"{a:.2f}" for a in report["shrink"]),
            file=file,
        )


def _print_backtest(bt, units, file):
    """The backtest table: RMSE of the model and persistence per fold, and their means."""
    print(
        f"\nBacktest, {len(bt['folds'])} folds (RMSE {units}; the model refit before each fold):",
        file=file,
    )
    print(
        f"  {'fold':<6}{'test part':<26}{'model':>11}{'persistence':>13}{'ratio':>8}{'DM p':>8}",
        file=file,
    )
    for f in bt["folds"]:
        mm, pp = f["metrics"]["model"]["rmse"], f["metrics"]["persistence"]["rmse"]
        dm_p = f["dm_test_vs_persistence"]["p_value"]
        print(
            f"  {f['fold']:<6}{f['test']['start'] + ' .. ' + f['test']['end']:<26}{_fmt(mm):>11}"
            f"{_fmt(pp):>13}{_fmt(_ratio(mm, pp), 4):>8}{_fmt(dm_p, 3):>8}",
            file=file,
        )
    a = bt["average"]
    print(
        f"  {'mean':<32}{_fmt(a['model']['rmse']):>11}{_fmt(a['persistence']['rmse']):>13}"
        f"{_fmt(_ratio(a['model']['rmse'], a['persistence']['rmse']), 4):>8}",
        file=file,
    )


def print_future(rows: list, model, title: str, file=None, limit: int = 12, max_series: int = 5) -> None:
    """The future forecast under ``title``: one line per series and step (the first ``limit``
    steps of the first ``max_series`` series), the mean and each central interval."""
    if not rows:
        return
    recs = rows
    bounds = [k[3:] for k in recs[0] if k.startswith("lo-")]
    ids = list(dict.fromkeys(r["unique_id"] for r in recs))
    print(title, file=file)
    w = max(len(str(r["ds"])) for r in recs) + 3
    head = f"  {'series':<12}" if len(ids) > 1 else "  "
    head += f"{'ds':<{w}}{'mean':>12}" + "".join(f"{'lo-' + b:>14}{'hi-' + b:>14}" for b in bounds)
    print(head, file=file)
    shown: dict = {}
    for r in recs:
        shown[r["unique_id"]] = shown.get(r["unique_id"], 0) + 1
        if shown[r["unique_id"]] > limit or len(shown) > max_series:
            continue
        line = f"  {r['unique_id'][:11]:<12}" if len(ids) > 1 else "  "
        line += f"{r['ds']:<{w}}{_fmt(r['mean']):>12}"
        line += "".join(f"{_fmt(r['lo-' + b]):>14}{_fmt(r['hi-' + b]):>14}" for b in bounds)
        print(line, file=file)
    hidden = len(recs) - sum(min(n, limit) for n in list(shown.values())[:max_series])
    if hidden:
        print(f"  ... {hidden} more row(s): write them all with --forecast-out FILE", file=file)
    if not getattr(model, "probabilistic", False):
        print(
            "  (a point forecast: the model was trained with --likelihood none, so it has no intervals)",
            file=file,
        )
