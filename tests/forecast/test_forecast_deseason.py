"""Target deseason: the change of the seasonally adjusted log level, its seasonal component
estimated from the past only (rnnlab/forecast/targets.py), checked against a loop written
from the definition, for causality, for its "no change" forecast and through the CLI."""

import json

import numpy as np
import pytest
from forecast_helpers import write_csv
from test_forecast_cli import FAST, run

from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast import pipeline as P
from rnnlab.forecast import targets as T


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
    np.testing.assert_allclose(
        T.seasonal_component(x, m), component_by_loops(x, m), rtol=1e-12, equal_nan=True
    )


def test_deseason_reads_only_the_past_and_only_its_history():
    """z up to t is unchanged when the values after t change; the levels rebuilt from the true
    future z are the true levels, from the whole series or from its last history_length levels."""
    y, m = seasonal(), 12
    z = T.transform(y, "deseason", m)
    lag = T.lag("deseason", m)
    assert np.isnan(z[:lag]).all() and np.isfinite(z[lag:]).all()
    t = 90
    other = y.copy()
    other[t + 1 :] *= np.linspace(0.5, 2.0, len(y) - t - 1)
    np.testing.assert_array_equal(T.transform(other, "deseason", m)[: t + 1], z[: t + 1])
    L = T.history_length("deseason", m)
    tail = y[t + 1 - L : t + 1]
    for series, origin in ((y, t), (tail, L - 1)):
        hist = T.histories(series, [origin], "deseason", m)
        levels = T.to_levels(series[[origin]], z[None, t + 1 : t + 25], "deseason", hist, m)  # 2 seasons
        np.testing.assert_allclose(levels[0], y[t + 1 : t + 25], rtol=1e-12)


def test_no_change_is_the_last_adjusted_level_with_the_season_put_back():
    """A network shrunk to nothing forecasts exp(d_t + c_{t+1}) (M4's naive 2), from a saved
    tail as from the whole series."""
    y, m = seasonal(), 12
    f = Forecaster(window=12, target="deseason", season=m, hidden_size=4, epochs=1, ensemble=1, min_updates=0)
    f.fit(y[:120])
    f.shrinks_ = [0.0]
    x = np.log(y)
    c = component_by_loops(x, m)
    origins = np.arange(100, 149)
    want = np.exp(x[origins] - c[origins] + c[origins + 1])  # d_t + c_{t+1}
    np.testing.assert_allclose(f.forecast_from(y, origins, 1)[:, 0], want, rtol=1e-12)
    need = f.window - 1 + T.history_length("deseason", m)
    np.testing.assert_allclose(f.predict(y[-need:], 3), f.predict(y, 3), rtol=1e-12)


def test_deseason_is_refused_where_it_cannot_work():
    with pytest.raises(UserError, match="needs a season"):
        Forecaster(target="deseason", season=1).fit(seasonal())
    with pytest.raises(UserError, match="positive values"):
        Forecaster(target="deseason", season=12).fit(seasonal() - 100)


def test_auto_tries_deseason_on_positive_seasonal_series_only():
    cfg = dict(P.DEFAULTS, season=12, window=12)
    assert P.candidates(cfg, [seasonal()]) == ["diff", "sdiff", "deseason"]
    assert P.candidates(cfg, [seasonal() - 100]) == ["diff", "sdiff"]  # not positive
    assert P.candidates(cfg, [seasonal(60)]) == ["diff", "sdiff"]  # too short for its seasons
    assert P.candidates(dict(cfg, season=1), [seasonal()]) == ["diff"]


def test_the_command_line_saves_and_predicts_a_deseason_model(tmp_path, capsys):
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
    code, out, err = run(capsys, "--csv", negative, *fast, "--no-plot", "--target", "deseason")
    assert code == 2 and "positive values" in err and "Traceback" not in err
