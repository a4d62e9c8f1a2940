"""The one table of ``Forecaster``'s arguments (``params.TABLE``) and everything it drives:
the written-out signature, validation, the model file's checks, the CLI's options."""

import argparse
import inspect

import pytest

from rnnlab.errors import UserError
from rnnlab.forecast.cli import main as cli
from rnnlab.forecast.estimator import params as PR
from rnnlab.forecast.estimator import storage as St
from rnnlab.forecast.estimator.model import Forecaster
from rnnlab.forecast.evaluation import pipeline as P


def test_the_signature_is_the_table():
    """``__init__`` spells the table out (for readers and editors): the same names, order, defaults."""
    sig = inspect.signature(Forecaster)
    assert [(p.name, p.default) for p in sig.parameters.values()] == [(p.name, p.default) for p in PR.TABLE]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in sig.parameters.values())
    f = Forecaster()
    assert f.get_params() == PR.DEFAULTS and tuple(f.get_params()) == PR.NAMES
    assert vars(f) == PR.DEFAULTS  # the constructor stores its arguments, nothing else
    assert all(f"    {name} : " in (Forecaster.__doc__ or "") for name in PR.NAMES)


def test_get_params_set_params_round_trip():
    f = Forecaster(window=3, seed=4, time_budget=2.5, bounds="positive")
    g = Forecaster(**f.get_params())
    assert g.get_params() == f.get_params()
    assert g.set_params(window=5) is g and g.window == 5
    with pytest.raises(ValueError, match="invalid parameters"):
        g.set_params(windw=5)


@pytest.mark.parametrize(
    "name, bad, message",
    [
        ("window", 0, "window must be a positive integer"),
        ("n_samples", True, "n_samples must be a positive integer"),
        ("season", 0, "season must be a positive integer"),
        ("strategy", "sideways", "strategy must be one of recursive, direct"),
        ("bounds", "above", "bounds must be one of none, positive, range"),
        ("seed", -1, "seed must be an integer >= 0"),
        ("min_updates", -1, "min_updates must be an integer >= 0"),
        ("time_budget", 0, "time_budget must be a positive number of minutes or None"),
        ("lr", 0.0, "lr must be positive"),
        ("clip", -1.0, "clip must be >= 0"),
        ("valid_size", 1.0, r"valid_size must lie in \[0, 1\)"),
        ("intervals", (0.8, 1.2), "coverage"),
    ],
)
def test_each_row_checks_its_value(name, bad, message):
    with pytest.raises(UserError, match=message):
        Forecaster(**{name: bad})._validate()


def test_the_combinations_are_checked():
    with pytest.raises(UserError, match="time_budget does not go with parallel='data'"):
        Forecaster(time_budget=1.0, parallel="data")._validate()
    with pytest.raises(UserError, match="needs a season of 2 or more"):
        Forecaster(target="sdiff", season=1)._validate()
    f = Forecaster(intervals=[0.95, 0.8])
    f._validate()
    assert f.intervals == (0.8, 0.95)  # normalised


def test_storage_reads_the_table():
    assert set(PR.TYPES) == set(PR.NAMES)
    assert St.BOUNDS == PR.LIMITS and set(PR.LIMITS) <= set(PR.NAMES)
    assert set(PR.BEFORE) <= set(PR.NAMES)
    for name, value in PR.BEFORE.items():  # an older model's meaning is a valid value
        Forecaster(**{name: value, "season": 12 if name != "season" else value})._validate()


def test_pipeline_and_cli_read_the_table():
    assert P.MODEL_KEYS == PR.NAMES
    assert {k: P.DEFAULTS[k] for k in PR.NAMES if k != "season"} == {
        k: v for k, v in PR.DEFAULTS.items() if k != "season"
    }
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    dests = {a.dest for a in parser._subparsers._group_actions[0].choices["forecast"]._actions}
    assert set(PR.CLI) <= dests, sorted(set(PR.CLI) - dests)  # every one the CLI passes on has an option
    assert "season" in dests  # read separately (pipeline.apply_season)
