"""Many series, one model: `rnnlab forecast --id-column COL` on a long-format CSV
(id, date, value), one global network across every series (``Forecaster.fit_many``: each
series scaled by its own training part), each series scored against its own baselines.

The split is per series: the last ``--test-size`` points of each (a fraction: of each series'
length) are its test part; the model sees only the training parts (``--backtest K``: each
series' test part in K consecutive blocks, the global model refitted for each block on every
series up to it). The report holds
``series: {id: {data, metrics, predictions, ...}}`` and a ``summary`` over the series: the mean
and median RMSE ratio to persistence, the mean MASE, the mean coverage of each interval, and
the share of series where the model beats persistence and where it beats the best baseline
(the best statistical classic when rnnlab[stats] is installed, else the best simple one).
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.evaluation import classical as C
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series.date_columns import line_numbers

SIMPLE = ("persistence", "drift", "moving_average", "seasonal_naive")


def load_panel(
    path,
    id_column: str,
    column: str,
    date_column: str,
    fill: str = "none",
    covariates=(),
    date_format=None,
    freq=None,
) -> dict:
    """``{id: Series}`` of a long-format CSV, in the order the ids first appear; every series
    checked as ``load_series`` checks one (dates sorted and unique within each id; one date
    format for the whole file, ``date_format``/``freq`` as ``load_series`` takes them)."""
    import pandas as pd

    if fill not in D.FILLS:
        raise UserError(f"--fill must be one of {', '.join(D.FILLS)}, got {fill!r}")
    path = D.bundled_csv() if path is None else str(path)
    needed = ((id_column, "--id-column"), (column, "--column"), (date_column, "--date-column"))
    df = D.read_frame(path, needed + tuple((c, "--covariates") for c in covariates))
    values, missing = D._parse_values(df[column], column, path)
    extra = {c: D._parse_values(df[c], c, path) for c in covariates}
    notes: list = []
    freq = D.Dt.check_freq(freq)
    days, tz = D._parse_dates(df[date_column], date_column, path, notes, date_format)
    ids = df[id_column].str.strip().to_numpy()
    if (ids == "").any():
        raise UserError(
            f"column {id_column!r} (--id-column) is empty on line(s) {line_numbers(ids == '')} of {path}"
        )
    if fill == "none" and missing.any():
        raise UserError(
            f"column {column!r} has {int(missing.sum())} missing value(s) on line(s) "
            f"{line_numbers(missing)} of {path}; fix them or pass --fill ffill"
        )
    out = {}
    for key in pd.unique(ids):
        rows = np.flatnonzero(ids == key)
        where = f"{path} (series {key!r})"
        ex = {c: (v[rows], m[rows]) for c, (v, m) in extra.items()}
        out[str(key)] = D.series_of(
            values[rows],
            missing[rows],
            days[rows],
            where,
            column,
            date_column,
            fill,
            list(notes),
            ex,
            tz,
            freq,
            date_format,
        )
    return out


def run(panel: dict, cfg: dict, progress=None, folds: int = 1) -> dict:
    """Fit one model on every series' training part, evaluate each; the report and, per series,
    the arrays for the plot. ``folds`` K > 1 (``--backtest``): each series' test part cut into K
    consecutive blocks, and for block k one model refitted on every series up to its block k."""
    if not panel:
        raise UserError("the file holds no series")
    n_train = {}
    own = D.windows_each(len(panel))  # short series are fine in a panel: the pool is checked
    for key, s in panel.items():
        for target in P.candidates(cfg, [P.training_part(v.values, cfg) for v in panel.values()]):
            D.check_target(s.values, target, f"series {key!r}")
        try:
            n_train[key] = P.n_train_of(len(s), cfg, s.values, own)
        except UserError as e:
            raise UserError(f"series {key!r}: {e}") from None
    if folds < 1:
        raise UserError(f"--backtest must be at least 1, got {folds}")
    for key, s in panel.items():
        if folds > len(s) - n_train[key]:
            raise UserError(
                f"--backtest {folds} needs at least {folds} test points; series {key!r} has "
                f"{len(s) - n_train[key]}"
            )
    blocks = {k: np.array_split(np.arange(n_train[k], len(s)), folds) for k, s in panel.items()}
    runs: dict = {k: [] for k in panel}
    for fold in range(folds):
        ends = {k: int(b[fold][0]) for k, b in blocks.items()}  # each series' training end
        fold_progress = None if progress is None else (lambda *a, f=fold, **kw: progress(f, folds, *a, **kw))
        model = _fit_on(panel, cfg, ends, fold_progress)
        for key, s in panel.items():
            block = blocks[key][fold]
            runs[key].append(
                P.evaluate_fitted(model, s, cfg, int(block[0]), int(block[-1]) + 1, series_id=key)
            )
    results, reports = {}, {}
    for key, s in panel.items():
        results[key] = P.assemble(s, cfg, runs[key], n_train[key], blocks[key])
        rep = results[key]["report"]
        reports[key] = {k: rep[k] for k in rep if k not in ("config",) + _SHARED}
    first = results[next(iter(results))]["report"]
    report = {
        "config": dict(cfg),
        "series": reports,
        "summary": summary(reports),
        **{k: first[k] for k in _SHARED if k in first},
    }
    return {"report": report, "results": results, "forecaster": model}


def _fit_on(panel: dict, cfg: dict, ends: dict, progress):
    """One global model fitted on ``y[:ends[id]]`` of every series (and those rows of its
    covariates)."""
    covs = {k: P.covariate_arrays(s, cfg) for k, s in panel.items()}
    cut = lambda a, n: None if a is None else a[:n]
    pasts = {k: cut(c[0], ends[k]) for k, c in covs.items()} if cfg.get("covariates") else None
    has_future = covs[next(iter(covs))][1] is not None
    futures = {k: cut(c[1], ends[k]) for k, c in covs.items()} if has_future else None
    train = {k: s.values[: ends[k]] for k, s in panel.items()}
    return P.fit_model(cfg, past=pasts, future=futures, panel=train, progress=progress)


_SHARED = (
    "history",
    "shrink",
    "ensemble_histories",
    "calibration",
    "target",
    "target_scores",
)  # one model: said once


def summary(reports: dict) -> dict:
    """The panel's summary (module docstring) from the per-series reports."""
    given = [r["rmse_ratio_vs_persistence"] for r in reports.values()]
    ratios = np.array([x for x in given if x is not None], np.float64)  # None: a flat test part
    mase = [
        r["metrics"]["model"]["mase"] for r in reports.values() if r["metrics"]["model"]["mase"] is not None
    ]
    beats_best, kind = [], "statistical"
    for r in reports.values():
        m = r["metrics"]
        rivals = [n for n in C.NAMES if n in m] or [n for n in SIMPLE if n in m]
        kind = "statistical" if any(n in C.NAMES for n in rivals) else "simple"
        beats_best.append(m["model"]["rmse"] < min(m[n]["rmse"] for n in rivals))
    out: dict[str, object] = {
        "n_series": len(reports),
        "mean_rmse_ratio_vs_persistence": float(np.mean(ratios)) if len(ratios) else None,
        "median_rmse_ratio_vs_persistence": float(np.median(ratios)) if len(ratios) else None,
        "mean_mase": float(np.mean(mase)) if mase else None,
        "share_beating_persistence": float(np.mean(ratios < 1.0)) if len(ratios) else None,
        "share_beating_best_baseline": float(np.mean(beats_best)),
        "best_baseline_kind": kind,
    }
    covs = [r["metrics"]["model"].get("coverage") for r in reports.values()]
    if covs and all(covs):
        out["mean_coverage"] = {b: float(np.mean([c[b] for c in covs])) for b in covs[0]}
    return out
