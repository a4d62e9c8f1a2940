"""rnnlab/export/forecaster.py: a fitted Forecaster as one ONNX graph (raw levels in, levels
out) reproduces ``Forecaster.forecast_from`` in onnxruntime on held-out origins, for every
target, strategy and cell."""

import numpy as np
import pytest

from rnnlab.export.forecaster import export_forecaster, histories
from rnnlab.forecast.model import Forecaster

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

    sdiff = Forecaster(window=4, hidden_size=3, epochs=1, ensemble=1, target="sdiff", season=4).fit(Y[:80])
    with pytest.raises(UserError, match="not sdiff"):
        export_forecaster(sdiff, tmp_path / "s.onnx")
    for target in ("deseason", "deseason_mean"):
        seasonal = Forecaster(window=4, hidden_size=3, epochs=1, ensemble=1, target=target, season=4)
        with pytest.raises(UserError, match=f"not {target}"):
            export_forecaster(seasonal.fit(Y[:80] - Y.min() + 1), tmp_path / "d.onnx")
    x = np.arange(100.0)[:, None]
    cov = Forecaster(window=4, hidden_size=3, epochs=1, ensemble=1).fit(Y[:80], future=x[:80])
    with pytest.raises(UserError, match="covariates"):
        export_forecaster(cov, tmp_path / "c.onnx")
