"""``bounds``: forecasts, sample paths and quantiles kept at or above 0, or within the range the
history up to each origin has shown (``uncertainty.bound``)."""

import numpy as np
import pytest
from forecast_helpers import TINY

from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast.estimator import uncertainty as U

CFG = {k: v for k, v in TINY.items() if k in Forecaster().get_params()}


def test_range_reads_only_the_history_up_to_each_origin():
    y = np.array([5.0, 3.0, 4.0, 9.0, 1.0])
    levels = np.array([[0.0, 10.0], [0.0, 10.0], [2.0, 8.0], [2.0, 8.0]])  # 2 origins x 2 paths
    got = U.bound(levels, "range", [y], [np.array([2, 3])], S=2)
    # origin 2 has seen 5, 3, 4 -> [3, 5]; origin 3 has seen up to 9 -> [3, 9]; the 1 after it is unseen
    np.testing.assert_array_equal(got, [[3.0, 5.0], [3.0, 5.0], [3.0, 8.0], [3.0, 8.0]])


def test_positive_clips_at_zero_and_none_leaves_the_levels():
    levels = np.array([[-2.0, 0.5], [3.0, -0.1]])
    np.testing.assert_array_equal(U.bound(levels, "positive", [], []), [[0.0, 0.5], [3.0, 0.0]])
    assert U.bound(levels, "none", [], []) is levels


@pytest.fixture(scope="module")
def trend():
    return 10.0 + 0.5 * np.arange(120) + np.random.default_rng(0).normal(0, 0.2, 120)


def _fit(y, bounds):
    return Forecaster(**{**CFG, "target": "diff", "horizon": 1, "bounds": bounds}).fit(y)


def test_a_trend_forecast_past_its_maximum_is_held_at_it(trend):
    free, held = _fit(trend, "none"), _fit(trend, "range")
    origins = np.arange(60, 120)
    steps = 12
    up = free.forecast_from(trend, origins, steps)
    assert np.any(up > np.maximum.accumulate(trend)[origins][:, None])  # what the bound must catch
    got = held.forecast_from(trend, origins, steps)
    top = np.maximum.accumulate(trend)[origins][:, None]
    assert np.all(got <= top + 1e-12)
    q = held.quantiles_from(trend, origins, [0.05, 0.5, 0.95], steps)
    assert np.all(q <= top[:, :, None] + 1e-12) and np.all(q >= trend.min() - 1e-12)
    paths = U.sample_paths(held, trend, origins[-2:], steps, held.scaler_)
    assert np.all(paths <= trend.max() + 1e-12)


def test_bounds_are_saved_and_checked(trend, tmp_path):
    f = _fit(trend, "positive")
    f.save(tmp_path / "m")
    assert Forecaster.load(tmp_path / "m").bounds == "positive"
    with pytest.raises(UserError, match="bounds must be one of none, positive, range"):
        Forecaster(**{**CFG, "bounds": "clip"}).fit(trend)


def test_export_refuses_a_bounded_model(trend, tmp_path):
    pytest.importorskip("onnx")
    from rnnlab.forecast.estimator.export import export_forecaster

    with pytest.raises(UserError, match="bounds='range' is not supported"):
        export_forecaster(_fit(trend, "range"), tmp_path / "m.onnx")


def test_the_cli_takes_bounds_into_the_report_and_refuses_others(tmp_path, capsys):
    import json

    from forecast_helpers import random_walk, write_csv

    from rnnlab.cli import main

    y = random_walk()
    csv = write_csv(tmp_path / "s.csv", y)
    fast = ["--epochs", "2", "--hidden", "6", "--ensemble", "1", "--window", "5", "--test-size", "20"]
    rep = tmp_path / "r.json"
    argv = ["forecast", "--csv", csv, *fast, "--quiet", "--baselines", "simple", "--no-plot"]
    argv += ["--future", "30"]
    assert main([*argv, "--bounds", "range", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["config"]["bounds"] == "range"
    assert max(row["hi-95"] for row in r["forecast"]) <= y.max() + 1e-6  # the refit saw all of y
    with pytest.raises(SystemExit) as e:
        main([*argv, "--bounds", "clip"])
    assert e.value.code == 2 and "invalid choice: 'clip'" in capsys.readouterr().err
