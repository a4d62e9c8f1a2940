"""The M4 measures and Naive2 (benchmarks/m4_metrics.py) on hand-made series: no data needed."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import m4_metrics as M  # noqa: E402


def test_smape_is_200_abs_error_over_the_sum_of_magnitudes():
    got = M.smape_points([100.0, 50.0, -4.0], [110.0, 50.0, 4.0])
    np.testing.assert_allclose(got, [200 * 10 / 210, 0.0, 200.0])


def test_mase_scale_is_the_in_sample_seasonal_naive_error():
    x = [1.0, 2.0, 3.0, 5.0, 8.0]  # lag-2 errors 2, 3, 5
    assert M.mase_scale(x, 2) == pytest.approx(10 / 3)
    assert M.mase_scale(x, 1) == pytest.approx(7 / 4)  # 1, 1, 2, 3
    np.testing.assert_allclose(M.mase_points(x, [10.0, 4.0], [9.0, 6.0], 2), [0.3, 0.6])
    with pytest.raises(ValueError):
        M.mase_scale([1.0, 2.0], 2)


def test_acf_matches_the_definition_written_out():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    d = x - x.mean()
    want = [sum(d[t] * d[t - k] for t in range(k, len(x))) / sum(d**2) for k in (1, 2, 3)]
    np.testing.assert_allclose(M.acf(x, 3), want)


def test_seasonality_test_on_an_alternating_series_and_on_short_or_flat_ones():
    x = np.tile([1.0, 3.0], 10)  # r_1 = -0.95, r_2 = 0.9; the limit 1.645 sqrt(1 + 2 r_1^2) / sqrt(20)
    assert M.seasonality_test(x, 2)
    assert not M.seasonality_test(x[:5], 2)  # shorter than three seasons: never seasonal
    wave = 5 + np.cos(2 * np.pi * np.arange(40) / 8)  # period 8: r_2 = cos(pi / 2) = 0, r_1 large
    assert abs(M.acf(wave, 2)[1]) < 0.05 and not M.seasonality_test(wave, 2)
    assert not M.seasonality_test(x, 1)


def test_seasonal_indices_of_an_exact_pattern_are_its_ratios_to_the_mean():
    x = np.tile([1.0, 3.0], 4)  # the centred 2x2 average is 2 everywhere it exists
    np.testing.assert_allclose(M.seasonal_indices(x, 2), [0.5, 1.5])
    y = np.tile([2.0, 4.0, 6.0], 3) * 5.0  # odd season: a plain centred average of 3 (= 20)
    np.testing.assert_allclose(M.seasonal_indices(y, 3), [0.5, 1.0, 1.5])


def test_seasonal_indices_match_statsmodels_seasonal_decompose():
    sm = pytest.importorskip("statsmodels.tsa.seasonal")
    rng = np.random.default_rng(0)
    x = (10 + np.arange(75) * 0.1) * np.tile([0.8, 1.1, 1.3, 0.8, 1.0], 15) + rng.uniform(0, 0.5, 75)
    for m in (4, 5):
        want = sm.seasonal_decompose(x, model="multiplicative", period=m).seasonal[:m]
        np.testing.assert_allclose(M.seasonal_indices(x, m), want)


def test_naive2_reseasonalises_the_last_adjusted_value():
    x = np.tile([1.0, 3.0], 10) * 2.0  # seasonal: adjusted series is 4 everywhere
    np.testing.assert_allclose(M.naive2(x, 5, 2), [2.0, 6.0, 2.0, 6.0, 2.0])
    np.testing.assert_allclose(M.naive2(x[:-1], 3, 2), [6.0, 2.0, 6.0])  # starts where the season is
    flat = np.array([5.0, 6.0, 5.5, 7.0, 6.5, 6.0, 7.5])  # too short to be seasonal at m = 3
    np.testing.assert_allclose(M.naive2(flat, 4, 3), [7.5] * 4)
    np.testing.assert_allclose(M.seasonal_naive(x[:-1], 3, 2), [6.0, 2.0, 6.0])


def test_score_pools_every_point_and_owa_divides_the_set_means():
    train = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 40.0])]  # lag-1 scales 1 and 15
    test = [np.array([4.0, 5.0]), np.array([40.0, 40.0])]
    fc = [np.array([4.0, 4.0]), np.array([25.0, 55.0])]
    got = M.score(train, test, fc, 1)
    s = [0.0, 200 / 9, 200 * 15 / 65, 200 * 15 / 95]
    assert got["smape"] == pytest.approx(np.mean(s))
    assert got["mase"] == pytest.approx(np.mean([0.0, 1.0, 1.0, 1.0]))
    assert M.owa(got, got) == pytest.approx(1.0)
    assert M.owa(got, {"smape": 2 * got["smape"], "mase": got["mase"] / 2}) == pytest.approx(1.25)
