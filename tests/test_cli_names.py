"""One name per idea across the commands (issue 33): ``--quiet`` on every command, ``--out`` for
every output directory (``--save``, forecast's old name, still parses), ``--threads`` and
``--time-budget`` wherever training happens."""

import argparse
import json

import pytest
from conftest import run_cli
from test_cli_unknown_options import commands

from rnnlab import cliargs
from rnnlab.cli import build_parser

RUNNABLE = {path: p for path, p in commands() if path and p.get_default("func") is not None}
TRAINING = [("forecast",), ("translate", "train"), ("experiment", "adding"), ("experiment", "copy")]


def test_every_command_is_listed():
    assert {("forecast", "predict"), ("translate", "serve"), ("bench",), *TRAINING} <= set(RUNNABLE)


@pytest.mark.parametrize("path", sorted(RUNNABLE), ids=" ".join)
def test_every_command_takes_quiet(path):
    action = RUNNABLE[path]._option_string_actions.get("--quiet")
    assert action is not None and action.nargs == 0 and action.help


@pytest.mark.parametrize("path", sorted(RUNNABLE), ids=" ".join)
def test_every_output_directory_is_out(path):
    dirs = [a for a in RUNNABLE[path]._actions if a.type is cliargs.output_dir]
    assert all("--out" in a.option_strings for a in dirs), [a.option_strings for a in dirs]


def test_forecast_save_is_out_by_its_old_name():
    parser = build_parser()
    new = parser.parse_args(["forecast", "--out", "m"])
    old = parser.parse_args(["forecast", "--save", "m"])
    assert new.save == old.save == "m"


@pytest.mark.parametrize("path", TRAINING, ids=" ".join)
def test_training_commands_take_threads(path):
    action = RUNNABLE[path]._option_string_actions["--threads"]
    assert action.type("3") == 3
    with pytest.raises(argparse.ArgumentTypeError):
        action.type("0")


@pytest.mark.parametrize("path", TRAINING, ids=" ".join)
def test_training_commands_take_a_time_budget(path):
    action = RUNNABLE[path]._option_string_actions["--time-budget"]
    assert action.metavar == "MINUTES" and action.type("0.5") == 0.5


TINY = ["experiment", "adding", "--cell", "rnn", "--length", "5", "--hidden", "4", "--test-size", "8"]


def test_the_time_budget_stops_training_short_of_steps(capsys):
    code, out, _ = run_cli([*TINY, "--steps", "100000", "--time-budget", "1e-9", "--report", "-"], capsys)
    assert code == 0
    history = json.loads(out)["rnn"]["history"]
    assert history[-1][0] == 1  # stopped after its first step, and scored there


def test_threads_hold_for_the_command_only(capsys, monkeypatch):
    from rnnlab.experiments import cli as experiments_cli
    from rnnlab.nn import runtime

    seen = []
    real = experiments_cli.run_adding
    monkeypatch.setattr(
        experiments_cli, "run_adding", lambda **kw: seen.append(runtime.settings().threads) or real(**kw)
    )
    before = runtime.settings().threads
    code, _, err = run_cli([*TINY, "--steps", "2", "--threads", "1"], capsys)
    assert code == 0, err
    assert seen == [1] and runtime.settings().threads == before
