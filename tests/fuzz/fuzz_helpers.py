"""Shared by the fuzzing suite: the Hypothesis profiles, and running the command line in-process
with the invariants every case must keep.

Profiles (``RNNLAB_FUZZ_PROFILE``): ``ci`` (the default; the whole suite in about a minute on
two cores), ``long`` (hundreds of cases per test, for a local run:
``RNNLAB_FUZZ_PROFILE=long pytest tests/fuzz``). A plain module with a unique name (not a
conftest.py: the suite's ``from conftest import`` must keep finding ``tests/conftest.py``).
"""

import contextlib
import io
import os
import sys
import time

from hypothesis import HealthCheck, settings

from rnnlab.cli import main

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "forecast"))
from forecast_helpers import random_walk, write_csv  # noqa: E402, F401 - for the fuzz tests

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,  # each case's own time is asserted by run_cli (CASE_SECONDS)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # CI: the same cases every run, so a failure reproduces
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("RNNLAB_FUZZ_PROFILE", "ci"))

CASE_SECONDS = 30.0  # no case may take longer: a hang is a failure, not a timeout of CI


def run_cli(argv, stdin=None):
    """``rnnlab argv`` in this process: ``(code, out, err)``, with the invariants checked: exit
    0 or 2, an error is one line, nothing but ``SystemExit`` escapes (an exception here is a
    traceback for a user), and the case ends within CASE_SECONDS."""
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as e:
                code = e.code
    finally:
        sys.stdin = old_stdin
    seconds = time.perf_counter() - t0
    o, e = out.getvalue(), err.getvalue()
    assert code in (0, 2), (argv, code, e)
    assert "Traceback" not in e, (argv, e)
    if code == 2:
        assert len(e.strip().splitlines()) == 1, (argv, e)
    assert seconds < CASE_SECONDS, (argv, seconds)
    return code, o, e


def snapshot(folder) -> dict:
    """Every file under ``folder`` (relative path -> bytes): what the user had."""
    files = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as fh:
                files[os.path.relpath(p, folder)] = fh.read()
    return files
