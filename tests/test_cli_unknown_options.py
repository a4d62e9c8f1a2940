"""An option a command does not know is named, with the closest it knows, by every (sub)command
(issue 34: `rnnlab forecast --no-such-option value` said "invalid choice: 'value'")."""

import argparse

import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli

from rnnlab.cli import build_parser


def commands(parser=None, path=()):
    """``(path, parser)`` of every command and sub-command of ``rnnlab``."""
    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


PATHS = [path for path, _ in commands() if path]
TAILS = [["--no-such-option", "value"], ["--no-such-option"], ["--no-such-option=1"]]


def test_every_command_is_reached():
    assert {"forecast", "translate", "experiment", "bench"} <= {p[0] for p in PATHS}
    assert {("forecast", "predict"), ("forecast", "export"), ("translate", "train")} <= set(PATHS)
    assert all(isinstance(p, build_parser().__class__) for _, p in commands())


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
@pytest.mark.parametrize("tail", TAILS)
def test_an_unknown_option_is_named_by_every_command(capsys, path, tail):
    code, _, err = run_cli([*path, *tail], capsys)
    one_line(code, err, f"rnnlab {' '.join(path)}: error: unknown option --no-such-option")
    assert err.rstrip().endswith(f"(see rnnlab {' '.join(path)} --help)"), err  # that command's help
    assert "invalid choice" not in err


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_a_misspelt_option_gets_the_closest_real_one(capsys, path):
    parser = dict(commands())[path]
    options = sorted(o for o in parser._option_string_actions if o.startswith("--") and o != "--help")
    for option in options[:: max(1, len(options) // 6)]:  # a few of each command's
        typo = option[:-1] + option[-1] * 2 + "q"  # --seed -> --seeddq
        code, _, err = run_cli([*path, typo, "1"], capsys)
        one_line(code, err, f"unknown option {typo} (did you mean --")
        suggested = err.split("did you mean ")[1].split("?")[0]
        assert suggested in options, err


@pytest.mark.parametrize(
    "argv,suggestion",
    [
        (["forecast", "--hiden", "4"], "--hidden"),
        (["forecast", "--seed=3", "--hiden", "4"], "--hidden"),
        (["forecast", "--column", "predict", "--windw", "4"], "--window"),
        (["translate", "train", "--outt", "x"], "--out"),
        (["translate", "eval", "--corpsu", "x"], "--corpus"),
    ],
)
def test_the_closest_option_is_the_one_meant(capsys, argv, suggestion):
    code, _, err = run_cli(argv, capsys)
    one_line(code, err, f"(did you mean {suggestion}?)")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["forecast", "--s", "3"], "ambiguous option: --s"),  # argparse's own messages stay
        (["forecast", "--seed", "-1"], "argument --seed"),
        (["forecast", "--hid", "0"], "argument --hidden"),  # an abbreviation is known
        (["bench", "stray"], "unrecognized arguments: stray"),
    ],
)
def test_known_options_keep_their_own_errors(capsys, argv, needle):
    code, _, err = run_cli(argv, capsys)
    one_line(code, err, needle)
