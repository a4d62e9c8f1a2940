"""The command line's bars: one per network of each fit, and the sample paths' own, in the
backtest (calibration, test quantiles) as after the refit (the future)."""

import pytest
from forecast_helpers import random_walk, write_csv

from rnnlab.cli import main
from rnnlab.forecast.cli import progress as Bars
from rnnlab.forecast.estimator import uncertainty as U


def test_every_phase_has_a_labelled_bar(tmp_path, capsys):
    csv = write_csv(tmp_path / "s.csv", random_walk())
    argv = ["forecast", "--csv", csv, "--epochs", "2", "--hidden", "6", "--ensemble", "2", "--window", "5"]
    argv += ["--test-size", "20", "--baselines", "simple", "--no-plot", "--calibration", "conformal"]
    calls = []
    real = U.sample_paths_many

    def spy(f, sets, steps, progress=None, *rest):  # the hook each round of sampling reports to
        calls.append(progress)
        return real(f, sets, steps, progress, *rest)

    U.sample_paths_many = spy
    try:
        assert main(argv) == 0
    finally:
        U.sample_paths_many = real
    err = capsys.readouterr().err
    for label in ("target diff: net 1/2", "refit net 2/2", "intervals"):
        assert label in err, label
    # the backtest's calibration and test quantiles reported to a bar, as the future did
    assert len(calls) >= 3 and all(c is not None for c in calls)
    assert sum(isinstance(c, Bars.Paths) for c in calls) >= 2


def test_a_new_round_of_sampling_starts_a_new_bar():
    bar = Bars.Paths("intervals", "batch")
    bar(1, 4)
    first = bar.bar
    bar(4, 4)
    assert bar.bar is first and first.n == 4
    bar(1, 2)  # another total: the calibration done, the test part's quantiles begin
    assert bar.bar is not first and bar.bar.n == 1 and bar.bar.total == 2
    bar.close()
    assert bar.bar is None


def test_the_classics_have_a_bar_each_and_quiet_silences_them(tmp_path, capsys, monkeypatch):
    pytest.importorskip("statsforecast")
    from rnnlab.forecast.evaluation import classical as C

    monkeypatch.setattr(C, "NAMES", ("AutoETS", "AutoTheta"))  # two, to be quick
    csv = write_csv(tmp_path / "s.csv", random_walk())
    argv = ["forecast", "--csv", csv, "--epochs", "2", "--hidden", "6", "--ensemble", "1", "--window", "5"]
    argv += ["--test-size", "20", "--baselines", "stats", "--no-plot", "--no-refit"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "classics AutoETS" in err and "classics AutoTheta" in err and "origin" in err
    assert main([*argv, "--quiet"]) == 0
    assert "classics" not in capsys.readouterr().err


def test_a_new_classic_starts_a_new_bar():
    bar = Bars.Classics()
    bar("AutoETS", 0, 5)
    first = bar.bar
    bar("AutoETS", 5, 5)
    assert bar.bar is first and first.n == 5 and "classics AutoETS" in first.desc
    bar("AutoARIMA", 0, 5)
    assert bar.bar is not first and bar.bar.desc == "classics AutoARIMA" and bar.bar.n == 0
    bar.close()
    assert bar.bar is None
