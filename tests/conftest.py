import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

# The suite never writes the user's cache (the GEMM choice, rnnlab/nn/backend/tuning.py: a choice
# timed inside a test run was once cached there for every later run, and a test passed only
# because that file existed); the CLI and MPI processes the tests start inherit the folder.
if "RNNLAB_CACHE_DIR" not in os.environ:
    os.environ["RNNLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="rnnlab-tests-cache-")
    atexit.register(shutil.rmtree, os.environ["RNNLAB_CACHE_DIR"], True)

# While OpenMP's workers spin, the GEMM threads of a pass follow the machine's load (the load
# check, rnnlab/nn/runtime.py), and a pass's thread count changes float32 rounding: two runs a
# test compares bit for bit (a resume, a seed, a save and load) could differ by when the machine
# was busy. An explicit threshold turns the check off, here and in every process the tests start
# (before rnnlab is imported: the environment is read once); 4e6 is what a loaded machine uses.
# tests/nn/test_threads_by_size.py tests the check itself with a fake load and clock.
os.environ.setdefault("RNNLAB_MIN_THREAD_WORK", "4e6")


def rel_err(a, b):
    """max |a - b| / max(|b|, tiny): one number per tensor, scaled by the reference."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), 1e-30))


def assert_close(name, a, b, tol):
    e = rel_err(a, b)
    assert e <= tol, f"{name}: relative error {e:.3e} > {tol:.0e}"
    return e


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def run_cli(argv, capsys):
    """``rnnlab ARGV`` in this process: ``(exit code, stdout, stderr)`` (argparse's exit too)."""
    from rnnlab.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, err, needle=""):
    """The answer to bad input: exit 2, one line on stderr naming ``needle``, no traceback."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
