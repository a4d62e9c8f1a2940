"""The Forecaster: estimator rules, no leakage, clipping applied, flat parameters, save/load."""

import json
import os

import numpy as np
import pytest
from forecast_helpers import TINY, random_walk

from rnnlab.errors import NotFittedError, UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast.estimator import train as T
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.series import data as D
from rnnlab.optim import Adam


def tiny(**kw):
    cfg = dict(TINY, **kw)
    return Forecaster(**{k: cfg[k] for k in P.MODEL_KEYS})


def test_estimator_rules():
    f = tiny()
    assert f.get_params()["hidden_size"] == 6
    assert not any(k.endswith("_") for k in vars(f))  # the constructor only stores
    with pytest.raises(NotFittedError, match="not fitted"):
        f.predict(random_walk(50))
    assert f.fit(random_walk(120)) is f
    for attr in ("nets_", "scaler_", "histories_", "shrinks_", "n_train_windows_"):
        assert hasattr(f, attr)
    assert f.predict(random_walk(50), steps=3).shape == (3,)
    with pytest.raises(UserError, match="hidden_size"):
        tiny(hidden_size=0).fit(random_walk(120))
    with pytest.raises(UserError, match="target must be one of level, diff, logreturn"):
        tiny(target="price").fit(random_walk(120))
    g = tiny()
    assert g.set_params(hidden_size=9, num_layers=2) is g and g.get_params()["hidden_size"] == 9
    with pytest.raises(ValueError, match="invalid parameters"):
        g.set_params(hidden=9)


def test_same_seed_same_model_different_seed_different_model():
    y = random_walk(120)
    a, b, c = tiny().fit(y), tiny().fit(y), tiny(seed=1).fit(y)
    np.testing.assert_array_equal(a.predict(y, 3), b.predict(y, 3))
    assert not np.array_equal(a.predict(y, 3), c.predict(y, 3))


@pytest.mark.parametrize("target", D.TARGETS)
@pytest.mark.parametrize("strategy,horizon", [("recursive", 1), ("recursive", 3), ("direct", 3)])
def test_no_test_value_reaches_training_scaling_or_early_stopping(target, strategy, horizon):
    """Change every test value: the fitted scaler, weights, histories and shrink factors are
    bit-identical, and so is every forecast whose origin lies before the change."""
    y = random_walk(160, seed=2)
    cfg = dict(TINY, target=target, strategy=strategy, horizon=horizon, epochs=4, season=4)
    n_train = P.n_train_of(len(y), cfg)
    series = D.Series(y, np.arange(len(y)).astype("datetime64[D]"), "mem", "Close", "Date")
    y2 = y.copy()
    y2[n_train:] = y2[n_train:] * np.linspace(0.5, 3.0, len(y) - n_train)[::-1] + 7.0
    series2 = D.Series(y2, series.dates, "mem", "Close", "Date")
    r1 = P.evaluate_split(series, cfg, n_train)
    r2 = P.evaluate_split(series2, cfg, n_train)
    m1, m2 = r1["model"], r2["model"]
    assert (m1.scaler_.mean_, m1.scaler_.scale_) == (m2.scaler_.mean_, m2.scaler_.scale_)
    for n1, n2 in zip(m1.nets_, m2.nets_):
        for (k, p1, _), (_, p2, _) in zip(n1.named_parameters(), n2.named_parameters()):
            np.testing.assert_array_equal(p1, p2, err_msg=k)
    assert m1.histories_[0]["valid_loss"] == m2.histories_[0]["valid_loss"]
    assert m1.shrinks_ == m2.shrinks_
    # the first test target's forecast comes from an origin inside the training part
    np.testing.assert_array_equal(r1["preds"]["model"][:1], r2["preds"]["model"][:1])
    # and the forecasts do depend on the history they are given (the test is not vacuous)
    assert not np.array_equal(r1["preds"]["model"][horizon:], r2["preds"]["model"][horizon:])


def test_forecast_from_reads_nothing_after_the_origin():
    y = random_walk(150)
    f = tiny(horizon=2, strategy="direct").fit(y[:100])
    origins = np.arange(100, 140)
    before = f.forecast_from(y, origins, 4)
    for o in (100, 120, 139):
        y2 = y.copy()
        y2[o + 1 :] *= 3.0
        # (float32 GEMMs of another batch size round differently: a leak would be ~1e0)
        np.testing.assert_allclose(f.forecast_from(y2, [o], 4)[0], before[o - 100], rtol=1e-8)
    assert not np.allclose(f.forecast_from(y2, [100], 4)[0], f.forecast_from(y2, [139], 4)[0])


