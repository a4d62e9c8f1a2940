"""rnnlab/forecast/estimator/export.py: a fitted Forecaster as one ONNX graph (raw levels in, levels
out) reproduces ``Forecaster.forecast_from`` in onnxruntime on held-out origins, for every
target, strategy and cell."""

import numpy as np
import pytest

from rnnlab.forecast.estimator.export import export_forecaster, histories
from rnnlab.forecast.estimator.model import Forecaster

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

Y = 100 * np.exp(np.cumsum(0.01 * np.random.default_rng(0).standard_normal(260)))


@pytest.mark.parametrize("target", ["diff", "logreturn", "level"])
@pytest.mark.parametrize(
    "strategy,horizon,cell,likelihood,scaling",
    [
        ("recursive", 1, "lstm", "gaussian", "window"),
        ("direct", 3, "gru", "quantile", "window"),
        ("recursive", 2, "rnn", "studentt", "global"),
        ("recursive", 2, "lstm", "none", "window"),
    ],
)
def test_onnx_forecast_equals_rnnlab(target, strategy, horizon, cell, likelihood, scaling, tmp_path):
    """The point forecast (the heads' location, the window scale) of every likelihood."""
    f = Forecaster(
        likelihood=likelihood,
        scaling=scaling,
        window=5,
        horizon=horizon,
        strategy=strategy,
        target=target,
        cell=cell,
        hidden_size=4,
        num_layers=2 if cell == "gru" else 1,
        epochs=2,
        ensemble=2,
        seed=1,
    ).fit(Y[:200])
    origins = np.arange(200, 259)  # the test part: never seen in fit
    for steps in (1, 4):
        path = export_forecaster(f, tmp_path / f"f{steps}.onnx", steps=steps)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = session.run(None, {"history": histories(f, Y, origins)})[0]
        want = f.forecast_from(Y, origins, steps)
        assert got.shape == want.shape == (len(origins), steps)
        np.testing.assert_allclose(got, want, rtol=1e-6)  # measured: <= 5e-10


SEASONAL_Y = Y * np.exp(0.2 * np.sin(2 * np.pi * np.arange(len(Y)) / 12))


@pytest.mark.parametrize("target", ["sdiff", "deseason", "deseason_mean"])
@pytest.mark.parametrize("strategy,horizon", [("recursive", 1), ("direct", 3)])
def test_the_seasonal_targets_in_the_graph_equal_rnnlab(target, strategy, horizon, tmp_path):
    """Past a season ahead too (steps 14): the levels built on the forecasts before them."""
    f = Forecaster(
        window=12,
        horizon=horizon,
        strategy=strategy,
        target=target,
        season=12,
        hidden_size=4,
        epochs=2,
        ensemble=2,
        min_updates=0,
        seed=2,
    ).fit(SEASONAL_Y[:200])
    origins = np.arange(200, 259)
    for steps in (1, 14):
        path = export_forecaster(f, tmp_path / f"s{steps}.onnx", steps=steps)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = session.run(None, {"history": histories(f, SEASONAL_Y, origins)})[0]
        np.testing.assert_allclose(got, f.forecast_from(SEASONAL_Y, origins, steps), rtol=1e-6)
    with pytest.raises(ValueError, match="origins must lie"):
        histories(f, SEASONAL_Y, [5])


def test_metadata_and_bounds(tmp_path):
    f = Forecaster(window=4, hidden_size=3, epochs=1, ensemble=1).fit(Y[:80])
    model = onnx.load(export_forecaster(f, tmp_path / "f.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert props == {"window": "4", "lag": "1", "steps": "1", "target": "diff", "ensemble": "1"}
    with pytest.raises(ValueError, match="steps"):
        export_forecaster(f, tmp_path / "g.onnx", steps=0)
    assert not (tmp_path / "g.onnx").exists()
    with pytest.raises(Exception, match="not fitted"):
        export_forecaster(Forecaster(), tmp_path / "h.onnx")


def test_what_the_graph_cannot_hold_is_refused(tmp_path):
    from rnnlab.errors import UserError

    x = np.arange(100.0)[:, None]
    cov = Forecaster(window=4, hidden_size=3, epochs=1, ensemble=1).fit(Y[:80], future=x[:80])
    with pytest.raises(UserError, match="covariates"):
        export_forecaster(cov, tmp_path / "c.onnx")


def test_a_panel_model_is_refused_not_exported_with_one_series_scaler(tmp_path):
    """Issue 34: the graph held the first series' scaler, and the others' forecasts were off by
    0.7-0.9% (a trend reversed); a model of many series is refused in one line."""
    from rnnlab.errors import UserError

    f = Forecaster(window=4, hidden_size=3, epochs=1, ensemble=1, target="diff", season=1)
    f.fit_many({"a": Y[:120], "b": 3 * Y[120:240]})
    with pytest.raises(UserError, match="2 series"):
        export_forecaster(f, tmp_path / "p.onnx")
    assert not (tmp_path / "p.onnx").exists()
