"""`rnnlab forecast` end to end through ``rnnlab.cli.main``: outputs, predict, every bad input."""

import json
import os

import numpy as np
import pytest
from forecast_helpers import random_walk, write_csv

from rnnlab.cli import main
from rnnlab.forecast.series import data as D

FAST = [
    *("--epochs", "2", "--hidden", "6", "--ensemble", "1", "--window", "5", "--test-size", "20"),
    *("--quiet", "--baselines", "simple"),  # the classics have their own tests
]
REPORT_KEYS = {"data", "config", "metrics", "dm_test_vs_persistence", "history", "predictions"}


@pytest.fixture
def csv_path(tmp_path):
    return write_csv(tmp_path / "series.csv", random_walk())


def run(capsys, *argv):
    try:
        code = main(["forecast", *argv])
    except SystemExit as e:  # a bad option value, refused by the parser
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_writes_report_plot_and_model(tmp_path, capsys, csv_path):
    rep, plot, model = tmp_path / "r.json", tmp_path / "p.png", tmp_path / "model"
    code, out, err = run(
        capsys, "--csv", csv_path, *FAST, "--report", str(rep), "--plot", str(plot), "--save", str(model)
    )
    assert code == 0, err
    for text in (
        "Test metrics",
        "persistence",
        "drift",
        "moving average",
        "Diebold-Mariano",
        "RMSE ratio",
        "train 2020-01-01 ..",
        f"report: {rep}",
        f"plot:   {plot}",
        "model:",
    ):
        assert text in out, text
    r = json.loads(rep.read_text())
    assert REPORT_KEYS <= set(r)
    assert set(r["data"]) >= {"path", "column", "n_points", "train", "test"}
    assert set(r["data"]["train"]) == set(r["data"]["test"]) == {"start", "end", "n"}
    assert r["data"]["test"]["n"] == 20 and r["data"]["train"]["n"] + 20 == r["data"]["n_points"] == 160
    point = {"rmse", "mae", "mape", "smape", "mase", "directional_accuracy"}
    for name in ("persistence", "drift", "moving_average"):
        assert set(r["metrics"][name]) == point
    m = r["metrics"]["model"]  # the default is probabilistic: intervals and their scores
    assert set(m) == point | {"coverage", "interval_width", "pinball", "crps"}
    assert set(m["coverage"]) == set(m["interval_width"]) == {"0.8", "0.95"}
    assert 0 < m["interval_width"]["0.8"] < m["interval_width"]["0.95"] and m["crps"] > 0
    q = r["predictions"][0]["quantiles"]
    assert list(q) == ["0.025", "0.1", "0.5", "0.9", "0.975"] and list(q.values()) == sorted(q.values())
    assert "Prediction intervals" in out and set(r["calibration"]) >= {
        "method",
        "factors",
        "p_values",
        "applied",
    }
    assert r["calibration"]["method"].startswith("split-conformal" if r["calibration"]["applied"] else "none")
    assert set(r["dm_test_vs_persistence"]) >= {"statistic", "p_value"}
    assert len(r["history"]["train_loss"]) == 2 and len(r["history"]["valid_loss"]) == 2
    assert len(r["predictions"]) == 20
    assert set(r["predictions"][0]) >= {"date", "actual", "predicted"}
    assert r["predictions"][0]["date"] == r["data"]["test"]["start"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    members = [f"member{k}" for k in range(r["target"].count("+") + 1)] if "+" in r["target"] else []
    assert (
        sorted(os.listdir(model)) == ["config.json", *members]
        if members
        else ["config.json", "model.safetensors"]
    )
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab")]  # no temp files left

    # predict with the saved model: defaults to the series it was trained on
    code = main(["forecast", "predict", "--model", str(model), "--steps", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert len(lines) == 3
    last = D.load_series(csv_path).dates[-1].astype("datetime64[D]")  # a daily series: the next days
    assert str(last + 1) in lines[0] and str(last + 3) in lines[2]


def test_predict_matches_the_python_api(tmp_path, capsys, csv_path):
    from rnnlab.forecast import load_model, load_series

    model = tmp_path / "m"
    assert run(capsys, "--csv", csv_path, *FAST, "--no-plot", "--save", str(model))[0] == 0
    code = main(["forecast", "predict", "--model", str(model), "--csv", csv_path, "--steps", "2"])
    out, _ = capsys.readouterr()
    assert code == 0
    values = load_model(model).predict(load_series(csv_path).values, 2)
    for v in values:
        assert f"{v:,.2f}" in out


@pytest.mark.parametrize("horizon,strategy", [(3, "recursive"), (3, "direct")])
def test_horizon_and_backtest(tmp_path, capsys, csv_path, horizon, strategy):
    rep = tmp_path / "r.json"
    code, out, err = run(
        capsys,
        "--csv",
        csv_path,
        *FAST,
        "--horizon",
        str(horizon),
        "--strategy",
        strategy,
        "--backtest",
        "2",
        "--no-plot",
        "--report",
        str(rep),
    )
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert r["config"]["horizon"] == horizon and r["config"]["strategy"] == strategy
    folds = r["backtest"]["folds"]
    assert [f["test"]["n"] for f in folds] == [10, 10]
    assert folds[1]["train"]["n"] == folds[0]["train"]["n"] + 10  # refit on more data
    for name in ("model", "persistence"):
        mean = np.mean([f["metrics"][name]["rmse"] for f in folds])
        assert r["backtest"]["average"][name]["rmse"] == pytest.approx(mean)
    assert "Backtest, 2 folds" in out


def test_horizon_by_step_in_report(tmp_path, capsys, csv_path):
    rep = tmp_path / "r.json"
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--horizon", "2", "--no-plot", "--report", str(rep))
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert [s["step"] for s in r["by_step"]] == [1, 2]
    assert r["by_step"][1]["model"]["rmse"] == pytest.approx(r["metrics"]["model"]["rmse"])


def test_book_preset_split_matches_the_reference(tmp_path, capsys):
    """--preset book: first 1000 windows train -> 266 test days, persistence 595.97 USD."""
    rep = tmp_path / "r.json"
    code, out, err = run(
        capsys,
        "--preset",
        "book",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--quiet",
        "--no-plot",
        "--report",
        str(rep),
    )
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert r["data"]["test"]["n"] == 266 and r["data"]["train"]["n"] == 1007
    assert r["metrics"]["persistence"]["rmse"] == pytest.approx(595.97, abs=0.005)
    c = r["config"]
    assert (c["target"], c["window"], c["batch_size"], c["lr"], c["clip"], c["init"], c["cell"]) == (
        "level",
        7,
        7,
        1e-3,
        4.0,
        "book",
        "lstm",
    )
    assert "USD" in out and "[preset book]" in out


def test_flat_test_part_gives_no_ratio_and_strict_json(tmp_path, capsys):
    y = random_walk(160)
    y[-30:] = y[-31]  # persistence is exact on the test part
    path = write_csv(tmp_path / "flat.csv", y)
    rep = tmp_path / "r.json"
    code, out, err = run(
        capsys,
        "--csv",
        path,
        *FAST,
        "--backtest",
        "2",
        "--plot",
        str(tmp_path / "p.png"),
        "--report",
        str(rep),
    )
    assert code == 0, err
    assert (tmp_path / "p.png").exists()
    r = json.loads(rep.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert r["metrics"]["persistence"]["rmse"] == 0.0 and r["rmse_ratio_vs_persistence"] is None
    assert "no verdict" in r["verdict"] and "RMSE ratio model / persistence: n/a" in out


# ----------------------------------------------------------------------------- bad input


def assert_one_error_line(code, out, err, *needles):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rnnlab forecast: error: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])


def bad(tmp_path, capsys, *argv):
    """Run with outputs requested and check that none of them appeared."""
    outs = [tmp_path / "out.json", tmp_path / "out.png", tmp_path / "outmodel"]
    code, out, err = run(
        capsys, *argv, *FAST, "--report", str(outs[0]), "--plot", str(outs[1]), "--save", str(outs[2])
    )
    for p in outs:
        assert not p.exists(), p
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab")]
    return code, out, err


def test_missing_file(tmp_path, capsys):
    assert_one_error_line(
        *bad(tmp_path, capsys, "--csv", str(tmp_path / "nope.csv")), "no such file", "nope.csv"
    )


def test_missing_column_lists_the_columns(tmp_path, capsys, csv_path):
    assert_one_error_line(
        *bad(tmp_path, capsys, "--csv", csv_path, "--column", "Price"),
        "no column 'Price'",
        "'Date', 'Symbol', 'Close'",
    )


def test_non_numeric_values_name_the_lines(tmp_path, capsys):
    path = write_csv(tmp_path / "s.csv", random_walk(160), newest_first=False, raw={10: "n.a.", 50: "12 USD"})
    assert_one_error_line(*bad(tmp_path, capsys, "--csv", path), "not numbers", "line(s) 12, 52")


def test_nan_values_error_or_ffill(tmp_path, capsys):
    path = write_csv(tmp_path / "s.csv", random_walk(160), newest_first=False, raw={30: "", 31: "NaN"})
    assert_one_error_line(*bad(tmp_path, capsys, "--csv", path), "2 missing value", "--fill ffill")
    code, out, err = run(capsys, "--csv", path, *FAST, "--fill", "ffill", "--no-plot")
    assert code == 0, err
    assert "filled 2 missing value(s)" in out


def test_too_short_says_how_long(tmp_path, capsys):
    path = write_csv(tmp_path / "s.csv", random_walk(30))
    need = D.min_length(5, 1, "diff", 20)
    code, out, err = bad(tmp_path, capsys, "--csv", path, "--target", "diff")
    assert_one_error_line(code, out, err, "has 30 points", f"at least {need} points")
    assert "train" not in out  # failed before training


def test_unparseable_dates(tmp_path, capsys):
    p = tmp_path / "s.csv"
    y = random_walk(160)
    rows = [f"2020-01-{i + 1:02d}" if i < 28 else f"day {i}" for i in range(160)]
    p.write_text("Date,Close\n" + "".join(f"{d},{v}\n" for d, v in zip(rows, y)))
    assert_one_error_line(*bad(tmp_path, capsys, "--csv", str(p)), "not dates", "line(s) 30, 31", "'day 28'")


def test_logreturn_of_non_positive_values(tmp_path, capsys):
    y = random_walk(160) - 150.0
    path = write_csv(tmp_path / "s.csv", y)
    assert_one_error_line(
        *bad(tmp_path, capsys, "--csv", path, "--target", "logreturn"), "positive", "--target diff"
    )


def test_bad_output_locations(tmp_path, capsys, csv_path):
    code, out, err = run(capsys, "--csv", csv_path, *FAST, "--plot", str(tmp_path / "no" / "p.png"))
    assert_one_error_line(code, out, err, "does not exist")
    code, out, err = run(capsys, "--csv", csv_path, *FAST, "--report", str(tmp_path / "r.txt"))
    assert_one_error_line(code, out, err, ".json")


def test_predict_with_a_directory_that_is_not_a_model(tmp_path, capsys):
    for d, needle in ((tmp_path / "nope", "does not exist"), (tmp_path, "not an rnnlab forecast model")):
        code = main(["forecast", "predict", "--model", str(d)])
        out, err = capsys.readouterr()
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_bad_option_values_list_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as e:
        main(["forecast", "--target", "price"])
    assert e.value.code == 2
    assert "'level', 'diff', 'logreturn'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the real thing


@pytest.mark.slow
def test_default_run_on_bundled_data_does_not_lose_to_persistence(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--report", "r.json", "--quiet")
    assert code == 0, err
    assert (tmp_path / "forecast.png").exists() and "forecast.png" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["rmse_ratio_vs_persistence"] <= 1.0
    assert r["data"]["n_points"] == 1273 and r["data"]["train"]["start"] == "2014-12-01"
