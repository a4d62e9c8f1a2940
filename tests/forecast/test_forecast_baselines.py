"""The baselines by hand, and against the reference script's persistence on btc.csv."""

import numpy as np
import pytest

from rnnlab.forecast.estimator import metrics as M
from rnnlab.forecast.evaluation import baselines as B
from rnnlab.forecast.series import data as D

y = np.array([10.0, 12.0, 11.0, 15.0, 14.0, 18.0])


def test_persistence():
    np.testing.assert_array_equal(B.persistence(y, [2, 4], 3), [[11, 11, 11], [14, 14, 14]])


def test_drift():
    # origin 4: slope (14 - 10) / 4 = 1 per step -> 15, 16
    np.testing.assert_allclose(B.drift(y, [4], 2), [[15.0, 16.0]])
    # origin 1: slope 2 -> 14
    np.testing.assert_allclose(B.drift(y, [1], 1), [[14.0]])


def test_moving_average():
    np.testing.assert_allclose(
        B.moving_average(y, [3, 5], 2, window=3), [[(12 + 11 + 15) / 3] * 2, [(15 + 14 + 18) / 3] * 2]
    )
    with pytest.raises(ValueError):
        B.moving_average(y, [1], 1, window=3)


def test_baselines_never_read_past_the_origin():
    rng = np.random.default_rng(0)
    z = rng.normal(size=50).cumsum() + 100
    origins = np.arange(10, 30)
    before = B.all_baselines(z, origins, 4, 7)
    for o in origins:  # change everything after each origin: nothing moves
        z3 = z.copy()
        z3[o + 1 :] = -5.0
        for name, f in B.all_baselines(z3, [o], 4, 7).items():
            np.testing.assert_array_equal(f[0], before[name][o - 10])


def test_persistence_matches_the_torch_reference_on_btc():
    """btc_torch_reference.py: persistence RMSE 595.97 USD on the 266 days after 1000 windows."""
    s = D.load_series()
    j = np.arange(1007, len(s))
    assert len(j) == 266
    f = B.persistence(s.values, j - 1, 1)[:, 0]
    assert M.rmse(s.values[j], f) == pytest.approx(595.97, abs=0.005)
