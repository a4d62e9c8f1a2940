"""rnnlab.forecast: the chapter's Bitcoin LSTM as an honest forecasting tool.

``Forecaster`` is the estimator; ``load_series`` reads and checks a CSV; ``pipeline.run``
does the chronological split, the fit, the baselines and the metrics; ``cli`` is
``rnnlab forecast``.
"""

from rnnlab.forecast.data import Series, bundled_csv, load_series
from rnnlab.forecast.model import Forecaster

__all__ = ["Forecaster", "Series", "load_series", "bundled_csv"]
