"""Many series, one model (--id-column): loading long format, per-series scaling, the report's
series and summary, save / predict --id, and one series behaving as without --id-column."""

import json

import numpy as np
import pandas as pd
import pytest
from forecast_helpers import TINY
from test_forecast_cli import FAST, run

from rnnlab.cli import main
from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast.evaluation import pipeline as P
from rnnlab.forecast.evaluation.panel import load_panel, summary


def momentum(n, seed, scale):
    """A walk whose steps follow an AR(1) with coefficient 0.6: a network can beat persistence."""
    rng = np.random.default_rng(seed)
    d = np.zeros(n)
    for t in range(1, n):
        d[t] = 0.6 * d[t - 1] + rng.normal()
    return scale * (100 + np.cumsum(d))


def write_panel(path, series: dict, shuffle=True):
    rows = []
    for key, y in series.items():
        for d, v in zip(pd.date_range("2021-01-01", periods=len(y), freq="D"), y):
            rows.append((key, d.strftime("%Y-%m-%d"), f"{v:.8f}"))
    df = pd.DataFrame(rows, columns=["id", "date", "value"])
    if shuffle:  # long files need not be sorted
        df = df.sample(frac=1.0, random_state=0)
    df.to_csv(path, index=False)
    return str(path)


PANEL_ARGS = ["--id-column", "id", "--column", "value", "--date-column", "date"]


def tiny(**kw):
    cfg = dict(TINY, **kw)
    return Forecaster(**{k: cfg[k] for k in P.MODEL_KEYS})


def test_load_panel_groups_sorts_and_checks(tmp_path):
    path = write_panel(tmp_path / "p.csv", {"a": np.arange(1.0, 31.0), "b": np.arange(100.0, 140.0)})
    panel = load_panel(path, "id", "value", "date")
    assert sorted(panel) == ["a", "b"] and len(panel["a"]) == 30 and len(panel["b"]) == 40
    np.testing.assert_array_equal(panel["b"].values, np.arange(100.0, 140.0))  # sorted by date
    assert panel["a"].season == 7
    text = open(path).read().splitlines()
    bad = tmp_path / "dup.csv"
    bad.write_text("\n".join(text + [text[1]]) + "\n")  # a date twice in one series
    with pytest.raises(UserError, match="duplicate"):
        load_panel(bad, "id", "value", "date")
    empty = tmp_path / "empty.csv"
    empty.write_text("id,date,value\n,2021-01-01,1\na,2021-01-02,2\n")
    with pytest.raises(UserError, match="empty on line"):
        load_panel(empty, "id", "value", "date")
    with pytest.raises(UserError, match="no column 'series'"):
        load_panel(path, "series", "value", "date")


def test_each_series_is_scaled_by_its_own_training_part():
    """Multiply one series by 1000: every scaled window is the same, so is the model, and that
    series' forecasts are 1000 times the others'."""
    a, b = momentum(150, 1, 1.0), momentum(170, 2, 1.0)
    f = tiny(target="diff").fit_many({"a": a, "b": b})
    g = tiny(target="diff").fit_many({"a": a, "b": 1000 * b})
    assert g.scalers_[1].scale_ == pytest.approx(1000 * f.scalers_[1].scale_)
    np.testing.assert_allclose(
        g.predict(1000 * b, 3, series="b"), 1000 * f.predict(b, 3, series="b"), rtol=1e-6
    )
    np.testing.assert_allclose(g.predict(a, 3, series="a"), f.predict(a, 3, series="a"), rtol=1e-6)
    with pytest.raises(UserError, match="not among"):
        f.predict(a, 3, series="c")
    with pytest.raises(UserError, match="non-empty dict"):
        tiny().fit_many({})


def test_the_global_model_beats_persistence_on_the_median_series(tmp_path, capsys):
    series = {f"s{k}": momentum(260 + 20 * k, 10 + k, 10.0**k) for k in range(5)}  # scales 1 .. 1e4
    path = write_panel(tmp_path / "p.csv", series)
    fast = [a for a in FAST if a not in ("--epochs", "2")] + ["--epochs", "15"]
    rep = tmp_path / "r.json"
    code, out, err = run(capsys, "--csv", path, *PANEL_ARGS, *fast, "--no-plot", "--report", str(rep))
    assert code == 0, err
    assert "Test metrics per series" in out and "Summary over 5 series" in out
    r = json.loads(rep.read_text())
    assert set(r["series"]) == set(series) and set(r) >= {"config", "series", "summary", "history"}
    for s in r["series"].values():
        assert s["data"]["test"]["n"] == 20 and len(s["predictions"]) == 20  # --test-size per series
        assert "quantiles" in s["predictions"][0] and "coverage" in s["metrics"]["model"]
    ratios = [s["rmse_ratio_vs_persistence"] for s in r["series"].values()]
    sm = r["summary"]
    assert sm["median_rmse_ratio_vs_persistence"] == pytest.approx(np.median(ratios))
    assert sm["share_beating_persistence"] == pytest.approx(np.mean(np.array(ratios) < 1))
    assert sm["median_rmse_ratio_vs_persistence"] < 1.0, ratios  # the acceptance: the median series
    assert summary(r["series"]) == sm


