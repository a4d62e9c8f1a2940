"""Covariates: a series driven by a future-known column is forecast from it, one driven by a
lagged past column too; calendar columns; every misuse is one clear error; save / load."""

import numpy as np
import pytest
from forecast_helpers import TINY

from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.series import covariates as Cov


def tiny(**kw):
    cfg = dict(TINY, **{"target": "diff", "epochs": 40, "min_updates": 0, **kw})
    return Forecaster(**{k: cfg[k] for k in P.MODEL_KEYS})


def driven(n=400, seed=0):
    """y's change at t is 3 x_t (+ a little noise), x known ahead; c_t = the next change / 2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n + 5)  # known 5 steps past the end
    d = 3 * x[:n] + 0.1 * rng.normal(size=n)
    y = 100 + np.cumsum(d)
    c = np.append(d[1:], 0.0) / 2  # observed at t, it announces the change at t + 1
    return y, x[:, None], c[:, None]


def one_step_ratio(f, y, **cov):
    j = np.arange(300, 400)
    p = f.forecast_from(y, j - 1, 1, **cov)[:, 0]
    return np.sqrt(np.mean((y[j] - p) ** 2)) / np.sqrt(np.mean((y[j] - y[j - 1]) ** 2))


def test_a_future_covariate_is_used():
    y, x, _ = driven()
    f = tiny().fit(y[:300], future=x[:300])
    assert f._input_size == 2 and f.n_future_ == 1
    with_x = one_step_ratio(f, y, future=x)
    without = one_step_ratio(tiny().fit(y[:300]), y)
    assert with_x < 0.5 and without > 0.9, (with_x, without)  # measured: 0.1 .. 0.3 against ~1
    assert f.predict(y, 5, future=x).shape == (5,)  # x runs 5 steps past y
    with pytest.raises(UserError, match="future covariate is missing"):
        f.predict(y, 6, future=x)
    with pytest.raises(UserError, match="needs 0 past and 1 future"):
        f.predict(y, 1)
    q = f.quantiles_from(y, np.arange(300, 310), [0.1, 0.9], 1, future=x)
    assert q.shape == (10, 1, 2) and np.all(q[..., 1] > q[..., 0])


def test_a_past_covariate_is_used_one_step_ahead():
    y, _, c = driven(seed=1)
    f = tiny().fit(y[:300], past=c[:300])
    assert one_step_ratio(f, y, past=c) < 0.5
    with pytest.raises(UserError, match="unknown after the origin"):
        f.predict(y, 2, past=c)
    with pytest.raises(UserError, match="strategy direct"):
        tiny(horizon=2).fit(y[:300], past=c[:300])
    g = tiny(horizon=2, strategy="direct").fit(y[:300], past=c[:300])
    assert g.predict(y, 2, past=c).shape == (2,)
    with pytest.raises(UserError, match="without covariates"):
        tiny().fit(y[:300]).predict(y, 1, past=c)


def test_calendar_columns():
    d = np.arange("2021-01-04", "2021-01-18", dtype="datetime64[D]")  # two weeks from a Monday
    cal = Cov.calendar(d, "daily")
    assert cal.shape == (14, 2) and Cov.calendar_names("daily") == ["sin day of week", "cos day of week"]
    np.testing.assert_allclose(cal[:7], cal[7:], atol=1e-12)  # a week's period
    np.testing.assert_allclose(cal[0], [0.0, 1.0], atol=1e-12)  # Monday: angle 0
    months = np.array(["2021-01-01", "2021-07-01", "2022-01-01"], dtype="datetime64[D]")
    m = Cov.calendar(months, "monthly")
    np.testing.assert_allclose(m[0], m[2], atol=1e-12)  # a year's period
    np.testing.assert_allclose(m[1], [0, -1], atol=1e-12)  # July: half way round
    with pytest.raises(UserError, match="no calendar cycle"):
        Cov.calendar(months, "yearly")


def test_save_load_keeps_the_covariates(tmp_path):
    y, x, _ = driven(seed=2)
    f = tiny(epochs=3).fit(y[:300], future=x[:300])
    f.save(tmp_path / "m")
    g = Forecaster.load(tmp_path / "m")
    assert (g.n_past_, g.n_future_) == (0, 1)
    np.testing.assert_array_equal(g.predict(y, 3, future=x), f.predict(y, 3, future=x))


def covariate_csvs(tmp_path, n=400, ahead=10):
    import pandas as pd

    rng = np.random.default_rng(3)
    promo = (rng.random(n + ahead) < 0.25).astype(float)
    d = 4 * promo[:n] + rng.normal(0, 0.5, n) - 1.0
    y = 500 + np.cumsum(d)
    dates = pd.date_range("2020-01-01", periods=n + ahead, freq="D").strftime("%Y-%m-%d")
    price = 10 + np.cumsum(rng.normal(0, 0.1, n))
    hist = tmp_path / "hist.csv"
    pd.DataFrame({"date": dates[:n], "sales": y, "promo": promo[:n], "price": price}).to_csv(
        hist, index=False
    )
    fut = tmp_path / "future.csv"
    pd.DataFrame({"date": dates[n:], "promo": promo[n:]}).to_csv(fut, index=False)
    return str(hist), str(fut)


def test_the_command_line_reads_covariates_and_predict_takes_the_future(tmp_path, capsys):
    import json

    from test_forecast_cli import run

    from rnnlab.cli import main

    hist, fut = covariate_csvs(tmp_path)
    base = ["--csv", hist, "--column", "sales", "--date-column", "date", "--quiet", "--no-plot"]
    base += ["--baselines", "simple", "--ensemble", "2", "--epochs", "30", "--test-size", "60"]
    rep = tmp_path / "r.json"
    model = tmp_path / "m"
    code, out, err = run(
        capsys,
        *base,
        "--future-covariates",
        "promo",
        "--calendar",
        "--covariates",
        "price",
        "--report",
        str(rep),
        "--save",
        str(model),
    )
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert r["config"]["future_covariates"] == ["promo"] and r["config"]["calendar"] is True
    plain = tmp_path / "plain.json"
    assert run(capsys, *base, "--report", str(plain))[0] == 0
    without = json.loads(plain.read_text())["rmse_ratio_vs_persistence"]
    # the promotions drive the series: measured 0.72 with them, 1.0 without
    assert r["rmse_ratio_vs_persistence"] < 0.85 * without, (r["rmse_ratio_vs_persistence"], without)
    code = main(["forecast", "predict", "--model", str(model), "--steps", "1", "--future-csv", fut])
    out, err = capsys.readouterr()
    assert code == 0, err
    for argv, msg in (
        (["--steps", "1"], "--future-csv"),
        (["--steps", "11", "--future-csv", fut], "has no row for"),
        (["--steps", "2", "--future-csv", fut], "unknown after the origin"),
    ):
        code = main(["forecast", "predict", "--model", str(model), *argv])
        _, err = capsys.readouterr()
        assert code == 2 and msg in err, err
    code, out, err = run(capsys, *base, "--covariates", "nope")
    assert code == 2 and "no column 'nope'" in err
    code, out, err = run(capsys, *base, "--calendar", "--season", "1")
    assert code == 0  # daily dates: a calendar, whatever the season
