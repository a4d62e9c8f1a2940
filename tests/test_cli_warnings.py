"""A warning reaches the terminal as one line ``rnnlab CMD: warning: ...`` (once each, with
``--quiet`` too: it is about the input or the run), never as Python's ``file:line: Category:
message`` block; the libraries' own (numpy's overflow, deprecations) are not shown (issue 33)."""

import warnings

import numpy as np
import pytest
from conftest import run_cli

from rnnlab import bench


def noisy(args):
    """A command whose work warns the ways a run can: numpy, a library, rnnlab itself."""
    np.exp(np.float32(1000.0))  # RuntimeWarning: overflow encountered in exp
    np.float64(1.0) / np.float64(0.0)  # RuntimeWarning: divide by zero
    warnings.warn("an old spelling", DeprecationWarning, stacklevel=1)
    warnings.warn("an old spelling soon", FutureWarning, stacklevel=1)
    for _ in range(3):
        warnings.warn("2 sentence(s) longer than 10 tokens\n  were truncated", UserWarning, stacklevel=1)
    print("done")
    return 0


@pytest.fixture
def noisy_bench(monkeypatch):
    monkeypatch.setattr(bench, "_cli", noisy)  # what `rnnlab bench` runs
    monkeypatch.setattr("sys.warnoptions", [])  # as from a shell without python -W


def test_warnings_are_one_line_each_and_the_libraries_are_silent(capsys, noisy_bench):
    code, out, err = run_cli(["bench"], capsys)
    assert code == 0 and out == "done\n"
    assert err == "rnnlab bench: warning: 2 sentence(s) longer than 10 tokens were truncated\n"


def test_quiet_keeps_the_one_line_warnings(capsys, noisy_bench):
    code, out, err = run_cli(["bench", "--quiet"], capsys)
    assert (code, out) == (0, "done\n")
    assert err == "rnnlab bench: warning: 2 sentence(s) longer than 10 tokens were truncated\n"


def test_the_filters_end_with_the_command(capsys, noisy_bench):
    run_cli(["bench"], capsys)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.exp(np.float32(1000.0))
    assert [w.category for w in caught] == [RuntimeWarning]  # the process's own filters are back
