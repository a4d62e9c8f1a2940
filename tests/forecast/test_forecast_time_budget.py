"""``time_budget`` (``--time-budget MINUTES``): past it no network starts another epoch."""

import json

import numpy as np
import pytest
from forecast_helpers import TINY, random_walk, write_csv

from rnnlab.cli import main
from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster

CFG = {k: v for k, v in TINY.items() if k in Forecaster().get_params()}


def test_an_exhausted_budget_stops_every_network_after_its_first_epoch():
    y = random_walk()
    free = Forecaster(**{**CFG, "epochs": 6, "patience": 100, "ensemble": 2}).fit(y)
    assert [len(h["train_loss"]) for h in free.histories_] == [6, 6]  # what the budget must cut
    short = Forecaster(**{**CFG, "epochs": 6, "patience": 100, "ensemble": 2, "time_budget": 1e-9}).fit(y)
    assert [len(h["train_loss"]) for h in short.histories_] == [1, 1]
    assert all(h["out_of_time"] and h["stopped_epoch"] == 1 for h in short.histories_)
    assert np.all(np.isfinite(short.predict(y, 3)))  # a model all the same


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), "5", True])
def test_a_budget_is_a_positive_number_of_minutes(bad):
    with pytest.raises(UserError, match="time_budget must be a positive number of minutes"):
        Forecaster(**{**CFG, "time_budget": bad}).fit(random_walk())


def test_data_parallel_ranks_cannot_stop_on_their_own_clocks():
    with pytest.raises(UserError, match="parallel='data'"):
        Forecaster(**{**CFG, "time_budget": 1.0, "parallel": "data"}).fit(random_walk())


def test_the_cli_budget_reaches_the_backtest_and_the_refit(tmp_path, capsys):
    csv, rep = write_csv(tmp_path / "s.csv", random_walk()), tmp_path / "r.json"
    argv = ["forecast", "--csv", csv, "--epochs", "5", "--patience", "50", "--hidden", "6"]
    argv += ["--ensemble", "2", "--window", "5", "--test-size", "20", "--quiet", "--baselines", "simple"]
    code = main(
        [*argv, "--no-plot", "--time-budget", "1e-9", "--report", str(rep), "--out", str(tmp_path / "m")]
    )
    assert code == 0, capsys.readouterr().err
    r = json.loads(rep.read_text())
    assert r["config"]["time_budget"] == 1e-9
    assert set(r["refit"]["epochs"]) == {1}  # the backtest stopped every network after one epoch
