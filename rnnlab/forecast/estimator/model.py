"""``Forecaster``: a recurrent one-series forecaster with scikit-learn's estimator rules.

    f = Forecaster(window=7, target="logreturn", seed=0).fit(y_train)   # levels, oldest first
    f.predict(y_history, steps=5)      # the next 5 levels after the end of y_history
    f.predict_quantiles(y_history, [0.1, 0.5, 0.9], steps=5)   # (5, 3): the predictive quantiles
    f.save("model/");  Forecaster.load("model/")

``fit`` sees only the series it is given: the scaler is fit on it, and early stopping uses
a validation slice carved from its end (never from data after it). Strategies for
``horizon`` H > 1: ``recursive`` (a one-step network whose predictions are fed back into
the window) and ``direct`` (a network with H outputs, one per step ahead).
With a probabilistic ``likelihood`` (``heads``) the networks output a distribution per step;
sample paths give quantiles and intervals at every step (``uncertainty``), calibrated by
split-conformal on the validation slice when it shows them off (``calibration="auto"``).
Saved models are ``model.safetensors`` (weights) + ``config.json`` (everything else);
nothing is pickled.
"""

from __future__ import annotations

import os

import numpy as np

from rnnlab.errors import NotFittedError, UserError
from rnnlab.forecast.estimator import choice, frames, members, params
from rnnlab.forecast.estimator import uncertainty as U
from rnnlab.forecast.estimator.combination import Combination
from rnnlab.forecast.estimator.forecasts import Forecasts
from rnnlab.forecast.estimator.heads import Head
from rnnlab.forecast.estimator.params import BOUNDS as BOUNDS  # re-exported
from rnnlab.forecast.estimator.params import CALIBRATIONS as CALIBRATIONS  # re-exported
from rnnlab.forecast.estimator.params import SCALINGS as SCALINGS  # re-exported
from rnnlab.forecast.estimator.params import STRATEGIES as STRATEGIES  # re-exported
from rnnlab.forecast.estimator.pooling import pool
from rnnlab.forecast.estimator.storage import COMBINATION, CONFIG_FILE, read_model_dir, write_model_dir
from rnnlab.forecast.estimator.storage import FORMAT as FORMAT  # re-exported
from rnnlab.forecast.estimator.storage import check_save_dir as check_save_dir  # re-exported
from rnnlab.forecast.estimator.train import Net
from rnnlab.forecast.series import covariates as Cov
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series.targets import histories, levels_read
from rnnlab.io import json_format


