"""The statistical classics (rnnlab[stats]): fitted once, rolled by forward() without refit,
their own intervals scored, the model tested against the best; and the table without them."""

import json

import numpy as np
import pytest
from forecast_helpers import write_csv
from test_forecast_cli import FAST, run

from rnnlab.errors import UserError
from rnnlab.forecast.evaluation import classical as C


def seasonal(n=150, seed=0):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 200 + 0.3 * t + 15 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(0, 1, n))


def test_forecasts_are_forward_of_the_fit_without_refit():
    pytest.importorskip("statsforecast")
    from statsforecast.models import AutoETS

    y = seasonal()
    origins = np.arange(128, 148)  # targets 130 .. 149, two steps ahead
    out, notes = C.forecasts(y, 130, origins, 2, 12, (0.8, 0.95))
    assert set(out) == set(C.NAMES) and notes == []
    fitted = AutoETS(season_length=12).fit(y[:130])  # once, on the training part only
    want = [fitted.forward(y=y[: t + 1], h=2, level=[80, 95])["mean"] for t in origins]
    np.testing.assert_allclose(out["AutoETS"]["paths"], want)  # (M, 2): steps 1 and 2
    for name in ("AutoARIMA", "AutoTheta"):  # the per-origin forward, as before the one pass
        fit = C._model(name, 12).fit(y[:130])
        rows = [fit.forward(y=y[: t + 1], h=2, level=[80, 95]) for t in origins]
        np.testing.assert_allclose(out[name]["paths"], [r["mean"] for r in rows], rtol=1e-12)
        np.testing.assert_allclose(out[name]["bounds"][0.95][0], [r["lo-95"] for r in rows], rtol=1e-12)
    lo, hi = out["AutoETS"]["bounds"][0.8]
    lo95, hi95 = out["AutoETS"]["bounds"][0.95]
    assert lo.shape == (len(origins), 2)
    assert np.all(lo95 <= lo) and np.all(lo <= hi) and np.all(hi <= hi95)
    step2 = {b: (lo[:, 1], hi[:, 1]) for b, (lo, hi) in out["AutoETS"]["bounds"].items()}
    s = C.interval_scores(y[origins + 2], step2)
    assert set(s["coverage"]) == {"0.8", "0.95"} and 0 <= s["coverage"]["0.8"] <= s["coverage"]["0.95"]


