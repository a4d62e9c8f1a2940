"""rnnlab.forecast: the chapter's Bitcoin LSTM as an honest forecasting tool.

``Forecaster`` is the estimator; ``Combination`` averages forecasters of several targets (what
``--target auto`` returns when candidates score alike); ``load_model`` reads either from its
directory; ``load_series`` reads and checks a CSV. Four subpackages, each importing only those
before it::

    series/       the data: a CSV, its dates, the targets a network models, covariates
    estimator/    Forecaster and Combination: the table of arguments, the network and its loop,
                  sample paths, the model files, the ONNX graph
    evaluation/   what rnnlab forecast measures: the split, the baselines, the backtest, the future
    cli/          rnnlab forecast and forecast predict | export: parse, run, print, draw
"""

from rnnlab.forecast.estimator.combination import Combination
from rnnlab.forecast.estimator.model import Forecaster, load_model
from rnnlab.forecast.series.data import Series, bundled_csv, load_series

__all__ = ["Combination", "Forecaster", "Series", "load_model", "load_series", "bundled_csv"]
