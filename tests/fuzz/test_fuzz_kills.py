"""SIGKILL at a random moment of each writer added in round 2 (issue 34, item 3): the save of a
panel model and of a combination (`forecast --save`), the future's file (`--forecast-out`, CSV,
JSON, Parquet), `forecast export` and `translate export`. A forked child writes two versions in
turn for ever (the command line calls these same functions); killed, the output must be absent
or one version whole, never half of one or a mix of both.

The child is forked from the test process (models loaded, libraries imported) so a try costs
milliseconds, not a fresh interpreter."""

import os
import signal
import tempfile
import time

import fuzz_helpers  # noqa: F401 - the Hypothesis profiles
import pytest
import test_fuzz_model_dirs
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_model_dirs import tree

from rnnlab.forecast import load_model
from rnnlab.forecast.evaluation import future as F

zoo = test_fuzz_model_dirs.zoo  # the fixture, reused
TRIES = max(4, settings.default.max_examples // 4)  # ci 6 per writer, long 100


def _killed_while_writing(write_a, write_b, delay: float) -> None:
    """Fork a child that calls ``write_a(); write_b()`` for ever; SIGKILL it after ``delay``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(r)
            os.write(w, b"r")
            while True:
                write_a()
                write_b()
        finally:
            os._exit(1)
    os.close(w)
    assert os.read(r, 1) == b"r"
    os.close(r)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _reference(write, tmp: str, version: str, name: str) -> dict:
    """What one whole write of ``write(path)`` leaves: ``tree`` of a folder holding it."""
    folder = os.path.join(tmp, "ref-" + version)
    os.makedirs(folder)
    write(os.path.join(folder, name))
    return tree(folder)


def _run(write_a, write_b, delay: float, name: str = "out") -> None:
    """Kill a child writing ``write_a(path)`` and ``write_b(path)`` in turn after ``delay``;
    then ``path`` is absent or one of the two whole."""
    with tempfile.TemporaryDirectory() as tmp:
        refs = [_reference(write_a, tmp, "a", name), _reference(write_b, tmp, "b", name)]
        assert refs[0] != refs[1]
        target = os.path.join(tmp, "target")
        os.makedirs(target)
        path = os.path.join(target, name)
        _killed_while_writing(lambda: write_a(path), lambda: write_b(path), delay)
        # a killed writer's .rnnlab-* temporary beside the output is left for the next write
        # to clean (rnnlab/stale.py); the output itself is absent or one version whole
        left = {k: v for k, v in tree(target).items() if not k.startswith(".rnnlab-")}
        assert left == {} or left in refs, sorted(left)


DELAYS = st.floats(0.0, 0.25)


@pytest.fixture(scope="module")
def pair(zoo):
    """Two models of each kind, loaded: panel models and combinations."""
    return {k: load_model(zoo / k) for k in ("panel", "panel1", "comb", "single", "single5")}


@settings(max_examples=TRIES)
@given(DELAYS, st.sampled_from([("panel", "comb"), ("panel1", "single")]))
def test_a_killed_save_of_a_panel_or_a_combination_leaves_one_model_whole(pair, delay, kinds):
    a, b = (pair[k] for k in kinds)
    _run(lambda p: a.save(p, overwrite=True), lambda p: b.save(p, overwrite=True), delay)


@settings(max_examples=TRIES)
@given(DELAYS, st.sampled_from([".csv", ".json", ".parquet"]))
def test_a_killed_forecast_out_leaves_one_file_whole(delay, suffix):
    rows = [
        {"unique_id": "a", "ds": f"2021-01-{d:02d}", "mean": d * 1.5, "lo-80": d, "hi-80": 2 * d}
        for d in range(1, 29)
    ]
    more = rows * 200  # a file large enough to be caught half-written
    _run(lambda p: F.write_frame(rows, p), lambda p: F.write_frame(more, p), delay, "future" + suffix)


@settings(max_examples=TRIES)
@given(DELAYS)
def test_a_killed_forecast_export_leaves_one_graph_whole(pair, delay):
    pytest.importorskip("onnx")  # the export extra (CI installs it)
    from rnnlab.forecast.estimator.export import export_forecaster

    a, b = pair["single"], pair["single5"]
    _run(lambda p: export_forecaster(a, p), lambda p: export_forecaster(b, p), delay)


@settings(max_examples=TRIES)
@given(DELAYS)
def test_a_killed_translate_export_leaves_one_export_whole(zoo, delay):
    """The three files (encoder, decoder step, vocabularies) are one unit: never the encoder of
    one model beside the decoder of another, never two files of three."""
    pytest.importorskip("onnx")  # the export extra (CI installs it)
    from rnnlab.translate import Translator
    from rnnlab.translate.export import export_translator

    a, b = Translator.load(zoo / "model"), Translator.load(zoo / "model6")
    _run(lambda p: export_translator(a, p), lambda p: export_translator(b, p), delay)
