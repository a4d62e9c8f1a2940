"""Metrics against hand-computed values; the t distribution against printed tables; DM."""

import math

import numpy as np
import pytest

from rnnlab.forecast.estimator import metrics as M

Y = np.array([100.0, 110.0, 105.0, 120.0])
F = np.array([102.0, 107.0, 105.0, 112.0])
Y0 = np.array([101.0, 100.0, 110.0, 105.0])  # the value at each forecast origin


def test_point_metrics_by_hand():
    e = [-2.0, 3.0, 0.0, 8.0]
    assert M.rmse(Y, F) == pytest.approx(math.sqrt((4 + 9 + 0 + 64) / 4))
    assert M.mae(Y, F) == pytest.approx((2 + 3 + 0 + 8) / 4)
    assert M.mape(Y, F) == pytest.approx(100 * (2 / 100 + 3 / 110 + 0 / 105 + 8 / 120) / 4)
    assert M.smape(Y, F) == pytest.approx(100 * (4 / 202 + 6 / 217 + 0 + 16 / 232) / 4)
    assert np.allclose(Y - F, e)


def test_mase_uses_the_training_naive_error():
    y_train = np.array([10.0, 12.0, 11.0, 15.0])  # |diffs| 2, 1, 4 -> 7/3
    scale = M.naive_scale(y_train)
    assert scale == pytest.approx(7 / 3)
    assert M.mase(Y, F, scale) == pytest.approx(((2 + 3 + 0 + 8) / 4) / (7 / 3))


def test_directional_accuracy_by_hand():
    # forecast moves: +1, +7, -5, +7 ; actual moves: -1, +10, -5, +15 -> right on 3 of 4
    assert M.directional_accuracy(Y, F, Y0) == pytest.approx(0.75)
    # a forecast of no change never has a direction (persistence)
    assert M.directional_accuracy(Y, Y0, Y0) is None
    # a zero move next to real moves counts as wrong
    f = np.array([101.0, 107.0, 110.0, 112.0])  # moves 0, +7, 0, +7: right twice
    assert M.directional_accuracy(Y, f, Y0) == pytest.approx(0.5)


def test_mape_undefined_at_zero_and_all_metrics_none():
    assert math.isnan(M.mape([0.0, 1.0], [1.0, 1.0]))
    out = M.all_metrics(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 1.0]), 1.0)
    assert out["mape"] is None and out["rmse"] == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize(
    "t, df, p",
    [
        (2.228, 10, 0.05),
        (3.169, 10, 0.01),
        (2.571, 5, 0.05),
        (2.015, 5, 0.10),
        (1.960, 1e7, 0.05),
        (12.706, 1, 0.05),
        (0.0, 7, 1.0),
        (2.045, 29, 0.05),
    ],
)
def test_t_two_sided_tail_matches_tables(t, df, p):
    assert M.t_sf2(t, df) == pytest.approx(p, abs=6e-4)


def test_t_tail_is_the_normal_for_large_df_and_symmetric():
    for x in (0.3, 1.0, 2.5):
        assert M.t_sf2(x, 1e9) == pytest.approx(2 * (1 - M.normal_cdf(x)), abs=1e-6)
        assert M.t_sf2(-x, 12) == M.t_sf2(x, 12)
    assert M.t_sf2(1.0, 1) == pytest.approx(0.5, abs=1e-12)  # Cauchy: P(|T| > 1) = 1/2
    assert M.normal_cdf(1.959963985) == pytest.approx(0.975, abs=1e-9)


def dm_by_loops(e1, e2, h):
    """An independent, loop-by-loop Diebold-Mariano with the HLN correction."""
    n = len(e1)
    d = [a * a - b * b for a, b in zip(e1, e2)]
    dbar = sum(d) / n
    gam = []
    for k in range(h):
        gam.append(sum((d[t] - dbar) * (d[t - k] - dbar) for t in range(k, n)) / n)
    var = (gam[0] + 2 * sum(gam[1:])) / n
    dm = dbar / math.sqrt(var)
    return dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)


def test_dm_matches_the_formula_by_loops():
    rng = np.random.default_rng(3)
    e2 = rng.normal(0, 1, 40)
    e1 = 0.8 * e2 + rng.normal(0, 0.5, 40)
    for h in (1, 2, 3):
        out = M.dm_test(e1, e2, horizon=h)
        assert out["statistic"] == pytest.approx(dm_by_loops(e1, e2, h), rel=1e-12)
        assert out["p_value"] == pytest.approx(M.t_sf2(out["statistic"], 39), rel=1e-12)


def test_dm_known_value():
    """A small worked example: d = e1^2 - e2^2 = [-3, 3, 8, -3, 3, -0.75], h = 1.

    d_bar = 1.208333, gamma_0 = 91.802083 / 6 = 15.300347, DM = 1.208333 / sqrt(15.300347 / 6)
    = 0.756679, HLN factor sqrt((6 + 1 - 2) / 6) = 0.912871, DM* = 0.690750,
    p = P(|t_5| > 0.690750) = 0.520473 (by numerical integration of the t_5 density).
    """
    e1 = np.array([1.0, -2.0, 3.0, -1.0, 2.0, 0.5])
    e2 = np.array([2.0, -1.0, 1.0, -2.0, 1.0, 1.0])
    out = M.dm_test(e1, e2, horizon=1)
    assert out["statistic"] == pytest.approx(0.690750, abs=1e-6)
    assert out["p_value"] == pytest.approx(0.520473, abs=1e-6)


def test_dm_sign_and_degenerate_cases():
    rng = np.random.default_rng(0)
    e2 = rng.normal(0, 1, 200)
    better = M.dm_test(0.5 * e2, e2)
    assert better["statistic"] < 0 and better["p_value"] < 1e-6
    same = M.dm_test(e2, e2)
    assert same["statistic"] is None and same["p_value"] is None
    rounded = M.dm_test(e2 * (1 + 1e-15), e2)  # an ensemble mean's rounding
    assert rounded["statistic"] is None
    with pytest.raises(ValueError):
        M.dm_test(e2, e2[:-1])
