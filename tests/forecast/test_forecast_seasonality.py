"""Frequencies read off the dates, the season they imply, the seasonal-naive baseline, the
seasonal MASE and the default window, through the command line."""

import json

import numpy as np
import pandas as pd
import pytest
from forecast_helpers import random_walk, write_csv
from test_forecast_cli import FAST, run

from rnnlab.forecast.evaluation import baselines as B
from rnnlab.forecast.series import calendar as Cal


@pytest.mark.parametrize(
    "freq,want",
    [
        ("D", ("daily", 7)),
        ("B", ("business-daily", 5)),
        ("W", ("weekly", 52)),
        ("MS", ("monthly", 12)),
        ("ME", ("monthly", 12)),
        ("QS", ("quarterly", 4)),
        ("6MS", ("half-yearly", 2)),
        ("YS", ("yearly", 1)),
        ("10D", ("every 10 days", 1)),
    ],
)
def test_detect_frequency(freq, want):
    dates = pd.date_range("2001-01-01", periods=60, freq=freq).to_numpy().astype("datetime64[D]")
    assert Cal.detect_frequency(dates) == want


def test_daily_dates_with_gaps_but_saturdays_are_daily():
    dates = pd.date_range("2001-01-01", periods=60, freq="D").to_numpy().astype("datetime64[D]")
    keep = np.ones(60, bool)
    keep[::5] = False  # a gap now and then, weekends still there
    assert Cal.detect_frequency(dates[keep]) == ("daily", 7)
    assert Cal.detect_frequency(dates[:2]) == ("unknown", 1)


def test_seasonal_naive_by_hand():
    y = np.arange(20.0)  # y_t = t
    # season 4, origin 9: h = 1..6 -> y_{9+h-4 ceil(h/4)} = 6, 7, 8, 9, 6, 7
    np.testing.assert_array_equal(B.seasonal_naive(y, [9], 6, 4), [[6, 7, 8, 9, 6, 7]])
    with pytest.raises(ValueError, match="season"):
        B.seasonal_naive(y, [2], 1, 4)
    assert "seasonal_naive" not in B.all_baselines(y, [9], 1, 3, season=1)


def test_seasonal_scale():
    y = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0])
    assert Cal.seasonal_scale(y, 2) == pytest.approx(1.0)  # |2-1|, |6-5|, |3-2|, |7-6|
    assert Cal.seasonal_scale(y, 1) == pytest.approx(np.mean(np.abs(np.diff(y))))


def monthly_csv(tmp_path, n=160):
    t = np.arange(n)
    y = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 1, n)
    return write_csv(tmp_path / "monthly.csv", y, start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")


def test_a_monthly_series_gets_its_season(tmp_path, capsys):
    csv = monthly_csv(tmp_path)
    fast = [a for a in FAST if a not in ("--window", "5")]  # the default window: a season
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot", "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    assert "frequency: monthly, season 12" in out and "window 12" in out and "seasonal naive" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["config"]["season"] == 12 and r["config"]["frequency"] == "monthly"
    sn = r["metrics"]["seasonal_naive"]
    assert sn["mase"] == pytest.approx(1.0, abs=0.6)  # about the in-sample seasonal naive error
    # --season 1 and an explicit window: no seasonal row, the window as given
    code, out, err = run(capsys, "--csv", csv, *FAST, "--no-plot", "--season", "1")
    assert code == 0 and "seasonal naive" not in out and "window 5" in out
    code, out, err = run(capsys, "--csv", csv, *FAST, "--no-plot", "--season", "0")
    assert code == 2 and "--season" in err


def test_the_seasonal_naive_wins_on_a_pure_season(tmp_path, capsys):
    n = 200
    y = 50 + 20 * np.sin(2 * np.pi * np.arange(n) / 12)
    csv = write_csv(tmp_path / "pure.csv", y, start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    code, out, err = run(capsys, "--csv", csv, *FAST, "--no-plot", "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["metrics"]["seasonal_naive"]["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert r["metrics"]["persistence"]["rmse"] > 1.0


def test_bitcoin_is_daily(capsys):
    from rnnlab.forecast import load_series

    s = load_series()
    assert (s.freq, s.season) == ("daily", 7)
    assert "frequency: daily, season 7" in s.notes


def test_random_walk_default_csv_is_daily(tmp_path):
    from rnnlab.forecast import load_series

    s = load_series(write_csv(tmp_path / "s.csv", random_walk()))
    assert s.season == 7


def test_the_seasonal_difference_target(tmp_path, capsys):
    """target sdiff on a pure season plus noise: its "no change" is the seasonal naive forecast,
    so a model shrunk to it forecasts y_{t+1-m} exactly; without a season it is refused."""
    from rnnlab.forecast import Forecaster
    from rnnlab.forecast.evaluation import pipeline as P

    csv = monthly_csv(tmp_path)
    code, out, err = run(capsys, "--csv", csv, *FAST, "--no-plot", "--target", "sdiff", "--horizon", "14")
    assert code == 0 and "on sdiff" in out, err
    code, out, err = run(capsys, "--csv", csv, *FAST, "--no-plot", "--target", "sdiff", "--season", "1")
    assert code == 2 and "needs a season" in err
    y = 100 + 10 * np.sin(2 * np.pi * np.arange(120) / 12)
    cfg = dict(P.DEFAULTS, target="sdiff", season=12, window=12, epochs=1, ensemble=1)
    f = Forecaster(**{k: cfg[k] for k in P.MODEL_KEYS}).fit(y)
    f.shrinks_ = [0.0]  # no change: the seasonal naive path, 14 steps (past one season)
    np.testing.assert_allclose(f.predict(y, 14), B.seasonal_naive(y, [119], 14, 12)[0])