def test_one_series_with_id_column_is_the_plain_run(tmp_path, capsys):
    y = momentum(160, 3, 1.0)
    path = write_panel(tmp_path / "one.csv", {"only": y}, shuffle=False)
    ra, rb = tmp_path / "a.json", tmp_path / "b.json"
    base = ["--csv", path, "--column", "value", "--date-column", "date", *FAST, "--no-plot"]
    assert run(capsys, *base, "--report", str(ra))[0] == 0
    assert run(capsys, *base, "--id-column", "id", "--report", str(rb))[0] == 0
    a, b = json.loads(ra.read_text()), json.loads(rb.read_text())
    assert a["metrics"] == b["metrics"] and a["predictions"] == b["predictions"]


def test_save_and_predict_a_series_by_id(tmp_path, capsys):
    series = {"x": momentum(150, 4, 1.0), "y": momentum(140, 5, 50.0)}
    path = write_panel(tmp_path / "p.csv", series)
    model = tmp_path / "m"
    argv = ["--csv", path, *PANEL_ARGS, *FAST, "--no-plot", "--target", "diff", "--save", str(model)]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    f = Forecaster.load(model)
    assert f.series_ids_ == ["x", "y"] and f.scalers_[1].scale_ > 10 * f.scalers_[0].scale_
    code = main(["forecast", "predict", "--model", str(model), "--id", "y", "--steps", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    want = f.predict(series["y"], 2, series="y")
    assert [float(r[1].replace(",", "")) for r in rows] == pytest.approx(want, abs=0.01)  # ds, mean, ...
    code = main(["forecast", "predict", "--model", str(model), "--steps", "2"])  # every series by default
    out, _ = capsys.readouterr()
    assert code == 0 and out.count("\n  x ") == 2 and out.count("\n  y ") == 2, out
    for argv, msg in (
        (["--id", "zz"], "has no series 'zz'"),
        (["--id", "x", "--csv", path], "--id-column"),
    ):
        code = main(["forecast", "predict", "--model", str(model), *argv])
        _, err = capsys.readouterr()
        assert code == 2 and msg in err, err
    code = main(["forecast", "predict", "--model", str(model), "--id", "x", "--csv", path, *PANEL_ARGS])
    assert code == 0


def test_backtest_refits_the_global_model_per_fold(tmp_path, capsys):
    """--backtest 2 with --id-column: each series' test part in two blocks, one global model
    refitted on every series up to its second block; that fold's forecasts are this model's."""
    series = {"a": momentum(150, 6, 1.0), "b": momentum(170, 7, 30.0)}
    path = write_panel(tmp_path / "p.csv", series)
    rep = tmp_path / "r.json"
    argv = ["--csv", path, *PANEL_ARGS, *FAST, "--no-plot", "--backtest", "2", "--target", "diff"]
    code, out, err = run(capsys, *argv, "--report", str(rep))
    assert code == 0 and "2 backtest folds" in out, err
    r = json.loads(rep.read_text())
    assert r["config"]["backtest"] == 2
    panel = load_panel(path, "id", "value", "date")
    second = P.fit_model(r["config"], panel={k: s.values[: len(s) - 10] for k, s in panel.items()})
    for key, s in panel.items():
        rs = r["series"][key]
        folds = rs["backtest"]["folds"]
        assert [f["train"]["n"] for f in folds] == [len(s) - 20, len(s) - 10]
        assert [f["test"]["n"] for f in folds] == [10, 10] and len(rs["predictions"]) == 20
        origins = np.arange(len(s) - 11, len(s) - 1)  # the second block's targets, one step ahead
        want = second.forecast_from(s.values, origins, 1, series=key)[:, 0]
        got = [p["predicted"] for p in rs["predictions"][10:]]
        np.testing.assert_allclose(got, want, rtol=1e-9)
    code, out, err = run(capsys, "--csv", path, *PANEL_ARGS, *FAST, "--no-plot", "--backtest", "21")
    assert code == 2 and "needs at least 21 test points; series" in err and "has 20" in err


def test_the_panel_plot_is_written(tmp_path, capsys):
    series = {f"s{k}": momentum(150, 20 + k, 1.0 + k) for k in range(4)}
    path = write_panel(tmp_path / "p.csv", series)
    plot = tmp_path / "grid.png"
    code, out, err = run(capsys, "--csv", path, *PANEL_ARGS, *FAST, "--plot", str(plot))
    assert code == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot:   {plot}" in out


def test_many_series_with_covariates_save_and_predict(tmp_path, capsys):
    """A future-known column in a long file: trained with it, saved with each series' history
    of it, predict reads that series' future rows from a long --future-csv."""
    rng = np.random.default_rng(30)
    rows, future = [], []
    for key, n in (("a", 160), ("b", 150)):
        promo = (rng.random(n + 3) < 0.3).astype(float)
        y = 100 + np.cumsum(3 * promo[:n] + rng.normal(0, 0.3, n))
        dates = pd.date_range("2021-01-01", periods=n + 3, freq="D").strftime("%Y-%m-%d")
        rows += [(key, d, f"{v:.6f}", p) for d, v, p in zip(dates[:n], y, promo[:n])]
        future += [(key, d, p) for d, p in zip(dates[n:], promo[n:])]
    hist, fut = tmp_path / "hist.csv", tmp_path / "fut.csv"
    pd.DataFrame(rows, columns=["id", "date", "value", "promo"]).to_csv(hist, index=False)
    pd.DataFrame(future, columns=["id", "date", "promo"]).to_csv(fut, index=False)
    model = tmp_path / "m"
    argv = ["--csv", str(hist), *PANEL_ARGS, *FAST, "--no-plot", "--future-covariates", "promo"]
    code, out, err = run(capsys, *argv, "--save", str(model))
    assert code == 0, err
    code = main(
        [
            "forecast",
            "predict",
            "--model",
            str(model),
            "--id",
            "b",
            "--steps",
            "3",
            "--future-csv",
            str(fut),
            "--id-column",
            "id",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 3
    code = main(["forecast", "predict", "--model", str(model), "--id", "b", "--future-csv", str(fut)])
    _, err = capsys.readouterr()
    assert code == 2 and "--id-column" in err


def test_short_series_pool_their_windows_in_a_panel(tmp_path, capsys):
    """A series of a panel needs one training window of its own; the pool of every series'
    windows is what must reach MIN_TRAIN_WINDOWS (short yearly series are a global model's use).
    Window 5, target diff, test 4, valid 15%: a 14-point series has 10 training points, 4
    windows (2 to fit, 2 to validate), far from 20 alone."""
    short = {f"s{k}": momentum(14, 20 + k, 1.0 + k) for k in range(12)}  # 12 x 2 = 24 fitting windows
    path = write_panel(tmp_path / "short.csv", short)
    args = [*PANEL_ARGS, "--epochs", "2", "--hidden", "4", "--ensemble", "1", "--window", "5"]
    args += ["--test-size", "4", "--target", "diff", "--quiet", "--baselines", "simple", "--no-plot"]
    rep = tmp_path / "r.json"
    code, out, err = run(capsys, "--csv", path, *args, "--report", str(rep))
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert set(r["series"]) == set(short)
    assert all(len(s["predictions"]) == 4 for s in r["series"].values())
    # alone, one of them is refused as before
    one = write_panel(tmp_path / "one.csv", {"s0": short["s0"]})
    code, out, err = run(capsys, "--csv", one, *args)
    assert code == 2 and "too short" in err and "20 training windows" in err, err
    # a pool of fewer than 20 windows: one line naming the pool
    few = write_panel(tmp_path / "few.csv", {k: short[k] for k in list(short)[:5]})  # 5 x 2 = 10
    code, out, err = run(capsys, "--csv", few, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "the 5 series give 10 training windows together" in err, err
    # a series without even one fitting window of its own is named
    tiny = write_panel(tmp_path / "tiny.csv", {**short, "t": momentum(11, 99, 1.0)})
    code, out, err = run(capsys, "--csv", tiny, *args)
    assert code == 2 and "series 't'" in err and "1 training window" in err, err


def test_fit_many_pools_short_series():
    ys = {f"s{k}": momentum(12, 40 + k, 1.0) for k in range(10)}  # 12 points: 4 fitting windows each
    f = tiny(target="diff", window=5).fit_many(ys)
    assert len(f.scalers_) == 10 and np.isfinite(f.predict(ys["s3"], 2, series="s3")).all()
    with pytest.raises(UserError, match="the 4 series give 16 training windows together"):
        tiny(target="diff", window=5).fit_many({k: ys[k] for k in list(ys)[:4]})
    with pytest.raises(UserError, match="too short"):
        tiny(target="diff", window=5).fit(ys["s0"])  # alone: 20 windows needed
