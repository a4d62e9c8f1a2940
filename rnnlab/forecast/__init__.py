"""rnnlab.forecast: the chapter's Bitcoin LSTM as an honest forecasting tool.

``Forecaster`` is the estimator; ``Combination`` averages forecasters of several targets (what
``--target auto`` returns when candidates score alike); ``load_model`` reads either from its
directory; ``load_series`` reads and checks a CSV; ``pipeline.run`` does the chronological
split, the fit, the baselines and the metrics; ``cli`` is ``rnnlab forecast``.
"""

from rnnlab.forecast.combination import Combination
from rnnlab.forecast.data import Series, bundled_csv, load_series
from rnnlab.forecast.model import Forecaster, load_model

__all__ = ["Combination", "Forecaster", "Series", "load_model", "load_series", "bundled_csv"]
