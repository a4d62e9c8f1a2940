"""Loading, checking, sorting, windows, targets, split sizes and the scaler."""

import numpy as np
import pytest
from forecast_helpers import random_walk, write_csv

from rnnlab.errors import UserError
from rnnlab.forecast.series import data as D


def test_bundled_btc_is_sorted_ascending_with_no_gaps():
    s = D.load_series()
    assert len(s) == 1273
    assert s.date_str(0) == "2014-12-01" and s.date_str(-1) == "2018-05-26"
    assert s.dates.dtype == np.dtype("datetime64[s]") and s.freq_alias == "D"
    assert np.all(np.diff(s.dates) == np.timedelta64(1, "D"))
    assert s.values[-1] == 7520.0  # the file's FIRST row (newest first)
    assert any("newest first" in n for n in s.notes)
    assert any("no gaps" in n for n in s.notes)


def test_sorting_keeps_value_date_pairs(tmp_path):
    y = random_walk(50)
    s = D.load_series(write_csv(tmp_path / "a.csv", y, newest_first=True))
    np.testing.assert_allclose(s.values, np.round(y, 6))
    assert np.all(np.diff(s.dates) == np.timedelta64(1, "D"))


def test_gap_is_reported(tmp_path):
    p = tmp_path / "gap.csv"
    p.write_text("Date,Close\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n2020-01-07,4\n2020-01-08,5\n")
    s = D.load_series(str(p))
    assert any("1 gap(s)" in n and "2020-01-03..2020-01-07" in n for n in s.notes)


def test_duplicate_dates_are_an_error(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("Date,Close\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n2020-01-03,4\n")
    with pytest.raises(UserError, match="duplicate date.*2020-01-02"):
        D.load_series(str(p))


def test_nonnumeric_rows_are_named(tmp_path):
    path = write_csv(tmp_path / "bad.csv", random_walk(30), newest_first=False, raw={4: "abc", 9: "12$"})
    with pytest.raises(UserError, match=r"line\(s\) 6, 11 .*'abc'"):
        D.load_series(path)


def test_missing_values_error_or_ffill(tmp_path):
    y = random_walk(30)
    path = write_csv(tmp_path / "nan.csv", y, newest_first=False, raw={3: "", 4: "NaN"})
    with pytest.raises(UserError, match=r"2 missing value.*line\(s\) 5, 6.*--fill ffill"):
        D.load_series(path)
    s = D.load_series(path, fill="ffill")
    assert s.values[3] == s.values[4] == pytest.approx(y[2], abs=1e-6)
    assert any("filled 2" in n for n in s.notes)


def test_ffill_after_sorting_newest_first(tmp_path):
    """The value carried forward is the previous DAY's, not the previous row's of the file."""
    y = random_walk(30)
    path = write_csv(tmp_path / "nan.csv", y, newest_first=True, raw={10: ""})
    s = D.load_series(path, fill="ffill")
    assert s.values[10] == pytest.approx(y[9], abs=1e-6)


def test_transform_and_inverse_round_trip():
    y = random_walk(40)
    from rnnlab.forecast.series.targets import histories

    for target in D.TARGETS:
        m = 3  # sdiff's season: H = 4 steps reach past it
        z = D.transform(y, target, m)
        t = np.arange(max(5, D.lag(target, m)), 30)  # origins with a whole history
        H = 4
        z_path = np.stack([z[t + h] for h in range(1, H + 1)], axis=1)  # the true future changes
        levels = D.to_levels(y[t], z_path, target, histories(y, t, target, m), m)
        np.testing.assert_allclose(levels, np.stack([y[t + h] for h in range(1, H + 1)], axis=1), rtol=1e-12)


def test_windows_are_aligned():
    z = np.arange(20.0)
    X, Y = D.windows(z, window=3, horizon=2, first=2, last=10)
    assert X.shape == (9, 3) and Y.shape == (9, 2)
    np.testing.assert_array_equal(X[0], [0, 1, 2])
    np.testing.assert_array_equal(Y[0], [3, 4])
    np.testing.assert_array_equal(X[-1], [8, 9, 10])
    np.testing.assert_array_equal(Y[-1], [11, 12])


def test_test_count_and_min_length():
    assert D.test_count(1000, 0.2) == 200
    assert D.test_count(1000, 266) == 266
    assert D.test_count(1000, "0.1") == 100 and D.test_count(1000, "50") == 50
    for bad in (0, 1.5, "x", -3):
        with pytest.raises(UserError):
            D.test_count(1000, bad)
    n = D.min_length(7, 1, "logreturn", 20, valid=True)
    # window 7 of log returns needs 8 levels; MIN_TRAIN_WINDOWS + 2 validation windows + 1 target
    assert n == 20 + D.MIN_TRAIN_WINDOWS + 2 + 1 + 7
    D.check_length(n, 7, 1, "logreturn", 20)
    with pytest.raises(UserError, match=f"at least {n} points"):
        D.check_length(n - 1, 7, 1, "logreturn", 20)


def test_scaler_uses_only_what_it_is_given():
    z = np.array([1.0, 2.0, 3.0, np.nan])
    sc = D.StandardScaler().fit(z)
    assert sc.mean_ == 2.0 and sc.scale_ == pytest.approx(np.std([1, 2, 3]))
    np.testing.assert_allclose(sc.inverse_transform(sc.transform([5.0, -1.0])), [5.0, -1.0])


def test_logreturn_needs_positive_values():
    with pytest.raises(UserError, match="positive"):
        D.check_target(np.array([1.0, 0.0, 2.0]), "logreturn")
