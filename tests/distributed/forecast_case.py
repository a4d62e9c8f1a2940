"""Run under mpiexec (or alone) by test_distributed_forecast.py: fit a small ensemble and print,
as one JSON line per rank, every member's parameter hash, the shrinks and a prediction."""

import json

import numpy as np

from rnnlab import distributed
from rnnlab.forecast.model import Forecaster

w = distributed.init()
y = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(3).standard_normal(200)))
f = Forecaster(window=5, hidden_size=4, epochs=3, ensemble=3, seed=2).fit(y)
h = [distributed.parameter_hash(n) for n in f.nets_]
print(
    json.dumps(
        {"rank": w.rank, "size": w.size, "hashes": h, "shrinks": f.shrinks_, "pred": f.predict(y, 3).tolist()}
    )
)
