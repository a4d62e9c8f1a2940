"""Targets deseason and deseason_mean: the seasonally adjusted log level against its last value
or its mean over the season before, the seasonal component estimated from the past only
(rnnlab/forecast/series/targets.py), checked against loops written from the definition, for
causality, for their "no change" forecasts and through the CLI."""

import json

import numpy as np
import pytest
from forecast_helpers import write_csv
from test_forecast_cli import FAST, run

from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.series import targets as T


def seasonal(n=150, m=12, seed=0):
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 0.05, n)
    return np.exp(4 + 0.004 * t + 0.3 * np.sin(2 * np.pi * t / m) + noise)


def component_by_loops(x, m, K=T.SEASONS_BACK):
    """c_t = mean of a_{t - j m} (j = 1 .. K, those defined), a = x - centred MA of a season."""
    n, h = len(x), m // 2
    w = [0.5] + [1.0] * (m - 1) + [0.5] if m % 2 == 0 else [1.0] * m
    a = [np.nan] * n
    for t in range(h, n - h):
        a[t] = x[t] - sum(wk * x[t - h + k] for k, wk in enumerate(w)) / m
    c = np.full(n, np.nan)
    for t in range(n):
        past = [a[t - j * m] for j in range(1, K + 1) if t - j * m >= 0 and np.isfinite(a[t - j * m])]
        if past:
            c[t] = sum(past) / len(past)
    return c


@pytest.mark.parametrize("m", [4, 7, 12])
def test_the_seasonal_component_matches_its_definition(m):
    x = np.log(seasonal(120, m, seed=m))
    want = component_by_loops(x, m)
    np.testing.assert_allclose(T.seasonal_component(x, m), want, rtol=1e-12, equal_nan=True)
    for t in (0, m, 3 * m + 1, 119):  # one position at a time: the path a forecast step takes
        np.testing.assert_allclose(T.seasonal_component(x, m, [t]), want[[t]], rtol=1e-12, equal_nan=True)
    ahead = component_by_loops(np.r_[x, 0.0], m)[120]  # the step after x reads x alone
    np.testing.assert_allclose(T.seasonal_component(x, m, [120]), [ahead], rtol=1e-12)


@pytest.mark.parametrize("target", T.DESEASON)
def test_deseason_reads_only_the_past_and_only_its_history(target):
    """z up to t is unchanged when the values after t change; the levels rebuilt from the true
    future z are the true levels, from the whole series or from its last history_length levels."""
    y, m = seasonal(), 12
    z = T.transform(y, target, m)
    lag = T.lag(target, m)
    assert np.isnan(z[:lag]).all() and np.isfinite(z[lag:]).all()
    t = 90
    other = y.copy()
    other[t + 1 :] *= np.linspace(0.5, 2.0, len(y) - t - 1)
    np.testing.assert_array_equal(T.transform(other, target, m)[: t + 1], z[: t + 1])
    L = T.history_length(target, m)
    tail = y[t + 1 - L : t + 1]
    for series, origin in ((y, t), (tail, L - 1)):
        hist = T.histories(series, [origin], target, m)
        levels = T.to_levels(series[[origin]], z[None, t + 1 : t + 25], target, hist, m)  # 2 seasons
        np.testing.assert_allclose(levels[0], y[t + 1 : t + 25], rtol=1e-12)


@pytest.mark.parametrize("target,span", [("deseason", 1), ("deseason_mean", 12)])
def test_no_change_is_the_adjusted_level_with_the_season_put_back(target, span):
    """A network shrunk to nothing forecasts exp(b_t + c_{t+1}), b_t the last adjusted level
    (M4's naive 2) or their mean over the last season, from a saved tail as from the whole
    series."""
    y, m = seasonal(), 12
    f = Forecaster(window=12, target=target, season=m, hidden_size=4, epochs=1, ensemble=1, min_updates=0)
    f.fit(y[:120])
    f.shrinks_ = [0.0]
    x = np.log(y)
    c = component_by_loops(x, m)
    origins = np.arange(100, 149)
    b = np.array([np.mean(x[t - span + 1 : t + 1] - c[t - span + 1 : t + 1]) for t in origins])
    want = np.exp(b + c[origins + 1])  # b_t + c_{t+1}
    np.testing.assert_allclose(f.forecast_from(y, origins, 1)[:, 0], want, rtol=1e-12)
    need = f.window - 1 + T.history_length(target, m)
    np.testing.assert_allclose(f.predict(y[-need:], 3), f.predict(y, 3), rtol=1e-12)


@pytest.mark.parametrize("target", T.DESEASON)
def test_deseason_is_refused_where_it_cannot_work(target):
    with pytest.raises(UserError, match="needs a season"):
        Forecaster(target=target, season=1).fit(seasonal())
    with pytest.raises(UserError, match="positive values"):
        Forecaster(target=target, season=12).fit(seasonal() - 100)


def test_auto_tries_deseason_on_positive_seasonal_series_only():
    cfg = dict(P.DEFAULTS, season=12, window=12)
    assert P.candidates(cfg, [seasonal()]) == ["diff", "deseason", "deseason_mean"]
    assert P.candidates(cfg, [seasonal(), seasonal() - 100]) == ["diff", "sdiff"]  # one not positive
    assert P.candidates(cfg, [seasonal(80)]) == ["diff", "sdiff"]  # too short for c's seasons
    assert P.candidates(cfg, [seasonal(40)]) == ["diff"]  # too short for sdiff's windows too
    assert P.candidates(dict(cfg, season=1), [seasonal()]) == ["diff"]
    assert P.candidates(dict(cfg, target="sdiff"), [seasonal()]) == ["sdiff"]


@pytest.mark.parametrize("target", T.DESEASON)
def test_the_command_line_saves_and_predicts_a_deseason_model(tmp_path, capsys, target):
    """--target deseason end to end; predict continues the saved tail exactly as the model
    continues the whole series."""
    y = seasonal(160)
    csv = write_csv(tmp_path / "m.csv", y, start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    fast = [a for a in FAST if a not in ("--window", "5")]
    model, rep = tmp_path / "model", tmp_path / "r.json"
    argv = [
        "--csv",
        csv,
        *fast,
        "--no-plot",
        "--target",
        "deseason",
        "--save",
        str(model),
        "--report",
        str(rep),
    ]
    code, out, err = run(capsys, *argv)
    assert code == 0 and "on deseason" in out, err
    assert json.loads(rep.read_text())["target"] == "deseason"
    code, out, err = run(capsys, "predict", "--model", str(model), "--steps", "3")
    assert code == 0, err
    want = Forecaster.load(model).predict(y, 3)
    for v in want:
        assert f"{v:,.2f}" in out
    negative = write_csv(tmp_path / "n.csv", y - 200, start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    code, out, err = run(capsys, "--csv", negative, *fast, "--no-plot", "--target", target)
    assert code == 2 and "positive values" in err and "Traceback" not in err


def test_auto_on_a_series_too_short_for_its_seasonal_candidates_runs_on_changes(tmp_path, capsys):
    """52 months: long enough for changes with a window of a season, too short for sdiff's
    windows; auto keeps diff instead of refusing the series for a target nobody asked for."""
    y = seasonal(52)
    csv = write_csv(tmp_path / "short.csv", y, start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    fast = [a for a in FAST if a not in ("--window", "5", "--test-size", "20")]
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot", "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["target"] == "diff"
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot", "--target", "sdiff")
    assert code == 2 and "too short" in err and "target sdiff" in err
