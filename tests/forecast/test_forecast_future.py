"""The future (issue 35 items 1, 3, 5): after the backtest `rnnlab forecast` refits on every point
and forecasts after the last date; `forecast predict --out` writes the same rows for every series;
the verdict is against the best baseline of the table."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli
from forecast_helpers import random_walk, write_csv

from rnnlab.forecast import load_model
from rnnlab.forecast.evaluation import future as F
from rnnlab.forecast.evaluation import summaries as S

FAST = ["--epochs", "4", "--hidden", "4", "--ensemble", "2", "--window", "5", "--test-size", "20"]
FAST += ["--quiet", "--no-plot", "--baselines", "simple", "--target", "diff", "--min-updates", "0"]


def run(capsys, *argv):
    return run_cli(["forecast", *argv], capsys)


@pytest.fixture
def monthly_csv(tmp_path):
    """A monthly series (month starts) ending 2023-12-01."""
    y = random_walk(120, seed=3)
    return write_csv(tmp_path / "m.csv", y, start="2014-01-01", freq="MS", date_fmt="%Y-%m-%d")


def test_the_future_is_forecast_refit_saved_and_written(tmp_path, capsys, monthly_csv):
    out_csv, report = tmp_path / "f.csv", tmp_path / "r.json"
    argv = ["--csv", monthly_csv, *FAST, "--future", "14", "--forecast-out", str(out_csv)]
    code, out, err = run(capsys, *argv, "--report", str(report), "--save", str(tmp_path / "m"))
    assert code == 0, err
    assert "The future: the next 14 step(s)" in out and "refitted on all 120 points" in out
    rows = pd.read_csv(out_csv)
    assert list(rows.columns) == ["unique_id", "ds", "mean", "lo-80", "hi-80", "lo-95", "hi-95"]
    assert len(rows) == 14
    # month starts after the last date, across the year end, no drift
    assert rows["ds"].tolist()[:3] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert rows["ds"].iloc[-1] == "2025-02-01"
    assert (rows["lo-95"] <= rows["lo-80"]).all() and (rows["lo-80"] <= rows["mean"]).all()
    assert (rows["mean"] <= rows["hi-80"]).all() and (rows["hi-80"] <= rows["hi-95"]).all()
    rep = json.loads(report.read_text())
    assert [r["ds"] for r in rep["forecast"]] == rows["ds"].tolist()
    np.testing.assert_allclose([r["mean"] for r in rep["forecast"]], rows["mean"], rtol=1e-9)
    sec = rep["seconds"]
    assert set(sec) == {"backtest", "refit", "future", "training", "intervals", "classics"}
    # training and intervals are parts of the backtest and the refit (with its future), not more
    assert 0 < sec["training"] and 0 < sec["intervals"]
    assert sec["training"] + sec["intervals"] <= sec["backtest"] + sec["refit"] + sec["future"] + 0.01
    # the saved model is the refitted one: it saw every point, and predict gives the same rows
    m = load_model(tmp_path / "m")
    backtest_windows = 120 - 20 - 5 - 1  # the training part's windows, the validation slice in them
    assert m.n_train_windows_ > backtest_windows and m.n_valid_windows_ == 0
    assert [len(h["train_loss"]) for h in m.histories_] == rep["refit"]["epochs"]
    code, out, err = run(
        capsys, "predict", "--model", str(tmp_path / "m"), "--steps", "14", "--out", str(tmp_path / "p.csv")
    )
    assert code == 0, err
    again = pd.read_csv(tmp_path / "p.csv")
    pd.testing.assert_frame_equal(again, rows)


def test_the_refit_trains_each_network_for_the_epochs_its_backtest_found(monthly_csv, tmp_path):
    from rnnlab.forecast import Forecaster

    y = pd.read_csv(monthly_csv)["Close"].to_numpy()[::-1]
    f = Forecaster(window=5, hidden_size=4, ensemble=3, epochs=30, patience=2, min_updates=0, seed=1)
    f.fit(y[:100])
    found = [F.epochs_found(h) for h in f.histories_]
    assert found == [h["best_epoch"] for h in f.histories_]
    g = F.refit(f, [y])
    assert [len(h["train_loss"]) for h in g.histories_] == found
    assert g.shrinks_ == f.shrinks_ and g.calibration_ == f.calibration_
    assert g.valid_size == 0.0 and g.n_valid_windows_ == 0


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_every_format_holds_the_same_rows(tmp_path, capsys, monthly_csv, suffix):
    a, b = tmp_path / "a.csv", tmp_path / f"b{suffix}"
    code, _, err = run(capsys, "--csv", monthly_csv, *FAST, "--forecast-out", str(a))
    assert code == 0, err
    code, _, err = run(capsys, "--csv", monthly_csv, *FAST, "--forecast-out", str(b))
    assert code == 0, err
    want = pd.read_csv(a)
    got = pd.read_json(b, dtype={"ds": str}) if suffix == ".json" else pd.read_parquet(b)
    if suffix == ".parquet":
        assert str(got["ds"].dtype).startswith("datetime64")
        got["ds"] = got["ds"].dt.strftime("%Y-%m-%d")
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--forecast-out", "{tmp}/f.xlsx"], "--forecast-out"),
        (["--forecast-out", "{tmp}/no/f.csv"], "does not exist"),
        (["--no-refit", "--future", "3"], "--no-refit"),
        (["--future", "0"], "--future"),
    ],
)
def test_bad_future_options_are_one_line_before_training(tmp_path, capsys, monthly_csv, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, "--csv", monthly_csv, *FAST, *argv)
    one_line(code, err, needle)
    assert "Test metrics" not in out


def test_no_refit_stops_after_the_backtest(tmp_path, capsys, monthly_csv):
    code, out, err = run(
        capsys, "--csv", monthly_csv, *FAST, "--no-refit", "--report", str(tmp_path / "r.json")
    )
    assert code == 0, err
    assert "The future" not in out
    assert "forecast" not in json.loads((tmp_path / "r.json").read_text())


def _panel_csv(path, n_series=3, n=70, covariates=False):
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n_series):
        dates = pd.date_range("2019-01-07", periods=n + 6, freq="W-MON")
        promo = rng.integers(0, 2, n + 6)
        y = 50 + 10 * k + np.cumsum(rng.normal(size=n + 6)) + 3 * promo
        for t in range(n + 6):
            rows.append(
                {
                    "store": f"s{k}",
                    "Date": dates[t].strftime("%Y-%m-%d"),
                    "Close": y[t] if t < n else np.nan,
                    "temp": 10 + np.sin(t / 5) + rng.normal(0, 0.1),
                    "promo": promo[t],
                }
            )
    df = pd.DataFrame(rows)
    hist = df[df["Close"].notna()]
    cols = ["store", "Date", "Close"] + (["temp", "promo"] if covariates else [])
    hist[cols].to_csv(path, index=False)
    future = df[df["Close"].isna()][["store", "Date", "promo"]]
    future.to_csv(str(path).replace(".csv", "_future.csv"), index=False)
    return str(path), str(path).replace(".csv", "_future.csv")


def test_a_panel_forecasts_every_series_and_predict_writes_them_all(tmp_path, capsys):
    csv, _ = _panel_csv(tmp_path / "p.csv")
    argv = ["--csv", csv, "--id-column", "store", *FAST, "--future", "3"]
    code, out, err = run(
        capsys, *argv, "--forecast-out", str(tmp_path / "f.csv"), "--save", str(tmp_path / "m")
    )
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "f.csv")
    assert rows["unique_id"].tolist() == ["s0"] * 3 + ["s1"] * 3 + ["s2"] * 3
    assert rows["ds"].tolist()[:3] == ["2020-05-11", "2020-05-18", "2020-05-25"]  # Mondays after the last
    code, out, err = run(
        capsys, "predict", "--model", str(tmp_path / "m"), "--steps", "3", "--out", str(tmp_path / "p.json")
    )
    assert code == 0, err
    got = pd.read_json(tmp_path / "p.json", dtype={"ds": str})
    pd.testing.assert_frame_equal(got[rows.columns], rows, check_dtype=False)
    code, out, err = run(capsys, "predict", "--model", str(tmp_path / "m"), "--steps", "2", "--id", "s2,s0")
    assert code == 0, err
    assert out.count("s2 ") == 2 and out.count("s0 ") == 2 and "s1 " not in out
    code, _, err = run(capsys, "predict", "--model", str(tmp_path / "m"), "--id", "s9")
    one_line(code, err, "s9")


def test_a_panel_with_past_and_future_covariates_predicts_from_csv_and_future_csv(tmp_path, capsys):
    csv, future_csv = _panel_csv(tmp_path / "p.csv", covariates=True)
    code, out, err = run(
        capsys, "--csv", csv, "--id-column", "store", *FAST, "--covariates", "temp", "--future-covariates",
        "promo", "--strategy", "direct", "--horizon", "2", "--no-refit", "--save", str(tmp_path / "m"),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(
        capsys, "predict", "--model", str(tmp_path / "m"), "--csv", csv, "--id-column", "store",
        "--future-csv", future_csv, "--steps", "2", "--out", str(tmp_path / "out.csv"),
    )  # fmt: skip
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "out.csv")
    assert len(rows) == 6 and rows["mean"].notna().all()
    argv = ["predict", "--model", str(tmp_path / "m"), "--csv", csv, "--id-column", "store", "--steps", "2"]
    code, _, err = run(capsys, *argv)
    one_line(code, err, "--future-csv")


def test_the_verdict_is_against_the_best_baseline_of_the_table():
    metrics = {"model": {"rmse": 0.87}, "persistence": {"rmse": 0.90}, "drift": {"rmse": 0.86}}
    assert S.best_baseline(metrics) == "drift"
    text = S.verdict(0.87 / 0.86, {"p_value": 0.4}, against="drift")
    assert "does NOT beat the best baseline, drift" in text
    assert "beats" not in S.verdict(0.99, {"p_value": 0.5}, against="AutoETS").split(",")[0]
    assert "beats the best baseline, AutoETS" in S.verdict(0.9, {"p_value": 0.01}, against="AutoETS")
    # a tie goes to persistence, which stays in the table
    assert (
        S.best_baseline({"model": {"rmse": 1}, "drift": {"rmse": 2}, "persistence": {"rmse": 2}})
        == "persistence"
    )


def test_a_trend_makes_drift_the_yardstick(tmp_path, capsys):
    t = np.arange(200)
    y = 100 + 2.0 * t + np.random.default_rng(0).normal(0, 0.5, 200)
    csv = write_csv(tmp_path / "trend.csv", y, date_fmt="%Y-%m-%d")
    code, out, err = run(capsys, "--csv", csv, *FAST, "--no-refit", "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["best_baseline"] == "drift"
    assert "drift" in rep["verdict"] and "Best baseline of the table: drift" in out
    m = rep["metrics"]
    assert rep["rmse_ratio_vs_best_baseline"] == pytest.approx(m["model"]["rmse"] / m["drift"]["rmse"])


def test_a_mixed_frequency_panel_says_whose_season_and_dates_each_series_by_its_own(tmp_path, capsys):
    rows = []
    for k, freq in enumerate(["D", "D", "MS"]):
        dates = pd.date_range("2015-01-01", periods=80, freq=freq)
        y = 100 + np.cumsum(np.random.default_rng(k).normal(size=80))
        rows += [{"id": f"s{k}", "Date": d.strftime("%Y-%m-%d"), "Close": v} for d, v in zip(dates, y)]
    path = tmp_path / "mixed.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    code, out, err = run(
        capsys, "--csv", str(path), "--id-column", "id", *FAST, "--forecast-out", str(tmp_path / "f.csv")
    )
    assert code == 0, err
    assert "different frequencies (2 daily, 1 monthly)" in out and "season 7 is used for all" in out
    f = pd.read_csv(tmp_path / "f.csv")
    assert f[f.unique_id == "s0"]["ds"].iloc[0] == "2015-03-22"  # the day after its last
    assert f[f.unique_id == "s2"]["ds"].iloc[0] == "2021-09-01"  # the month after its last
