"""What every fitted forecaster offers on top of ``forecast_from`` / ``quantiles_from``: the
next levels after a history (``predict``), their quantiles (``predict_quantiles``) and how many
levels a forecast reads (``levels_read``). ``Forecaster`` (one target) and ``Combination``
(several, averaged) share it."""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError


class Forecasts:
    """Mixin: needs ``forecast_from``, ``quantiles_from``, ``first_origin``, ``levels_read``,
    ``window``, ``target``, ``_check_fitted``."""

    window: int

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

    def predict(self, y, steps=None, series=None, past=None, future=None) -> np.ndarray:
        """The next ``steps`` (default ``horizon``) levels after the end of ``y``: ``(steps,)``."""
        self._check_fitted()
        y = np.asarray(y, np.float64)
        need = self.first_origin + 1
        if y.ndim != 1 or len(y) < need:
            raise UserError(
                f"predict needs a 1-D history of at least {need} values "
                f"(window {self.window}, target {self.target}), got shape {y.shape}"  # type: ignore[attr-defined]
            )
        return self.forecast_from(y, [len(y) - 1], steps, series, past, future)[0]

    def predict_quantiles(self, y, levels, steps=None, series=None, past=None, future=None) -> np.ndarray:
        """Quantiles ``(steps, L)`` at ``levels`` of the next ``steps`` levels after ``y``."""
        self.predict(y, 1, series, past, future)  # the same checks of the history
        end = [len(np.asarray(y)) - 1]
        return self.quantiles_from(y, end, levels, steps, series=series, past=past, future=future)[0]