class Forecaster(Forecasts):
    """Recurrent forecaster of a univariate series (positive for ``target="logreturn"``).

    The defaults are ``rnnlab forecast``'s, chosen by measurement on the bundled Bitcoin
    prices (see the README): ten LSTM-16 on daily changes, shrunk on the validation slice.

    Parameters
    ----------
    One per row of ``params.TABLE`` (default, type, valid values, meaning), appended below
    at import, so ``help(Forecaster)`` lists them all:
    """

    series_info_: dict  # where the training series came from (set by the CLI, saved with the model)
    covariate_spec_: dict  # the covariate columns it reads (set by the CLI and frames, saved with it)
    member_epochs_: list[int]  # refit: each network's epochs, found by the backtest's early stopping
    target_scores_: dict | None  # --target auto: each candidate's validation score
    n_train_windows_: int | None  # the windows it trained on (None: loaded from an older save)
    n_valid_windows_: int | None

    def __init__(
        self,
        window=7,
        horizon=1,
        strategy="recursive",
        target="auto",
        cell="lstm",
        hidden_size=16,
        num_layers=1,
        dropout=0.0,
        epochs=60,
        batch_size=32,
        lr=1e-3,
        clip=4.0,
        weight_decay=0.0,
        valid_size=0.15,
        patience=10,
        init="pytorch",
        shuffle=True,
        shrink=True,
        ensemble=10,
        likelihood="gaussian",
        scaling="window",
        intervals=(0.8, 0.95),
        calibration="auto",
        n_samples=500,
        bounds="none",
        season=None,
        min_updates=1500,
        seed=0,
        parallel="members",
        time_budget=None,
    ):
        params.store(self, locals())  # every argument under its name, nothing else

    # -- scikit-learn plumbing --------------------------------------------------------
    _PARAMS = params.NAMES

    def get_params(self, deep=True) -> dict:
        """The constructor's arguments (scikit-learn's ``get_params``)."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **values) -> Forecaster:
        """Set constructor arguments (scikit-learn's ``set_params``); returns ``self``."""
        bad = sorted(set(values) - set(self._PARAMS))
        if bad:
            raise ValueError(f"invalid parameters {bad} for Forecaster; valid: {', '.join(self._PARAMS)}")
        for k, v in values.items():
            setattr(self, k, v)
        return self

    def __repr__(self):
        return f"Forecaster({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _validate(self):
        params.validate(self)  # params.py: every constructor argument checked, one line if bad

    def _check_fitted(self):
        if not hasattr(self, "nets_"):
            raise NotFittedError(
                "this Forecaster is not fitted yet: call fit(y) or Forecaster.load(dir) first"
            )

    @property
    def _n_out(self) -> int:
        """Steps each network outputs: K (1 recursive, the horizon direct)."""
        return self.horizon if self.strategy == "direct" else 1

    @property
    def head_(self) -> Head:
        """What the outputs mean (``heads.Head``): K steps of P numbers each."""
        return Head(self.likelihood, self.intervals)

    @property
    def probabilistic(self) -> bool:
        return self.likelihood != "none"

    @property
    def first_origin(self) -> int:
        """The earliest origin a forecast can start from (its window complete)."""
        if "model_" in vars(self):
            return self.model_.first_origin
        return D.first_origin(self.window, self.target, self.season)

    @property
    def levels_read(self) -> int:
        """Levels up to an origin that a forecast from it reads (``targets.levels_read``)."""
        if "model_" in vars(self):  # resolved at fit (frames.py)
            return self.model_.levels_read
        return levels_read(self.window, self.target, self.season)

    # -- fit ------------------------------------------------------------------------------
    def fit(self, y, progress=None, past=None, future=None, past_covariates=(), future_covariates=()):
        """Train on the levels ``y (n,)``, oldest first, a long DataFrame ``unique_id, ds, y``
        or a pandas Series with a DatetimeIndex (``frames``: then ``predict(h)``). Returns ``self``.

        ``progress``: optional callable ``(member, epoch, train_loss, valid_loss)``, called
        after every epoch of every network of the ensemble. ``past (n, P)`` / ``future (n, F)``:
        covariates aligned with ``y`` (``covariates``), needed again to forecast; with a
        DataFrame, the names of its ``past_covariates`` / ``future_covariates`` columns.
        """
        vars(self).pop("model_", None)
        if frames.resolves(self, y):  # target "auto", season from the dates: as the CLI does
            return choice.fit_resolved(self, y, progress, past, future, past_covariates, future_covariates)
        self._validate()
        self.history_, self.ids_ = frames.to_panel(y), None
        y = np.asarray(y, np.float64)
        if y.ndim != 1:
            raise ValueError(f"fit expects a 1-D series of levels (n,), got shape {y.shape}")
        return self._fit([y], None, progress, [past], [future])

    def fit_many(self, series: dict, progress=None, past=None, future=None) -> Forecaster:
        """One global model on many series: ``{id: levels (n_i,)}``, oldest first, of any
        lengths and scales (each is scaled by its own training part: ``pooling``). Forecast
        a series with ``series=id`` in ``forecast_from`` / ``predict``. ``past`` / ``future``:
        ``{id: covariates}`` as in ``fit``. Returns ``self``."""
        vars(self).pop("model_", None)
        if isinstance(series, dict) and series and frames.resolves(self, None):
            return choice.fit_resolved(self, series, progress, past, future)
        self._validate()
        if not isinstance(series, dict) or not series:
            raise UserError("fit_many expects a non-empty dict {series id: levels}")
        ys = [np.asarray(v, np.float64) for v in series.values()]
        if any(y.ndim != 1 for y in ys):
            raise ValueError("fit_many expects 1-D series of levels")
        keys = list(series)
        pasts = [None if past is None else past[k] for k in keys]
        futures = [None if future is None else future[k] for k in keys]
        return self._fit(ys, [str(k) for k in keys], progress, pasts, futures)

    def _fit(self, ys, ids, progress, pasts, futures) -> Forecaster:
        pasts = [Cov.as_2d(p, "past", len(y)) for p, y in zip(pasts, ys)]
        futures = [Cov.as_2d(f, "future", len(y)) for f, y in zip(futures, ys)]
        widths = {
            (0 if p is None else p.shape[1], 0 if f is None else f.shape[1]) for p, f in zip(pasts, futures)
        }
        if len(widths) > 1:
            raise UserError("every series needs the same covariate columns")
        self.n_past_, self.n_future_ = widths.pop()
        if self.n_past_ and self.strategy == "recursive" and self.horizon > 1:
            raise UserError(
                "past covariates are unknown after the forecast origin: with them use --strategy direct "
                "(or horizon 1)"
            )
        pooled = pool(self, ys, pasts, futures)
        inputs, nu = self.features(pooled.X_fit, pooled.C_fit)  # the inputs; nu: each window's scale
        v_inputs, v_nu = self.features(pooled.X_val, pooled.C_val)
        data = (inputs, pooled.Y_fit / nu, v_inputs, pooled.Y_val / v_nu)
        n_valid = pooled.n_valid
        self.nets_, self.histories_, self.shrinks_ = members.train_all(
            self, data, pooled, v_inputs, v_nu, progress
        )
        self.scalers_, self.series_ids_, self.valid_origins_ = pooled.scalers, ids, pooled.valid_origins
        self.scaler_, self.cov_scalers_ = pooled.scalers[0], pooled.cov_scalers
        self.n_train_windows_, self.n_valid_windows_ = len(pooled.X_fit), n_valid
        self.n_features_in_ = 1
        self.calibration_ = None
        if self.probabilistic and self.calibration != "none" and n_valid:
            covs = [
                Cov.window_fn(self, p, f, o, sc)
                for p, f, o, sc in zip(pasts, futures, pooled.valid_origins, pooled.cov_scalers)
            ]
            sets = list(zip(ys, pooled.valid_origins, pooled.scalers, covs))
            self.calibration_ = U.fit_calibration(self, sets, self.horizon)
            self.calibration_["applied"] = self.calibration == "conformal" or self.calibration_["off"]
        return self

    def _train_member(self, k, data, n_valid, progress, shards=None, deadline=None):
        """Network ``k`` of the ensemble, trained (``members.train_member``)."""
        return members.train_member(self, k, data, n_valid, progress, shards, deadline)

    @property
    def window_scaled(self) -> bool:
        """Whether each window is divided by its mean |s| (changes only: levels are not)."""
        return self.scaling == "window" and self.target != "level"

    def window_scale(self, win) -> np.ndarray:
        """``nu (M, 1)`` each scaled window ``(M, W)`` and its targets are divided by: 1 with
        ``scaling="global"``; with ``"window"``, ``mean |s|`` over the window plus 0.01 (the
        outputs are multiplied back), so that the networks see relative moves whatever the
        series' volatility at the time (Salinas et al. 2020 scale each window the same way)."""
        win = np.asarray(win, np.float64)
        if not self.window_scaled:
            return np.ones((len(win), 1))
        return np.mean(np.abs(win), axis=1, keepdims=True) + 0.01

    def features(self, win, cov=None):
        """``(inputs, nu)`` of scaled windows ``(M, W)``: what the networks read and the scale
        ``nu (M, 1)`` their outputs are multiplied by (``s / nu``; 1 unless window-scaled).

        ``log nu`` is not fed as a second input (as DeepAR does): it extrapolates where the
        test part's volatility lies beyond the training part's, as Bitcoin's does
        (docs/MEASUREMENTS.md, "Why the forecaster chooses as it does")."""
        nu = self.window_scale(win)
        scaled = np.asarray(win, np.float64) / nu
        if cov is None:
            return scaled, nu
        return np.concatenate([scaled[:, :, None], cov], axis=2), nu  # (M, W, 1 + P + F)

    @property
    def _input_size(self) -> int:
        return 1 + getattr(self, "n_past_", 0) + getattr(self, "n_future_", 0)

    def _empty_net(self) -> Net:
        """A network of this configuration, for weights to be loaded into."""
        P = self.head_.P
        n_out = self._n_out * P
        return Net(
            self.cell, self.hidden_size, self.num_layers, n_out, self.dropout, "pytorch", 0, self._input_size
        )

    # -- predict --------------------------------------------------------------------------
    def _history(self, y, origins):
        """What ``to_levels`` reads besides the origin's level (sdiff, deseason), else None."""
        return histories(y, origins, self.target, self.season)

    def _scaler(self, series):
        """The scaler of ``series`` (an id given to ``fit_many``; None: the first series)."""
        if series is None:
            return self.scaler_
        ids = getattr(self, "series_ids_", None) or []
        if str(series) not in ids:
            shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            raise UserError(f"series {series!r} was not among the series this model was fitted on ({shown})")
        return self.scalers_[ids.index(str(series))]

    def forecast_from(self, y, origins, steps=None, series=None, past=None, future=None) -> np.ndarray:
        """Forecast ``steps`` levels after each origin: ``(M, steps)``.

        Row m uses only ``y[:origins[m] + 1]`` (the history up to and including the origin).
        An ensemble averages its members' level forecasts. ``series``: its id, for a model of
        many series (``fit_many``).
        """
        return self.forecast_many([(y, origins, series, past, future)], steps)[0]

    def forecast_many(self, items, steps=None) -> list:
        """``forecast_from`` of every ``(y, origins, series, past, future)`` in ``items`` (e.g. each
        series of a panel from its end), batched: one forward per network and step for them all.
        Returns one ``(M_i, steps)`` array per item."""
        if "model_" in vars(self):
            return self.model_.forecast_many(items, steps)
        steps = self._steps(steps)
        return U.point_paths(self, [self._forecast_set(item, steps) for item in items], steps)

    def quantiles_from(
        self, y, origins, levels, steps=None, calibrated=True, series=None, past=None, future=None
    ) -> np.ndarray:
        """Quantiles ``(M, steps, L)`` at ``levels`` of the levels after each origin (from the
        history up to it, as ``forecast_from``): pooled sample paths of the networks, scaled
        by the conformal calibration unless ``calibrated`` is False."""
        return self.quantiles_many([(y, origins, series, past, future)], levels, steps, calibrated)[0]

    def quantiles_many(self, items, levels, steps=None, calibrated=True, progress=None) -> list:
        """``quantiles_from`` of every ``(y, origins, series, past, future)`` in ``items``,
        batched as ``forecast_many`` (``uncertainty.quantiles_many``): one ``(M_i, steps, L)``
        array per item. ``progress(done, total)``: called after each network's sample paths of
        each batch (``total`` = networks x batches), e.g. for a progress bar."""
        if "model_" in vars(self):
            return self.model_.quantiles_many(items, levels, steps, calibrated, progress)
        self._check_fitted()
        if not self.probabilistic:
            raise UserError("this forecaster gives point forecasts only (likelihood none): no quantiles")
        levels = np.asarray(levels, np.float64).reshape(-1)
        if not len(levels) or np.any((levels <= 0) | (levels >= 1)):
            raise UserError(f"quantile levels must lie in (0, 1), got {levels.tolist()}")
        steps = self._steps(steps)
        sets = [self._forecast_set(item, steps) for item in items]
        return U.quantiles_many(self, sets, steps, levels, calibrated, progress)

    def _steps(self, steps) -> int:
        self._check_fitted()
        steps = self.horizon if steps is None else int(steps)
        if steps < 1:
            raise UserError(f"steps must be at least 1, got {steps}")
        return steps

    def _forecast_set(self, item, steps: int):
        """``(y, origins, scaler, cov)`` of a forecast ``item = (y, origins, series, past, future)``,
        checked: what ``uncertainty`` reads."""
        y, origins, series, past, future = item
        y = np.asarray(y, np.float64)
        origins = np.asarray(origins, np.int64).reshape(-1)
        t0 = self.first_origin
        if len(origins) and (origins.min() < t0 or origins.max() >= len(y)):
            raise UserError(
                f"forecast origins must lie in [{t0}, {len(y) - 1}] "
                f"(a window of {self.window} needs {t0 + 1} values up to the origin)"
            )
        D.check_target(y[: origins.max() + 1] if len(origins) else y, self.target)
        scaler = self._scaler(series)
        return y, origins, scaler, Cov.for_forecast(self, series, past, future, origins, steps)

    # -- save / load (rnnlab.forecast.estimator.storage) -----------------------------------------------
    def save(self, directory, overwrite=False) -> str:
        """Write ``config.json`` and ``model.safetensors`` as the directory ``directory``, all or
        nothing. A non-empty directory that is not a forecast model is refused (``UserError``)
        unless ``overwrite``."""
        if "model_" in vars(self):  # the resolved model (a Forecaster or a Combination)
            return self.model_.save(directory, overwrite)
        self._check_fitted()
        return write_model_dir(self, directory, overwrite)

    @classmethod
    def load(cls, directory) -> Forecaster:
        """Rebuild a saved forecaster. A directory that is not one raises ``UserError``."""
        return read_model_dir(cls, directory)


def load_model(directory) -> Forecaster | Combination:
    """The model saved in ``directory``: a ``Combination`` or a ``Forecaster`` (by its format)."""
    if json_format(os.path.join(str(directory), CONFIG_FILE)) == COMBINATION:
        return Combination.load(directory, Forecaster)
    return Forecaster.load(directory)


Forecaster.__doc__ = f"{(Forecaster.__doc__ or '').rstrip()}\n{params.doc()}"  # the table's rows
