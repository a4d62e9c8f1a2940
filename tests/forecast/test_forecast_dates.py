"""Dates that are right: the frequency as a pandas alias, the future by pandas' own calendar,
one date format per column, time zones kept or converted with a word."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line, run_cli
from forecast_helpers import random_walk
from test_forecast_cli import FAST

from rnnlab.errors import UserError
from rnnlab.forecast.cli import predict as Pr
from rnnlab.forecast.estimator import storage as St
from rnnlab.forecast.series import data as D
from rnnlab.forecast.series import dates as Dt


def series_at(index: pd.DatetimeIndex, alias=None) -> D.Series:
    """A Series on ``index`` (tz-aware or naive), built as the loader builds one."""
    tz = None if index.tz is None else str(index.tz)
    wall = index.tz_localize(None) if tz else index
    y = random_walk(len(index))
    return D.series_of(
        y, np.zeros(len(y), bool), wall.to_numpy(), "mem", "y", "ds", "none", [], tz=tz, freq=alias
    )


def pandas_continuation(index: pd.DatetimeIndex, steps: int) -> pd.DatetimeIndex:
    return pd.date_range(start=index[-1], periods=steps + 1, freq=index.freq)[1:]


# (alias, start, periods, tz): every frequency, each continued across what makes it hard
CASES = [
    ("15min", "2024-01-01 21:00", 20, None),  # sub-hourly, across midnight
    ("h", "2024-01-01 12:00", 10, None),  # hourly, across midnight
    ("h", "2024-03-30 12:00", 12, "Europe/Berlin"),  # the future crosses 02:00 -> 03:00 (spring)
    ("h", "2024-10-26 14:00", 10, "Europe/Berlin"),  # the future crosses 03:00 -> 02:00 (autumn)
    ("h", "2024-01-01 00:00", 30, "+05:00"),  # one fixed offset
    ("D", "2024-02-20", 8, None),  # across a leap day
    ("B", "2024-01-01", 15, None),  # three weeks, Monday .. Friday: the future starts on Monday
    ("W-WED", "2024-01-03", 10, None),  # weekly on a Wednesday
    ("W-SUN", "2024-01-07", 10, None),
    ("MS", "2023-06-01", 12, None),
    ("ME", "2023-06-30", 7, None),  # ends 2023-12-31: 2024-01-31, 2024-02-29 (leap), 2024-03-31
    ("ME", "2022-06-30", 7, None),  # ends 2022-12-31: 2023-02-28 (no leap day)
    ("QS-JAN", "2020-01-01", 8, None),  # pandas calls it QS-OCT: quarters from Jan, Apr, Jul, Oct
    ("QE-DEC", "2020-03-31", 8, None),
    ("YS-JAN", "2000-01-01", 10, None),
    ("YE-DEC", "2000-12-31", 10, None),
]


@pytest.mark.parametrize("alias,start,periods,tz", CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES])
def test_future_dates_are_pandas_own_continuation(alias, start, periods, tz):
    index = pd.date_range(start, periods=periods, freq=alias, tz=tz)
    s = series_at(index)
    assert s.freq_alias == Dt.check_freq(alias)  # inferred from the dates alone
    steps = 9
    want = pandas_continuation(index, steps)
    got = Dt.future_dates(s, steps)
    assert got.dtype == np.dtype("datetime64[s]")
    wall = want.tz_localize(None) if tz else want
    np.testing.assert_array_equal(got, wall.to_numpy().astype("datetime64[s]"))
    # written as ISO: a date for daily and coarser, date, time and offset for sub-daily
    text = Dt.date_strings(got, s.freq_alias, s.tz)
    if Dt.is_sub_daily(alias):
        assert text == [t.isoformat() if tz else t.strftime("%Y-%m-%dT%H:%M:%S") for t in want]
    else:
        assert text == [t.strftime("%Y-%m-%d") for t in want]


def test_month_ends_cross_february_in_leap_and_other_years():
    for last, want in (
        ("2024-01-31", ["2024-02-29", "2024-03-31", "2024-04-30"]),
        ("2023-01-31", ["2023-02-28", "2023-03-31", "2023-04-30"]),
    ):
        s = series_at(pd.date_range(end=last, periods=12, freq="ME"))
        assert Dt.date_strings(Dt.future_dates(s, 3), s.freq_alias) == want
    s = series_at(pd.date_range(end="2023-12-31", periods=8, freq="QE"))
    assert Dt.date_strings(Dt.future_dates(s, 2), s.freq_alias) == ["2024-03-31", "2024-06-30"]
    s = series_at(pd.date_range(end="2024-01-05", periods=20, freq="B"))  # a Friday
    assert Dt.date_strings(Dt.future_dates(s, 2), "B") == ["2024-01-08", "2024-01-09"]


def test_a_daylight_saving_change_in_the_strings():
    s = series_at(pd.date_range("2024-03-30 22:00", periods=3, freq="h", tz="Europe/Berlin"), "h")
    assert Dt.date_strings(Dt.future_dates(s, 3), s.freq_alias, s.tz) == [
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T03:00:00+02:00",  # 02:00 does not exist that night
        "2024-03-31T04:00:00+02:00",
    ]


def test_missing_rows_keep_the_frequency_the_bulk_follows():
    days = pd.date_range("2021-01-01", periods=90, freq="D")
    assert Dt.infer_freq(days.delete([5, 6, 40]).to_numpy()) == "D"
    bdays = pd.date_range("2021-01-04", periods=120, freq="B")
    assert Dt.infer_freq(bdays.delete([10, 55, 56]).to_numpy()) == "B"  # holidays: still B
    weeks = pd.date_range("2021-01-06", periods=50, freq="W-WED")
    assert Dt.infer_freq(weeks.delete([3, 20]).to_numpy()) == "W-WED"
    months = pd.date_range("2001-01-01", periods=60, freq="MS")
    assert Dt.infer_freq(months.delete([12]).to_numpy()) == "MS"
    hours = pd.date_range("2021-01-01", periods=200, freq="h")
    assert Dt.infer_freq(hours.delete([7, 100]).to_numpy()) == "h"
    rng = np.random.default_rng(0)
    irregular = np.datetime64("2021-01-01", "s") + np.cumsum(rng.integers(1, 9, 60)) * np.timedelta64(1, "D")
    assert Dt.infer_freq(irregular) is None
    s = series_at(pd.DatetimeIndex(irregular))
    with pytest.raises(UserError, match="irregular.*--freq ALIAS.*--freq none") as e:
        Dt.future_dates(s, 3)
    assert "\n" not in str(e.value)


def test_labels_and_seasons_come_from_the_alias():
    assert Dt.label("h") == ("hourly", 24)
    assert Dt.label("30min")[1] == 48 and "sub-hourly" in Dt.label("30min")[0]
    assert Dt.label("D") == ("daily", 7) and Dt.label("B") == ("business-daily", 5)
    assert Dt.label("W-WED") == ("weekly", 52) and Dt.label("MS") == Dt.label("ME") == ("monthly", 12)
    assert Dt.label("QS-JAN") == ("quarterly", 4) and Dt.label("YE-DEC") == ("yearly", 1)
    assert Dt.check_freq("M") == "ME" and Dt.check_freq("H") == "h" and Dt.check_freq("none") == "none"
    with pytest.raises(UserError, match="--freq 'fortnightly' is not a pandas frequency alias"):
        Dt.check_freq("fortnightly")


def test_hourly_history_round_trips_through_a_saved_model():
    s = series_at(pd.date_range("2024-03-30 12:00", periods=30, freq="h", tz="Europe/Berlin"))
    info = St.series_info(Pr.series_info(s, 10))  # written, then checked as a load checks it
    back = Pr._saved_series(info, "saved", "y", "ds")
    np.testing.assert_array_equal(back.dates, s.dates[-len(back) :])
    assert (back.freq_alias, back.tz, back.season) == ("h", "Europe/Berlin", 24)
    np.testing.assert_array_equal(Dt.future_dates(back, 4), Dt.future_dates(s, 4))
    old = {
        "column": "y",
        "date_column": "ds",
        "values": [1.0, 2.0, 3.0],
        "dates": ["2020-01-01", "2020-02-01", "2020-03-01"],
    }
    back = Pr._saved_series(St.series_info(old), "old", "y", "ds")  # saved before the alias: read off
    assert back.freq_alias == "MS" and Dt.date_strings(Dt.future_dates(back, 1), "MS") == ["2020-04-01"]
    with pytest.raises(ValueError, match="not a pandas frequency alias"):
        St.series_info({**old, "freq_alias": "nonsense"})
    with pytest.raises(ValueError, match="time zone"):
        St.series_info({**old, "tz": "Mars/Olympus"})


# ----------------------------------------------------------------------------- parsing


def write(path, dates, values=None):
    values = random_walk(len(dates)) if values is None else values
    path.write_text("Date,Close\n" + "".join(f"{d},{v:.6f}\n" for d, v in zip(dates, values)))
    return str(path)


def test_day_first_is_refused_as_ambiguous_and_read_right_when_told(tmp_path, capsys):
    months = pd.date_range("2015-01-01", periods=96, freq="MS")
    path = write(tmp_path / "dm.csv", months.strftime("%d/%m/%Y"))  # every day is 01: both read
    code, _, err = run_cli(["forecast", "--csv", path, *FAST, "--no-plot"], capsys)
    assert_one_line(code, err, "--date-format %d/%m/%Y")
    s = D.load_series(path, date_format="%d/%m/%Y")
    assert s.date_strings()[:3] == ["2015-01-01", "2015-02-01", "2015-03-01"]
    assert s.freq_alias == "MS" and not any("sorted" in n for n in s.notes)
    model = str(tmp_path / "model")  # the model keeps the format: predict reads the file again with it
    argv = ["forecast", "--csv", path, *FAST, "--no-plot", "--date-format", "%d/%m/%Y", "--save", model]
    assert run_cli(argv, capsys)[0] == 0
    code, out, err = run_cli(["forecast", "predict", "--model", model, "--csv", path, "--steps", "2"], capsys)
    assert code == 0, err
    ds = [ln.split()[0] for ln in out.splitlines() if ln.strip()[:4].isdigit()]
    assert ds == ["2023-01-01", "2023-02-01"]
    # a day above 12 anywhere settles it: the whole column day-first, none read month-first
    days = pd.date_range("2020-01-01", periods=40, freq="D")
    s = D.load_series(write(tmp_path / "d.csv", days.strftime("%d/%m/%Y")))
    np.testing.assert_array_equal(s.dates, days.to_numpy().astype("datetime64[s]"))
    assert not any("sorted" in n for n in s.notes)
    # rows in two formats: the rows that do not follow the column's format, named
    mixed = list(days.strftime("%Y-%m-%d"))
    mixed[7] = "08/01/2020"
    with pytest.raises(UserError, match=r"not dates.*line\(s\) 9 .*08/01/2020"):
        D.load_series(write(tmp_path / "mixed.csv", mixed))


def test_numbers_are_not_dates_unless_told(tmp_path, capsys):
    path = write(tmp_path / "xl.csv", [str(43831 + i) for i in range(60)])
    code, _, err = run_cli(["forecast", "--csv", path, *FAST, "--no-plot"], capsys)
    assert_one_line(code, err, "--date-format excel")
    s = D.load_series(path, date_format="excel")
    assert s.date_str(0) == "2020-01-01" and s.freq_alias == "D"
    unix = write(tmp_path / "unix.csv", [str(1_704_067_200 + 3600 * i) for i in range(30)])
    s = D.load_series(unix, date_format="unix")
    assert (s.freq_alias, s.tz, s.date_str(1)) == ("h", "UTC", "2024-01-01T01:00:00+00:00")
    years = D.load_series(write(tmp_path / "y.csv", [str(1990 + i) for i in range(30)]))
    assert years.freq == "yearly" and years.date_str(0) == "1990-01-01"  # 4-digit years are years


def test_mixed_offsets_are_distinct_instants_in_utc_with_a_note(tmp_path):
    rows = [f"2020-01-{d:02d}T00:00:00+0{1 + d % 2}:00" for d in range(1, 29)]
    path = write(tmp_path / "tz.csv", rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas warning reaches the user
        s = D.load_series(path)
    want = (
        pd.to_datetime(rows, utc=True, format="ISO8601").tz_localize(None).to_numpy().astype("datetime64[s]")
    )
    np.testing.assert_array_equal(s.dates, want)
    assert len(s) == 28 and s.tz == "UTC"
    assert any("converted to UTC" in n and "+01:00" in n and "+02:00" in n for n in s.notes)
    assert s.freq_alias == "D"  # one reading a day, whatever the offset
    assert rows[2] == "2020-01-03T00:00:00+02:00"  # 2020-01-02T22:00 UTC ...
    rows[3] = "2020-01-02T23:00:00+01:00"  # ... the same instant, written in another offset
    with pytest.raises(UserError, match="duplicate date"):
        D.load_series(write(tmp_path / "dup.csv", rows))


def test_one_offset_is_kept_and_the_future_carries_it(tmp_path):
    rows = [f"2024-01-01T{h:02d}:00:00+05:30" for h in range(24)]
    s = D.load_series(write(tmp_path / "ist.csv", rows))
    assert (s.tz, s.freq_alias, s.date_str(0)) == ("+05:30", "h", "2024-01-01T00:00:00+05:30")
    assert Dt.date_strings(Dt.future_dates(s, 1), s.freq_alias, s.tz) == ["2024-01-02T00:00:00+05:30"]


# ----------------------------------------------------------------------------- the command line


def monthly_csv(path, n=120, promo=False):
    t = np.arange(n)
    y = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 1, n)
    d = pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    df = pd.DataFrame({"Date": d, "Close": y})
    if promo:
        df["promo"] = (t % 4 == 0).astype(float)
    df.to_csv(path, index=False)
    return str(path)


def test_a_monthly_model_predicts_month_starts(tmp_path, capsys):
    csv = monthly_csv(tmp_path / "m.csv")
    model = str(tmp_path / "model")
    code, out, err = run_cli(["forecast", "--csv", csv, *FAST, "--no-plot", "--save", model], capsys)
    assert code == 0, err
    code, out, err = run_cli(["forecast", "predict", "--model", model, "--steps", "14"], capsys)
    assert code == 0, err
    want = pd.date_range("2010-01-01", periods=14, freq="MS").strftime("%Y-%m-%d")
    rows = [ln.split()[0] for ln in out.splitlines() if ln.strip()[:4].isdigit()]
    assert rows == list(want)
    code, out, err = run_cli(
        ["forecast", "predict", "--model", model, "--steps", "2", "--freq", "none"], capsys
    )
    assert code == 0 and [ln.split()[0] for ln in out.splitlines() if ln.strip()[:1].isdigit()] == ["1", "2"]
    code, _, err = run_cli(["forecast", "predict", "--model", model, "--freq", "fortnightly"], capsys)
    assert_one_line(code, err, "'fortnightly' is not a pandas frequency alias")


def test_a_bad_freq_is_refused_before_training(tmp_path, capsys):
    csv = monthly_csv(tmp_path / "m.csv")
    code, out, err = run_cli(["forecast", "--csv", csv, *FAST, "--no-plot", "--freq", "Q!"], capsys)
    assert_one_line(code, err, "--freq")
    assert "Training" not in out


def test_future_csv_rows_are_matched_on_month_starts(tmp_path, capsys):
    csv = monthly_csv(tmp_path / "m.csv", promo=True)
    model = str(tmp_path / "model")
    argv = ["forecast", "--csv", csv, *FAST, "--no-plot", "--future-covariates", "promo", "--save", model]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    fut = tmp_path / "future.csv"
    fut.write_text("Date,promo\n2010-01-01,1\n2010-02-01,0\n2010-03-01,0\n")
    code, out, err = run_cli(
        ["forecast", "predict", "--model", model, "--steps", "3", "--future-csv", str(fut)], capsys
    )
    assert code == 0, err
    assert "2010-03-01" in out
    code, _, err = run_cli(
        ["forecast", "predict", "--model", model, "--steps", "4", "--future-csv", str(fut)], capsys
    )
    assert_one_line(code, err, "no row for 2010-04-01")


def test_dates_past_pandas_range_continue(tmp_path):
    s = D.load_series(write(tmp_path / "far.csv", [f"2300-01-{d:02d}" for d in range(1, 29)]))
    assert s.freq_alias == "D"
    want = ["2300-01-29", "2300-01-30", "2300-01-31", "2300-02-01"]
    assert Dt.date_strings(Dt.future_dates(s, 4), "D") == want
