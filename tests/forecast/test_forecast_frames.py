"""The Python API at the CLI's level (issue 35 item 4, docs/FORECAST_API.md): DataFrames in,
dated forecast frames out, the CLI's defaults."""

import numpy as np
import pandas as pd
import pytest

from rnnlab.errors import NotFittedError, UserError
from rnnlab.forecast import Forecaster, load_model
from rnnlab.forecast.evaluation import pipeline as P

QUICK = dict(ensemble=2, epochs=4, min_updates=0, hidden_size=4)


def monthly(n=120, seed=0, end_of_month=True):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n))) * (1 + 0.1 * np.sin(2 * np.pi * t / 12))
    return pd.Series(
        y,
        index=pd.date_range(
            "2010-01-31" if end_of_month else "2010-01-01", periods=n, freq="ME" if end_of_month else "MS"
        ),
    )


def test_the_defaults_are_the_command_lines():
    f = Forecaster()
    assert f.target == "auto" and f.season is None
    cli = {k: v for k, v in P.DEFAULTS.items() if k in f.get_params()}
    # the CLI's season comes from the dates (apply_season), as the estimator's None does at fit
    assert cli == {**f.get_params(), "season": 1}


def test_a_series_with_dates_resolves_season_window_and_target_like_the_cli():
    s = monthly()
    f = Forecaster(**QUICK).fit(s)
    inner = f.model_
    assert inner.season == 12 and inner.window == 12  # from the month-end dates; a window of a season
    assert set(f.target_scores_) == {"diff", "deseason", "deseason_mean"}  # the CLI's candidates
    out = f.predict(14, level=[80, 95])
    assert list(out.columns) == ["unique_id", "ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95"]
    # month ends after 2019-12-31, February of the leap year 2020 included
    want = pd.date_range("2020-01-31", periods=14, freq="ME")
    assert list(out["ds"]) == list(want)
    assert (out["lo-95"] < out["lo-80"]).all() and (out["hi-80"] < out["hi-95"]).all()
    # the same numbers as the array API from the end of the history
    np.testing.assert_allclose(out["mean"], f.predict(s.to_numpy(), 14), rtol=1e-12)


def test_a_long_frame_is_one_global_model_and_new_df_continues_other_histories():
    a, b = monthly(seed=1, end_of_month=False), monthly(seed=2, end_of_month=False)
    df = pd.concat(
        [pd.DataFrame({"unique_id": k, "ds": s.index, "y": s.to_numpy()}) for k, s in (("a", a), ("b", b))]
    ).sample(frac=1, random_state=0)  # row order does not matter
    f = Forecaster(**QUICK, target="diff").fit(df)
    assert f.ids_ == ["a", "b"] or f.ids_ == ["b", "a"]
    out = f.predict(3)
    assert sorted(set(out["unique_id"])) == ["a", "b"]
    assert list(out[out.unique_id == "a"]["ds"]) == list(pd.date_range("2020-01-01", periods=3, freq="MS"))
    short = df[df["ds"] < "2019-01-01"]
    again = f.predict(2, new_df=short)
    assert list(again[again.unique_id == "b"]["ds"]) == [
        pd.Timestamp("2019-01-01"),
        pd.Timestamp("2019-02-01"),
    ]
    paths = f.sample_paths(3, 40)
    assert paths.shape == (2, 40, 3) and np.isfinite(paths).all()


def test_arrays_still_work_and_fixed_parameters_train_exactly_that():
    y = monthly().to_numpy()
    f = Forecaster(**QUICK, target="diff", season=1, window=5).fit(y)
    assert "model_" not in vars(f) and f.target == "diff" and f.window == 5
    out = f.predict(3)
    assert out["ds"].tolist() == [1, 2, 3]  # no dates: the steps ahead
    np.testing.assert_allclose(out["mean"], f.predict(y, 3))


def test_a_resolved_model_saves_and_loads_as_what_it_resolved_to(tmp_path):
    f = Forecaster(**QUICK).fit(monthly())
    f.save(tmp_path / "m")
    g = load_model(tmp_path / "m")
    y = monthly().to_numpy()
    np.testing.assert_allclose(g.predict(y, 5), f.predict(y, 5), rtol=1e-12)


def test_bad_frames_and_calls_are_one_line():
    with pytest.raises(UserError, match="lacks column"):
        Forecaster(**QUICK).fit(pd.DataFrame({"ds": [1], "value": [2.0]}))
    df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=50), "y": 1.0})
    dup = pd.concat([df, df.iloc[:1]])
    with pytest.raises(UserError, match="duplicate ds"):
        Forecaster(**QUICK).fit(dup)
    with pytest.raises(NotFittedError):
        Forecaster().predict(3)
    f = Forecaster(**QUICK, target="diff").fit(monthly())
    with pytest.raises(UserError, match="level"):
        f.predict(3, level=[150])
