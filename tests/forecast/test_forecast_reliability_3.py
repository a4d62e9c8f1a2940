"""The defects of issue 34 in `rnnlab forecast`, each pinned (docs/RELIABILITY.md)."""

import re
import time

import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli
from forecast_helpers import random_walk, write_csv

FAST = ["--epochs", "1", "--hidden", "4", "--ensemble", "1", "--window", "5", "--test-size", "20"]
FAST += ["--quiet", "--no-plot", "--baselines", "simple", "--target", "diff"]


def run(capsys, *argv):
    return run_cli(["forecast", *argv], capsys)


@pytest.fixture
def csv_path(tmp_path):
    return write_csv(tmp_path / "series.csv", random_walk())


@pytest.mark.parametrize("extra", [[], ["--likelihood", "none"]])
def test_a_horizon_the_series_cannot_support_is_refused_before_training_with_the_longest(
    capsys, csv_path, extra
):
    """--horizon 1000 on a short series trained for minutes, then ended in a ValueError. It is
    refused at once, and the longest horizon it names is exact: it runs, one more is refused."""
    t0 = time.perf_counter()
    code, out, err = run(capsys, "--csv", csv_path, *FAST, *extra, "--horizon", "1000")
    one_line(code, err, "--horizon 1000")
    assert time.perf_counter() - t0 < 5 and "epoch" not in out
    longest = int(re.search(r"at most (\d+)", err).group(1))
    assert 1 < longest < 1000
    code, _, err = run(capsys, "--csv", csv_path, *FAST, *extra, "--horizon", str(longest + 1))
    one_line(code, err, f"at most {longest}")
    code, _, err = run(capsys, "--csv", csv_path, *FAST, *extra, "--horizon", str(longest))
    assert code == 0, err
