"""The training windows of one series or of many (one global model): each series scaled by its
own training part, its windows split in time into a fitting part and a validation slice (its
last ``valid_size`` fraction), then the series' parts concatenated.

For series i with levels ``y_i``::

    z_i = transform(y_i)           s_i = (z_i - mean_i) / scale_i    (mean_i, scale_i: y_i's own)
    windows X_i (M_i, W) -> targets Y_i (M_i, K)            origins t0 .. n_i - 1 - K
    validation: the last max(round(valid_size M_i), 2) windows; the K - 1 windows before them
    are dropped so that no fitting target is a validation target

A global model thus learns from every series at once on one scale-free footing, and early
stopping, the shrink factor and the conformal calibration see every series' validation slice.
A series of a panel needs one training window of its own (``D.MIN_SERIES_WINDOWS``) besides
its validation slice; the pool is what must reach ``D.MIN_TRAIN_WINDOWS`` (short yearly series,
M4's kind, are what a global model is for).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.series import covariates as C
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import horizons as Hz


@dataclass
class Pooled:
    """The concatenated windows (global scaling only; the window scale is applied later)."""

    X_fit: np.ndarray  # (M_fit, W)
    Y_fit: np.ndarray  # (M_fit, K)
    X_val: np.ndarray  # (M_val, W)
    Y_val: np.ndarray  # (M_val, K)
    s0_val: np.ndarray  # (M_val, 1) "no change" in each validation window's scaled units
    C_fit: np.ndarray | None = None  # (M_fit, W, P + F) covariate windows (covariates.windows)
    C_val: np.ndarray | None = None
    cov_scalers: list = field(default_factory=list)  # per series: (mean, sd) of its covariates
    scalers: list = field(default_factory=list)  # one StandardScaler per series
    valid_origins: list = field(default_factory=list)  # per series: its validation origins

    @property
    def n_valid(self) -> int:
        return len(self.X_val)


def pool(f, ys, pasts=None, futures=None) -> Pooled:
    """The windows of the series ``ys`` (1-D level arrays) for the forecaster ``f``, with their
    covariates (``pasts`` / ``futures``: one array or None per series)."""
    K, W, target, m = f._n_out, f.window, f.target, f.season
    parts: dict[str, list] = {k: [] for k in ("X_fit", "Y_fit", "X_val", "Y_val", "s0_val")}
    scalers, origins, cov_scalers = [], [], []
    covs: dict[str, list[np.ndarray]] = {"C_fit": [], "C_val": []}
    pasts = pasts or [None] * len(ys)
    futures = futures or [None] * len(ys)
    own = D.windows_each(len(ys))  # the pool: checked below
    for y, past, future in zip(ys, pasts, futures):
        D.check_target(y, target)
        D.check_length(len(y), W, K, target, None, f.valid_size > 0, m, own)
        z = D.transform(y, target, m)  # (n,)
        scaler = D.StandardScaler().fit(z[D.lag(target, m) :])  # this series' training part only
        s = scaler.transform(z)
        t0 = D.first_origin(W, target, m)
        X, Y = D.windows(s, W, K, t0, len(y) - 1 - K)  # all targets in y
        D.check_validation_split(len(X), K, f.valid_size, own)
        Hz.check_horizon(f.horizon, len(y), {**f.get_params(), "season": m}, target, evaluated=False)
        n_valid = max(int(round(f.valid_size * len(X))), 2) if f.valid_size > 0 else 0
        n_fit = len(X) - n_valid
        n_fit_used = n_fit - (K - 1 if n_valid else 0)
        parts["X_fit"].append(X[:n_fit_used])
        parts["Y_fit"].append(Y[:n_fit_used])
        Xv = X[n_fit:]
        parts["X_val"].append(Xv)
        parts["Y_val"].append(Y[n_fit:])
        if target == "level":
            parts["s0_val"].append(Xv[:, -1:])  # s_t
        else:
            parts["s0_val"].append(np.full((len(Xv), 1), scaler.transform(0.0)))  # z = 0
        scalers.append(scaler)
        origins.append(t0 + n_fit + np.arange(n_valid))
        cov_scalers.append(C.fit_scaler(past, future, len(y)))
        cw = C.windows(past, future, t0 + np.arange(len(X)), W, cov_scalers[-1])  # (M, W, C); None: none
        if cw is not None:
            covs["C_fit"].append(cw[:n_fit_used])
            covs["C_val"].append(cw[n_fit:])
    cat = {k: np.concatenate(v, axis=0) for k, v in parts.items()}
    if len(cat["X_fit"]) < D.MIN_TRAIN_WINDOWS:
        raise UserError(
            f"the {len(ys)} series give {len(cat['X_fit'])} training windows together (window {W}, "
            f"target {target}); at least {D.MIN_TRAIN_WINDOWS} are needed: longer series, more of "
            "them or a shorter --window"
        )
    C_fit, C_val = (np.concatenate(covs[k], axis=0) if covs[k] else None for k in ("C_fit", "C_val"))
    return Pooled(
        **cat, C_fit=C_fit, C_val=C_val, scalers=scalers, valid_origins=origins, cov_scalers=cov_scalers
    )
