"""Run under mpiexec (or alone) by test_distributed_forecast.py: a panel's global model trained
data-parallel (parallel="data": every rank a shard of every batch, the gradients summed) and,
alone, the same arithmetic in one process (two shards accumulated); writes each member's
parameter hash, the shrinks and a forecast to FOLDER/data-rank{r}-of-{size}.json."""

import json
import os
import sys

import numpy as np

from rnnlab import distributed
from rnnlab.forecast.estimator.model import Forecaster


class Accumulating(Forecaster):
    """One process, two shards of every batch summed in rank order: what two ranks compute."""

    def _train_member(self, k, data, n_valid, progress, world=None, deadline=None):
        return super()._train_member(k, data, n_valid, progress, 2, deadline)


w = distributed.init()
rng = np.random.default_rng(5)
panel = {f"s{i}": 50 * (i + 1) * np.exp(np.cumsum(0.01 * rng.standard_normal(90))) for i in range(3)}
cls = Forecaster if w.size > 1 else Accumulating
params = dict(window=5, hidden_size=4, epochs=3, ensemble=2, seed=2, target="diff", season=1, min_updates=0)
f = cls(**params, batch_size=7, parallel="data").fit_many(panel)  # 7: shards of 4 and 3 rows
h = [distributed.parameter_hash(n) for n in f.nets_]
pred = f.predict(panel["s1"], 3, series="s1").tolist()
result = {"rank": w.rank, "size": w.size, "hashes": h, "shrinks": f.shrinks_, "pred": pred}
with open(os.path.join(sys.argv[1], f"data-rank{w.rank}-of-{w.size}.json"), "w", encoding="utf-8") as out:
    json.dump(result, out)
