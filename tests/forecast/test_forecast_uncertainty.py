"""Probabilistic forecasts: the heads' sampling, the per-step losses, split-conformal
calibration, interval metrics, and what a fitted / saved forecaster does with them."""

import json

import numpy as np
import pytest
from forecast_helpers import TINY, random_walk

from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast.estimator import metrics as Mx
from rnnlab.forecast.estimator import uncertainty as U
from rnnlab.forecast.estimator.heads import Head, check_intervals, interval_levels
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.nn.distributions import softplus


def tiny(**kw):
    cfg = dict(TINY, **kw)
    return Forecaster(**{k: cfg[k] for k in P.MODEL_KEYS})


def test_interval_levels_and_checks():
    assert interval_levels((0.8, 0.95)) == [0.025, 0.1, 0.5, 0.9, 0.975]
    assert check_intervals([0.95, 0.8, 0.8]) == (0.8, 0.95)
    for bad in ([], [1.0], [0.0], ["x"], 3):
        with pytest.raises(ValueError):
            check_intervals(bad)


@pytest.mark.parametrize("likelihood", ["gaussian", "studentt"])
def test_parametric_samples_follow_their_parameters(likelihood):
    head = Head(likelihood)
    rng = np.random.default_rng(0)
    K = 2
    out = rng.normal(size=(3, K * head.P))
    draws = head.sample(out, K, 200_000, rng)  # (3, n, K)
    p = out.reshape(3, K, head.P)
    mu, sigma = p[..., 0], softplus(p[..., 1]) + 1e-6
    np.testing.assert_allclose(np.median(draws, axis=1), mu, atol=0.02)  # symmetric about mu
    if likelihood == "gaussian":
        np.testing.assert_allclose(draws.std(axis=1), sigma, rtol=0.02)
    else:  # the t's interquartile range: sigma * 2 * t_0.75(nu)
        from scipy import stats

        nu = 2 + softplus(p[..., 2])
        iqr = np.subtract(*np.quantile(draws, [0.75, 0.25], axis=1))
        np.testing.assert_allclose(iqr, 2 * sigma * stats.t.ppf(0.75, nu), rtol=0.03)
    np.testing.assert_array_equal(head.location(out, K), mu)


def test_quantile_head_sorts_interpolates_and_samples_its_quantiles():
    head = Head("quantile", (0.8,))
    assert head.levels.tolist() == [0.1, 0.25, 0.5, 0.75, 0.9]
    q = np.array([[-2.0, -1.0, 0.0, 1.5, 3.0]])
    crossed = q[:, [1, 0, 2, 4, 3]]  # a network's outputs may cross: they are sorted
    assert head.location(crossed, 1)[0, 0] == 0.0
    draws = head.sample(crossed, 1, 400_000, np.random.default_rng(1))[0, :, 0]
    assert draws.min() >= -2.0 and draws.max() <= 3.0
    inner = np.quantile(draws, [0.25, 0.5, 0.75])  # the piecewise-linear CDF's quantiles (renormalised)
    want = np.interp(0.1 + np.array([0.25, 0.5, 0.75]) * 0.8, head.levels, q[0])
    np.testing.assert_allclose(inner, want, atol=0.02)


@pytest.mark.parametrize("likelihood", ["gaussian", "studentt", "quantile"])
def test_per_step_loss_gradient_matches_finite_differences(likelihood):
    head = Head(likelihood)
    K, N = 3, 4
    rng = np.random.default_rng(2)
    out, Y = rng.normal(size=(N, K * head.P)), rng.normal(size=(N, K))
    loss = head.loss(K)
    loss(out, Y)
    grad = loss.backward()
    num = np.zeros_like(out)
    for idx in np.ndindex(out.shape):
        e = np.zeros_like(out)
        e[idx] = 1e-6
        num[idx] = (loss(out + e, Y) - loss(out - e, Y)) / 2e-6
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)
    # the same as the base loss over the N * K rows
    assert loss(out, Y) == pytest.approx(loss.base(out.reshape(N * K, head.P), Y.reshape(-1)))


