"""What every fitted forecaster offers on top of ``forecast_from`` / ``quantiles_from``: the
next levels after a history (``predict``), their quantiles (``predict_quantiles``) and how many
levels a forecast reads (``levels_read``). ``Forecaster`` (one target) and ``Combination``
(several, averaged) share it."""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.estimator import frames


class Forecasts:
    """Mixin: needs ``forecast_from``, ``quantiles_from``, ``first_origin``, ``levels_read``,
    ``window``, ``target``, ``_check_fitted``."""

    window: int

    def __getattr__(self, name):
        """A fitted attribute (``nets_``, ``scalers_``, ``target_scores_`` ...) of the model a
        ``Forecaster`` resolved at fit (``model_``, see ``frames``)."""
        model = vars(self).get("model_")
        if model is None or not name.endswith("_") or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(model, name)

    def predict(self, *args, **kwargs):
        """``predict(h, level=[80, 95], new_df=None, futr_df=None)``: a DataFrame of the next ``h``
        values after the fitted histories (``frames.predict_frame``); ``predict(y, steps, ...)``
        with an array ``y``: the next ``steps`` levels after it, ``(steps,)``."""
        first = args[0] if args else kwargs.get("h", kwargs.get("y"))
        scalar = isinstance(first, (int, np.integer)) and not isinstance(first, bool)
        if "h" in kwargs or scalar:
            return frames.predict_frame(self, *args, **kwargs)
        return self.predict_levels(*args, **kwargs)

    def sample_paths(self, h: int, n: int = 1000, new_df=None) -> np.ndarray:
        """``(series, n, h)`` sample paths after the fitted histories (``frames.sample_paths``)."""
        return frames.sample_paths(self, h, n, new_df)

    @property
    def first_origin(self) -> int:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        raise NotImplementedError

    def forecast_from(self, y, origins, steps=None, series=None, past=None, future=None) -> np.ndarray:
        raise NotImplementedError

    def quantiles_from(
        self, y, origins, levels, steps=None, calibrated=True, series=None, past=None, future=None
    ) -> np.ndarray:
        raise NotImplementedError

    def predict_levels(self, y, steps=None, series=None, past=None, future=None) -> np.ndarray:
        """The next ``steps`` (default ``horizon``) levels after the end of ``y``: ``(steps,)``."""
        self._check_fitted()
        y = np.asarray(y, np.float64)
        need = self.first_origin + 1
        if y.ndim != 1 or len(y) < need:
            raise UserError(
                f"predict needs a 1-D history of at least {need} values "
                f"(window {self.window}, target {self.target}), got shape {y.shape}"
            )
        return self.forecast_from(y, [len(y) - 1], steps, series, past, future)[0]

    def predict_quantiles(self, y, levels, steps=None, series=None, past=None, future=None) -> np.ndarray:
        """Quantiles ``(steps, L)`` at ``levels`` of the next ``steps`` levels after ``y``."""
        self.predict_levels(y, 1, series, past, future)  # the same checks of the history
        end = [len(np.asarray(y)) - 1]
        return self.quantiles_from(y, end, levels, steps, series=series, past=past, future=future)[0]
