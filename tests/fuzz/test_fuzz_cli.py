"""Random option values, inside and outside their types, for every command line: exit 0 or 2,
one line on error, never a traceback, never a hang, nothing written where it was not asked."""

import os
import tempfile

from fuzz_helpers import random_walk, run_cli, snapshot, write_csv
from hypothesis import given
from hypothesis import strategies as st

# values an option might be given: garbage, signs, non-finite, huge, tiny valid ones
ODD = st.one_of(
    st.sampled_from(["", " ", "-1", "0", "nan", "inf", "-inf", "1e309", "0x10", "1_0", "٣", "1e-400"]),
    st.sampled_from(["0.9999999999", "0.99999", "1", "2", "0.5", "1.0", "-0.0", "9" * 40, "True"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
SMALL = st.one_of(st.integers(1, 3).map(str), st.sampled_from(["0.1", "0.2", "0.5"]))
VALUE = st.one_of(ODD, SMALL)

FORECAST_OPTIONS = [
    "--test-size", "--backtest", "--window", "--horizon", "--hidden", "--layers", "--dropout",
    "--ensemble", "--epochs", "--batch-size", "--lr", "--clip", "--weight-decay", "--valid-size",
    "--patience", "--seed", "--target", "--strategy", "--cell", "--init", "--fill", "--column",
]  # fmt: skip
FAST = ["--epochs", "1", "--hidden", "3", "--ensemble", "1", "--window", "4", "--test-size", "10"]
FAST += ["--baselines", "simple"]
FAST += ["--quiet", "--no-plot", "--patience", "1"]
SAFE_INTS = {"--epochs", "--hidden", "--ensemble", "--window", "--backtest", "--horizon", "--layers"}


def _guard(option, value):
    """Inside the bounds, a size may be valid and big: keep the case small (a time bound, not a
    loosened invariant: values past the bounds are still drawn and must be refused)."""
    try:
        v = float(value)
    except ValueError:
        return value
    if option in SAFE_INTS and 3 < v <= 10**6:
        return "3"
    return value


@given(st.lists(st.tuples(st.sampled_from(FORECAST_OPTIONS), VALUE), min_size=1, max_size=3))
def test_forecast_options(pairs):
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_csv(os.path.join(tmp, "s.csv"), random_walk(90))
        argv = ["forecast", "--csv", csv, *FAST]
        for option, value in pairs:
            argv += [option, _guard(option, value)]
        before = snapshot(tmp)
        run_cli(argv)
        assert snapshot(tmp) == before  # no --save, --report, --plot: nothing written


PATHS = st.sampled_from(["{tmp}/no/x", "{tmp}", "{tmp}/s.csv", "/proc/x", "{tmp}/", "{tmp}/x"])
SUFFIXES = st.sampled_from([".json", ".png", ".txt", "", "/"])


@given(st.sampled_from(["--report", "--plot", "--save"]), PATHS, SUFFIXES)
def test_forecast_output_paths_fail_before_work_or_succeed(option, path, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_csv(os.path.join(tmp, "s.csv"), random_walk(90))
        target = path.replace("{tmp}", tmp) + suffix
        before = snapshot(tmp)
        code, out, _ = run_cli(["forecast", "--csv", csv, *FAST, option, target])
        if code == 2:
            assert "Test metrics" not in out  # refused before training, not after it
            assert snapshot(tmp) == before
        assert not [p for p in os.listdir(tmp) if p.startswith(".rnnlab")]


TRANSLATE_OPTIONS = [
    "--max-len", "--min-freq", "--layers", "--hidden", "--emb", "--dropout", "--teacher-forcing",
    "--epochs", "--time-budget", "--batch-size", "--lr", "--clip", "--lr-decay", "--early-stopping",
    "--seed", "--threads", "--cell", "--attention", "--split-protocol",
]  # fmt: skip


def _float(text):
    """``text`` as a number, or None ("²" is a digit to ``str.isdigit`` and no number)."""
    try:
        return float(text)
    except ValueError:
        return None


@given(st.sampled_from(TRANSLATE_OPTIONS), ODD)
def test_translate_train_options_that_are_refused_touch_nothing(option, value):
    with tempfile.TemporaryDirectory() as tmp:
        pairs = os.path.join(tmp, "p.tsv")
        with open(pairs, "w") as fh:
            fh.write("".join(f"a b {i} .\tB A {i} .\n" for i in range(40)))
        argv = ["translate", "train", "--out", os.path.join(tmp, "m"), "--pairs", pairs, "--quiet"]
        argv += ["--epochs", "1", "--hidden", "4", "--emb", "4", "--min-freq", "1"]
        v = _float(value)
        if v is not None and v > 3 and option in ("--epochs", "--hidden", "--emb", "--layers", "--max-len"):
            value = "3"  # inside the bounds: keep the case small
        if option == "--time-budget" and v is not None and v > 0:
            value = "0.01"
        run_cli([*argv, option, value])


@given(st.sampled_from(["run", "eval"]), st.sampled_from(["--beam", "--length-penalty", "--samples"]), ODD)
def test_translate_search_options(action, option, value):
    with tempfile.TemporaryDirectory() as tmp:
        if action == "run" and option == "--samples":  # eval's option only
            option = "--beam"
        run_cli(["translate", action, "--model", tmp, *(["hi"] if action == "run" else []), option, value])


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_translate_run_stdin(text):
    with tempfile.TemporaryDirectory() as tmp:
        code, _, err = run_cli(["translate", "run", "--model", tmp], stdin=text)
        assert code == 2  # no model there: refused, whatever the text


def test_experiment_and_bench_reports_into_missing_folders():
    for argv in (
        ["experiment", "adding", "--report", "/nonexistent/r.json"],
        ["bench", "--json", "/nonexistent/b.json"],
    ):
        code, _, err = run_cli(argv)
        assert code == 2 and "does not exist" in err