def test_conformal_factor_is_the_finite_sample_rank():
    scores = np.arange(1.0, 11.0)  # 1 .. 10
    assert U.conformal_factor(scores, 0.8) == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert U.conformal_factor(scores, 0.95) == 10.0  # rank 11 passes n: the largest
    rng = np.random.default_rng(3)
    y, med = rng.normal(size=500), np.zeros(500)
    lo, hi = med - 0.5, med + 0.5  # too narrow
    c = U.conformal_factor(U.conformal_scores(y, lo, hi, med), 0.8)
    covered = np.mean((y >= med - c * 0.5) & (y <= med + c * 0.5))
    assert 0.8 <= covered <= 0.81 and c == pytest.approx(1.2816 / 0.5, rel=0.1)


def test_calibration_scales_about_the_median_and_keeps_quantiles_sorted():
    levels = np.array([0.1, 0.5, 0.9])
    q = np.array([[[-1.0, 0.0, 2.0]]])  # (1 origin, 1 step, 3 levels)
    med = np.array([[0.0]])
    same = U.apply_calibration(q, med, levels, {"intervals": [0.8], "factors": [[1.0]]})
    np.testing.assert_array_equal(same, q)
    wide = U.apply_calibration(q, med, levels, {"intervals": [0.8], "factors": [[2.5]]})
    np.testing.assert_array_equal(wide, [[[-2.5, 0.0, 5.0]]])
    F = U.factors_per_step({"factors": [[1.0, 2.0]]}, 4)  # steps past the calibrated reuse the last
    assert F[:, 0].tolist() == [1.0, 2.0, 2.0, 2.0]


def test_interval_metrics_by_hand():
    levels = np.array(sorted(set(U.DENSE.tolist()) | {0.025, 0.975}))
    y = np.array([0.0, 1.0, 5.0])
    point = np.repeat(np.array([[0.5], [0.5], [0.5]]), len(levels), axis=1)  # a point mass at 0.5
    m = Mx.interval_metrics(y, point, levels, (0.8, 0.95))
    assert m["coverage"] == {"0.8": 0.0, "0.95": 0.0} and m["interval_width"]["0.8"] == 0.0
    assert m["crps"] == pytest.approx(np.mean(np.abs(y - 0.5)))  # CRPS of a point is the MAE
    spread = np.tile(20 * (levels - 0.5), (3, 1))  # q_tau = 20 (tau - 0.5): the 80% interval is [-8, 8]
    m = Mx.interval_metrics(y, spread, levels, (0.8,))
    assert m["coverage"]["0.8"] == 1.0 and m["interval_width"]["0.8"] == pytest.approx(16.0)  # 0, 1, 5
    m = Mx.interval_metrics(np.array([0.0, 1.0, 9.0]), spread, levels, (0.8,))
    assert m["coverage"]["0.8"] == pytest.approx(2 / 3)  # 9 lies outside [-8, 8]


def test_fitted_forecaster_quantiles_calibration_and_determinism():
    y = random_walk(200, seed=4)
    f = tiny(epochs=3).fit(y[:150])
    cal = f.calibration_
    assert (
        cal["intervals"] == [0.8, 0.95]
        and len(cal["factors"][0]) == 1
        and all(c > 0 for c in cal["factors"][0])
    )
    origins = np.arange(150, 199)
    q = f.quantiles_from(y, origins, [0.1, 0.5, 0.9], 3)
    assert q.shape == (49, 3, 3) and np.all(np.diff(q, axis=2) >= 0)
    np.testing.assert_array_equal(q, f.quantiles_from(y, origins, [0.1, 0.5, 0.9], 3))  # same draws
    width = q[:, :, 2] - q[:, :, 0]
    assert np.all(width[:, 2].mean() > width[:, 0].mean())  # uncertainty grows with the steps
    raw = f.quantiles_from(y, origins, [0.1, 0.9], 1, calibrated=False)
    assert not np.array_equal(raw[:, 0], q[:, 0, [0, 2]])
    assert f.predict_quantiles(y, [0.1, 0.9], 2).shape == (2, 2)
    with pytest.raises(UserError, match="levels"):
        f.quantiles_from(y, origins, [0.0, 0.5])
    with pytest.raises(UserError, match="point forecasts only"):
        tiny(likelihood="none").fit(y[:150]).quantiles_from(y, origins, [0.5])
    assert tiny(calibration="none").fit(y[:150]).calibration_ is None