def test_the_table_has_the_classics_and_the_test_against_the_best(tmp_path, capsys):
    pytest.importorskip("statsforecast")
    csv = write_csv(tmp_path / "m.csv", seasonal(), start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    fast = [a for a in FAST if a not in ("--baselines", "simple")]
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot", "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    for name in C.NAMES:
        assert name in out
    assert "Against the best statistical classic" in out
    r = json.loads((tmp_path / "r.json").read_text())
    cl = r["classical"]
    assert cl["included"] and cl["best"] in C.NAMES
    assert cl["rmse_ratio_vs_best"] == pytest.approx(
        r["metrics"]["model"]["rmse"] / r["metrics"][cl["best"]]["rmse"]
    )
    assert set(cl["dm_test_vs_best"]) >= {"statistic", "p_value"}
    assert set(r["metrics"]["AutoARIMA"]["coverage"]) == {"0.8", "0.95"}


def test_every_step_of_a_multi_step_forecast_has_the_classics(tmp_path, capsys):
    """by_step holds each classic's forecast of step h from the origins j - h; its last step is
    the H-step table."""
    pytest.importorskip("statsforecast")
    from statsforecast.models import AutoTheta

    y = seasonal()
    csv = write_csv(tmp_path / "m.csv", y, start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    fast = [a for a in FAST if a not in ("--baselines", "simple")]
    rep = tmp_path / "r.json"
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot", "--horizon", "3", "--report", str(rep))
    assert code == 0, err
    r = json.loads(rep.read_text())
    n_train = r["data"]["train"]["n"]
    fitted = AutoTheta(season_length=12).fit(y[:n_train])
    j = np.arange(n_train, len(y))
    for step in r["by_step"]:
        h = step["step"]
        assert set(C.NAMES) <= set(step)
        pred = [fitted.forward(y=y[: t + 1], h=h)["mean"][h - 1] for t in j - h]
        want = float(np.sqrt(np.mean((y[j] - np.array(pred)) ** 2)))
        assert step["AutoTheta"]["rmse"] == pytest.approx(want, rel=1e-6)
    assert r["by_step"][-1]["AutoETS"]["rmse"] == pytest.approx(r["metrics"]["AutoETS"]["rmse"])


def test_without_the_extra_the_table_says_how_to_get_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(C, "available", lambda: False)
    csv = write_csv(tmp_path / "m.csv", seasonal(), start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    fast = [a for a in FAST if a not in ("--baselines", "simple")]
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot")
    assert code == 0, err
    assert (
        "pip install 'rnnlab[stats]'" in out
        and "AutoETS " not in out.split("Test metrics")[1].split("\n\n")[0]
    )
    code, out, err = run(capsys, "--csv", csv, *fast, "--no-plot", "--baselines", "stats")
    assert code == 2 and "needs statsforecast" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(UserError, match="--baselines"):
        C.wanted("fancy")


def test_a_long_history_is_cut_to_whole_seasons_within_max_history(monkeypatch):
    monkeypatch.setattr(C, "MAX_HISTORY", 50)
    assert C._start(30, 12) == 0  # a short history: all of it
    for t in (60, 61, 100, 149):
        start = C._start(t, 12)
        assert start % 12 == 0 and t + 1 - start <= 50 and t + 1 - start > 50 - 12
    assert C._start(100, 1) == 51


def test_a_cut_history_forecasts_as_the_whole_one_does(monkeypatch):
    """The cost bound's price: AutoETS from the last 72 values (6 seasons) against the whole
    history, on a seasonal series: the same forecasts within a small part of the series' scale."""
    pytest.importorskip("statsforecast")
    y = seasonal(240)
    origins = np.arange(200, 238)
    whole, _ = C.forecasts(y, 200, origins, 2, 12, (0.8,))
    monkeypatch.setattr(C, "MAX_HISTORY", 72)
    cut, _ = C.forecasts(y, 200, origins, 2, 12, (0.8,))
    for name in whole:
        gap = np.abs(cut[name]["paths"] - whole[name]["paths"]).max()
        assert gap < 0.05 * np.ptp(y), (name, gap)


def _ets_series(kind, n=260, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    if kind == "multiplicative":
        return 100 * np.exp(0.001 * t + 0.2 * np.sin(2 * np.pi * t / 12) + 0.05 * rng.normal(size=n))
    if kind == "walk":
        return 50 + np.cumsum(rng.normal(0, 1, n))
    return seasonal(n, seed)


@pytest.mark.parametrize("kind", ["seasonal", "multiplicative", "walk"])
def test_ets_in_one_pass_is_the_per_origin_forward(kind, monkeypatch):
    """AutoETS's one run of its filter gives, at every origin, the means and intervals of
    ``forward(y[:t + 1])`` (its state after t, sigma from the residuals up to t): no test value
    reaches the parameters, an origin's intervals see nothing after it."""
    pytest.importorskip("statsforecast")
    from statsforecast.models import AutoETS

    monkeypatch.setattr(C, "NAMES", ("AutoETS",))
    y = _ets_series(kind)
    origins = np.arange(197, 259)
    out, notes = C.forecasts(y, 200, origins, 3, 12, (0.8, 0.95))
    fitted = AutoETS(season_length=12).fit(y[:200])
    rows = [fitted.forward(y=y[: t + 1], h=3, level=[80, 95]) for t in origins]
    np.testing.assert_allclose(out["AutoETS"]["paths"], [r["mean"] for r in rows], rtol=1e-10, atol=1e-8)
    for b, lv in ((0.8, 80), (0.95, 95)):
        lo, hi = out["AutoETS"]["bounds"][b]
        np.testing.assert_allclose(lo, [r[f"lo-{lv}"] for r in rows], rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(hi, [r[f"hi-{lv}"] for r in rows], rtol=1e-10, atol=1e-8)
    assert notes == []


def test_the_bound_thins_the_history_or_leaves_a_classic_out_with_a_note():
    """Checked before the classic starts: origins x history over the budget gives a shorter
    history (whole seasons, a note), below 2 seasons and MIN_HISTORY values the classic is left
    out (a note naming --classics-budget 0); AutoETS over ETS_MAX_SEASON is left out; 0 lifts it."""
    assert C.plan("AutoARIMA", 2_000, 10_000, 7) == (C.MAX_HISTORY, None)
    history, note = C.plan("AutoTheta", 20_000, 80_000, 7)
    assert history == 994 and history * 20_000 <= C.BUDGET and "read the last 994 values" in note
    history, note = C.plan("AutoARIMA", 20_000, 80_000, 1_000)  # 2 seasons do not fit
    assert history is None and note.startswith("AutoARIMA left out: 20,000 origins x 2,000")
    assert "--classics-budget 0" in note
    history, note = C.plan("AutoETS", 10, 3_000, 1_000)
    assert history is None and "season 1000 is over 400" in note and "--classics-budget 0" in note
    assert C.plan("AutoETS", 200_000, 10**6, 7) == (0, None)  # one pass: linear, never thinned
    assert C.plan("AutoETS", 10, 3_000, 1_000, budget=0) == (0, None)
    assert C.plan("AutoARIMA", 20_000, 80_000, 1_000, budget=0) == (C.MAX_HISTORY, None)
    assert C.fit_start(25_000, 7) % 7 == 0 and 25_000 - C.fit_start(25_000, 7) <= C.MAX_FIT
    assert C.fit_start(25_000, 7, budget=0) == 0 and C.fit_start(C.MAX_FIT, 7) == 0


def test_a_thinned_history_is_the_forward_of_that_history(monkeypatch):
    pytest.importorskip("statsforecast")
    monkeypatch.setattr(C, "NAMES", ("AutoTheta",))
    monkeypatch.setattr(C, "MIN_HISTORY", 24)  # a short series: thinned to 8 seasons, not 200 values
    y = seasonal(240)
    origins = np.arange(199, 239)
    out, notes = C.forecasts(y, 200, origins, 1, 12, (0.8,), budget=40 * 100)  # 100 values each
    assert notes == [
        "AutoTheta read the last 96 values of history per origin: 40 origins x 239 "
        "values of history are over the bound of 4,000"
    ]
    fitted = C._model("AutoTheta", 12).fit(y[:200])
    want = [fitted.forward(y=y[C._start(t, 12, 0, 96) : t + 1], h=1)["mean"] for t in origins]
    np.testing.assert_allclose(out["AutoTheta"]["paths"], want, rtol=1e-12)
    out, notes = C.forecasts(y, 200, origins, 1, 12, (0.8,), budget=40 * 20)
    assert out == {} and notes[0].startswith("AutoTheta left out: 40 origins")


def test_the_cli_notes_a_classic_the_bound_leaves_out_and_0_forces_it(tmp_path, capsys, monkeypatch):
    pytest.importorskip("statsforecast")
    monkeypatch.setattr(C, "NAMES", ("AutoETS",))
    monkeypatch.setattr(C, "ETS_MAX_SEASON", 6)  # as season 1000 is over 200, season 12 over 6
    csv = write_csv(tmp_path / "m.csv", seasonal(), start="2000-01-01", freq="MS", date_fmt="%Y-%m-%d")
    fast = [a for a in FAST if a not in ("--baselines", "simple")] + ["--no-plot", "--no-refit"]
    rep = tmp_path / "r.json"
    code, out, err = run(capsys, "--csv", csv, *fast, "--report", str(rep))
    assert code == 0, err
    assert "note: AutoETS left out: season 12 is over 6" in out and "--classics-budget 0" in out
    assert "AutoETS" not in json.loads(rep.read_text())["metrics"]
    code, out, err = run(capsys, "--csv", csv, *fast, "--report", str(rep), "--classics-budget", "0")
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert "AutoETS" in r["metrics"] and "left out" not in out and r["seconds"]["classics"] > 0
    code, out, err = run(capsys, "--csv", csv, *fast, "--classics-budget", "-1")
    assert code == 2 and "--classics-budget" in err
