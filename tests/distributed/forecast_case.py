"""Run under mpiexec (or alone) by test_distributed_forecast.py: fit a small ensemble and write,
into FOLDER/rank{r}-of-{size}.json, every member's parameter hash, the shrinks and a prediction
(a file per rank: the ranks' stdout lines interleave)."""

import json
import os
import sys

import numpy as np

from rnnlab import distributed
from rnnlab.forecast.estimator.model import Forecaster

w = distributed.init()
y = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(3).standard_normal(200)))
f = Forecaster(window=5, hidden_size=4, epochs=3, ensemble=3, seed=2).fit(y)
h = [distributed.parameter_hash(n) for n in f.nets_]
pred = f.predict(y, 3).tolist()
result = {"rank": w.rank, "size": w.size, "hashes": h, "shrinks": f.shrinks_, "pred": pred}
with open(os.path.join(sys.argv[1], f"rank{w.rank}-of-{w.size}.json"), "w", encoding="utf-8") as out:
    json.dump(result, out)
