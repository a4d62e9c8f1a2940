"""The batched sample paths (``uncertainty.roll_batch``): every origin, path and series of a
network in one forward per step gives the quantiles a plain loop over the origins gives, with
the same draws; a panel's series batched give what each series alone gives; the calibration's
origin cap and the progress hook."""

import numpy as np
import pytest
from forecast_helpers import TINY, random_walk

from rnnlab.forecast import Forecaster
from rnnlab.forecast.estimator import uncertainty as U
from rnnlab.forecast.estimator.train import predict_scaled
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.series import data as D
from rnnlab.nn.distributions import softplus


def tiny(**kw):
    cfg = dict(TINY, **kw)
    return Forecaster(**{k: cfg[k] for k in P.MODEL_KEYS})


def reference_quantiles(f, y, origins, steps, levels):
    """The module docstring's sampling written out origin by origin (Gaussian head, recursive):
    each network's generator draws one normal per path and step, all origins' rows of a step
    together (the batched order), and each origin's S paths are rolled on their own."""
    S = -(-f.n_samples // len(f.nets_))
    sc, W, M = f.scaler_, f.window, len(origins)
    z = D.transform(y, f.target, f.season)
    s = sc.transform(z)
    pooled = np.zeros((M, 0, steps))
    for k, (net, alpha) in enumerate(zip(f.nets_, f.shrinks_)):
        rng = np.random.default_rng([f.seed, k, 20_161])
        eps = [rng.standard_normal((M * S, 1, 1))[:, 0, 0] for _ in range(steps)]
        per_origin = []
        for m, o in enumerate(origins):
            win = np.tile(s[o - W + 1 : o + 1], (S, 1))  # the S paths of origin o
            base = np.full(S, z[o]) if f.target == "level" else np.zeros(S)
            path = []
            for h in range(steps):
                inputs, nu = f.features(win)
                out = predict_scaled(net, inputs)
                mu, sigma = out[:, 0], softplus(out[:, 1]) + 1e-6
                loc = sc.inverse_transform(nu[:, 0] * mu)
                draw = sc.inverse_transform(nu[:, 0] * (mu + sigma * eps[h][m * S : (m + 1) * S]))
                z_h = draw - (1.0 - alpha) * (loc - base)  # shifted with its location
                path.append(z_h)
                win = np.concatenate([win[:, 1:], sc.transform(z_h)[:, None]], axis=1)
            zp = np.stack(path, axis=1)  # (S, steps)
            hist = f._history(y, [o])
            hist = None if hist is None else np.repeat(hist, S, axis=0)
            per_origin.append(D.to_levels(np.full(S, y[o]), zp, f.target, hist, f.season))
        pooled = np.concatenate([pooled, np.stack(per_origin)], axis=1)
    q = np.moveaxis(np.quantile(pooled, levels, axis=1), 0, 2)
    return U.apply_calibration(q, np.median(pooled, axis=1), levels, f.calibration_)


@pytest.mark.parametrize("target", ["diff", "deseason"])
def test_batched_quantiles_match_a_loop_over_the_origins(target):
    rng = np.random.default_rng(3)
    t = np.arange(260)
    y = 50 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 6) + np.cumsum(rng.normal(0, 0.3, 260))
    f = tiny(target=target, season=6, window=6, ensemble=2, n_samples=30, epochs=2, horizon=2).fit(y[:200])
    origins, levels = np.arange(200, 215), np.array([0.05, 0.1, 0.5, 0.9, 0.95])
    got = f.quantiles_from(y, origins, levels, 4)
    want = reference_quantiles(f, y, origins, 4, levels)
    # the same draws; only the float32 forward's rounding may differ between batch sizes
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(y).max())


def panel(n=3):
    return {f"s{i}": random_walk(130 + 15 * i, seed=10 + i) * (1 + i) for i in range(n)}


def test_a_panel_batched_gives_each_series_what_it_gets_alone(monkeypatch):
    series = panel()
    f = tiny(target="diff", ensemble=2, n_samples=40, horizon=3).fit_many(series)
    items = [(y, np.arange(100, len(y) - 1), k, None, None) for k, y in series.items()]
    levels = [0.1, 0.5, 0.9]
    alone = [f.quantiles_from(y, o, levels, 5, series=k) for y, o, k, _, _ in items]
    together = f.quantiles_many(items, levels, 5)
    for a, b in zip(alone, together):
        # each series keeps its own draws; the float32 forward may round a row differently in
        # another batch (measured: 1e-9 relative in the levels)
        np.testing.assert_allclose(b, a, rtol=1e-6)
    monkeypatch.setattr(U, "CHUNK_ROWS", 300)  # many batches, a series split from the others
    assert len(U.chunks([(None, o) for _, o, *_ in items], 20)) > 1
    for a, b in zip(together, f.quantiles_many(items, levels, 5)):
        np.testing.assert_allclose(b, a, rtol=1e-6)  # the same draws, another batch's rounding
    points = f.forecast_many([(y, [len(y) - 1], k, None, None) for k, y in series.items()], 4)
    for (k, y), p in zip(series.items(), points):
        np.testing.assert_allclose(p, f.forecast_from(y, [len(y) - 1], 4, series=k), rtol=1e-9)


def test_the_calibration_scores_an_even_subset_past_its_cap(monkeypatch):
    origins = [np.arange(10, 110), np.arange(5, 15), np.arange(200, 230)]
    assert U.calibration_origins(origins, cap=1000) is origins  # under the cap: all of them
    kept = U.calibration_origins(origins, cap=28)
    assert [len(k) for k in kept] == [20, 2, 6]  # the same share of each series
    for o, k in zip(origins, kept):
        assert k[-1] == o[-1] and np.all(np.diff(k) > 0) and set(k) <= set(o)
    assert len(U.calibration_origins([np.arange(50), np.arange(3)], cap=5)[1]) == 1  # one at least
    series = panel()
    monkeypatch.setattr(U, "CAL_ORIGINS", 12)
    f = tiny(target="diff", ensemble=1, n_samples=20).fit_many(series)
    n_valid = sum(len(o) for o in f.valid_origins_)
    assert n_valid > 12 and f.calibration_["n"][0] == sum(
        len(k) for k in U.calibration_origins(f.valid_origins_, 12)
    )


def test_the_sampling_phases_report_progress():
    y = random_walk(160, seed=7)
    f = tiny(ensemble=3, n_samples=30).fit(y[:120])
    calls = []
    f.quantiles_many(
        [(y, np.arange(120, 150), None, None, None)], [0.1, 0.9], 2, progress=lambda *a: calls.append(a)
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]  # one call per network: (done, total)
    calls.clear()
    sets = list(zip([y[:120]], f.valid_origins_, f.scalers_, [None]))
    cal = U.fit_calibration(f, sets, 1, progress=lambda *a: calls.append(a))
    assert cal["factors"] == f.calibration_["factors"] and calls == [(1, 3), (2, 3), (3, 3)]