def test_validation_slice_is_the_end_of_the_training_part():
    y = random_walk(140)
    f = tiny(valid_size=0.25).fit(y)
    n_windows = len(y) - 1 - D.first_origin(5, "logreturn")
    assert f.n_valid_windows_ == round(0.25 * n_windows)
    assert f.n_train_windows_ + f.n_valid_windows_ == n_windows
    g = tiny(valid_size=0.25, horizon=3, strategy="direct").fit(y)
    # with 3 outputs, the 2 windows whose targets overlap the validation targets are dropped
    assert g.n_train_windows_ + g.n_valid_windows_ == len(y) - 3 - D.first_origin(5, "logreturn") - 2


def test_clipped_gradients_are_the_ones_applied(monkeypatch):
    seen = []
    step = Adam.step

    def spy(self, *a, **k):
        G = self.flat[1]  # the network's one gradient buffer
        seen.append(float(np.sqrt(np.vdot(G, G))))
        step(self, *a, **k)

    monkeypatch.setattr(Adam, "step", spy)
    f = tiny(clip=1e-3, epochs=2, lr=1e-3).fit(random_walk(120))
    assert seen and max(seen) <= 1e-3 * (1 + 1e-5)
    assert max(f.histories_[0]["grad_norm"]) > 1e-2  # the raw norms were far larger


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_adam_on_the_flat_buffer_equals_adam_per_tensor(compiled):
    """The forecaster's Adam runs on one flat buffer: the same bits as per tensor."""
    a = T.Net("lstm", 5, 2, 3, seed=0)
    b = T.Net("lstm", 5, 2, 3, seed=0)
    a.flatten_parameters()
    opt_a = Adam([a], 1e-2, weight_decay=0.01, compiled=compiled)
    opt_b = Adam([b], 1e-2, weight_decay=0.01, compiled=False)
    assert opt_a.flat is not None and opt_b.flat is None
    rng = np.random.default_rng(0)
    for _ in range(30):
        for (_, _, g1), (_, _, g2) in zip(a.named_parameters(), b.named_parameters()):
            g1[...] = g2[...] = rng.standard_normal(g1.shape).astype(np.float32)
        opt_a.step()
        opt_b.step()
    for (k, p1, _), (_, p2, _) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p1, p2, err_msg=k)


def test_flat_params_are_views_the_layers_use():
    net = T.Net("gru", 4, 1, 1, seed=0)
    P, G = net.flatten_parameters()
    assert P.size == G.size == net.num_parameters()
    x = np.random.default_rng(0).standard_normal((5, 3, 1)).astype(np.float32)
    y0 = net(x).copy()
    P *= 0.0
    assert np.all(net(x) == 0) and np.any(y0 != 0)  # zeroed through the flat buffer


def test_book_init_is_truncated_normal():
    net = T.Net("lstm", 64, 1, 1, init="book", seed=0)
    w = net.rnn.params["weight_hh_l0"]
    assert np.abs(w).max() <= 0.1 and 0.03 < w.std() < 0.05
    assert not net.rnn.params["bias_ih_l0"].any() and not net.head.params["bias"].any()


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(target="level", cell="lstm", ensemble=2),
        dict(target="diff", strategy="direct", horizon=3, cell="rnn"),
    ],
)
def test_save_load_round_trip(tmp_path, kw):
    y = random_walk(130)
    f = tiny(**kw).fit(y)
    f.save(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format"] == "rnnlab-forecaster" and cfg["scaler"]["mean"] == f.scaler_.mean_
    g = Forecaster.load(tmp_path / "m")
    assert g.get_params() == f.get_params()
    np.testing.assert_array_equal(g.predict(y, 5), f.predict(y, 5))
    np.testing.assert_array_equal(
        g.forecast_from(y, np.arange(20, 120), 2), f.forecast_from(y, np.arange(20, 120), 2)
    )
    f.save(tmp_path / "m")  # overwriting a model is fine


def test_load_rejects_what_is_not_a_model(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        Forecaster.load(tmp_path / "nope")
    with pytest.raises(UserError, match="not an rnnlab forecast model directory"):
        Forecaster.load(tmp_path)
    f = tiny().fit(random_walk(120))
    f.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not a valid rnnlab forecast model"):
        Forecaster.load(tmp_path / "m")
    f.save(tmp_path / "m2")
    (tmp_path / "m2" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a valid rnnlab forecast model"):
        Forecaster.load(tmp_path / "m2")


def test_save_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    f = tiny().fit(random_walk(120))
    with pytest.raises(UserError, match="holds other files"):
        f.save(tmp_path / "d")
    assert os.listdir(tmp_path / "d") == ["notes.txt"]
    assert [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab")] == []