def test_intervals_cover_a_random_walk_with_known_noise():
    """Gaussian steps of a known sd: the 80% interval of the one-step forecast covers about 80%
    of 300 test points (the bounds are wide for a binomial of 300 and a small network)."""
    rng = np.random.default_rng(5)
    y = 100 + np.cumsum(rng.normal(0, 1.0, 900))
    f = tiny(target="diff", epochs=8, window=8, ensemble=2).fit(y[:600])
    j = np.arange(600, 900)
    q = f.quantiles_from(y, j - 1, [0.1, 0.9], 1)[:, 0]
    cover = np.mean((y[j] >= q[:, 0]) & (y[j] <= q[:, 1]))
    assert 0.72 <= cover <= 0.88, cover
    # the true width is 2 * 1.2816; measured 3.08 (+20%): dividing each window by its own scale
    # makes a homoscedastic walk look heteroscedastic to the network (Forecaster.features)
    assert 2 * 1.2816 <= np.mean(q[:, 1] - q[:, 0]) <= 1.25 * 2 * 1.2816


@pytest.mark.parametrize("likelihood", ["gaussian", "studentt", "quantile", "none"])
def test_save_load_keeps_the_likelihood_and_calibration(tmp_path, likelihood):
    y = random_walk(160, seed=6)
    f = tiny(likelihood=likelihood, horizon=2, strategy="direct").fit(y[:140])
    f.save(tmp_path / "m")
    g = Forecaster.load(tmp_path / "m")
    assert g.likelihood == likelihood and g.calibration_ == f.calibration_
    np.testing.assert_array_equal(g.predict(y, 2), f.predict(y, 2))
    if likelihood != "none":
        np.testing.assert_array_equal(g.predict_quantiles(y, [0.1, 0.9]), f.predict_quantiles(y, [0.1, 0.9]))


def test_a_model_saved_before_the_likelihoods_loads_as_a_point_forecaster(tmp_path):
    y = random_walk(160, seed=7)
    f = tiny(likelihood="none", scaling="global").fit(y[:140])
    f.save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for key in ("likelihood", "scaling", "intervals", "calibration", "n_samples"):
        del cfg["params"][key]
    del cfg["calibration"]
    cfg_path.write_text(json.dumps(cfg))
    g = Forecaster.load(tmp_path / "m")
    assert g.likelihood == "none" and g.scaling == "global"
    np.testing.assert_array_equal(g.predict(y, 3), f.predict(y, 3))


@pytest.mark.parametrize(
    "change,match",
    [
        ({"calibration": {"intervals": [0.8, 0.95], "factors": [[1.0], [-1.0]]}}, "positive"),
        ({"calibration": {"intervals": [0.5], "factors": [[1.0]]}}, "intervals"),
        ({"calibration": [1, 2]}, "JSON object"),
    ],
)
def test_load_refuses_bad_calibration(tmp_path, change, match):
    f = tiny().fit(random_walk(160, seed=8)[:140])
    f.save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), **change}))
    with pytest.raises(UserError, match=match):
        Forecaster.load(tmp_path / "m")


def test_binomial_test_matches_scipy():
    from scipy import stats

    for k, n, p in ((8, 10, 0.8), (3, 15, 0.8), (150, 152, 0.95), (120, 152, 0.8), (0, 5, 0.5)):
        assert U.binomial_p(k, n, p) == pytest.approx(stats.binomtest(k, n, p).pvalue, rel=1e-6, abs=1e-12)


def test_auto_calibration_applies_the_factors_only_when_the_raw_coverage_is_off():
    y = random_walk(300, seed=9)
    f = tiny(calibration="auto", epochs=3).fit(y[:250])
    cal = f.calibration_
    bonferroni = 0.05 / (len(cal["intervals"]) * len(cal["n"]))
    assert cal["applied"] == (min(min(r) for r in cal["p_values"]) < bonferroni) == cal["off"]
    origins = np.arange(250, 299)
    calibrated = f.quantiles_from(y, origins, [0.1, 0.9], 1)
    raw = f.quantiles_from(y, origins, [0.1, 0.9], 1, calibrated=False)
    assert np.array_equal(calibrated, raw) == (not cal["applied"])
    f.calibration_ = {**cal, "applied": True, "factors": [[3.0], [3.0]]}  # as if the test had failed
    wide = f.quantiles_from(y, origins, [0.1, 0.9], 1)
    assert np.all(wide[..., 1] - wide[..., 0] > raw[..., 1] - raw[..., 0])
