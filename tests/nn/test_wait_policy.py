"""OpenMP workers wait passively unless the user says otherwise (issue 34: spinning workers on a
machine whose cores other processes hold made a small LSTM step ~100x slower)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_LSTM = (
    "import numpy as np; from rnnlab.nn import LSTM, runtime; "
    "m = LSTM(1, 16); m(np.zeros((7, 32, 1), np.float32)); print(runtime.describe()['backend'])"
)


def _run(**env):
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", RUN_LSTM],
        env={**base, "OMP_DISPLAY_ENV": "TRUE", "PYTHONPATH": ROOT, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_the_libraries_read_passive_waiting_before_they_start():
    out = _run()
    if out.stdout.strip() != "compiled" or "OPENMP DISPLAY ENVIRONMENT" not in out.stderr + out.stdout:
        pytest.skip("no OpenMP runtime loaded here (the NumPy backend): nothing spins")
    shown = out.stderr + out.stdout
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in shown and "'ACTIVE'" not in shown


def test_a_policy_the_user_set_is_kept():
    out = _run(OMP_WAIT_POLICY="ACTIVE")
    if "OPENMP DISPLAY ENVIRONMENT" not in out.stderr + out.stdout:
        pytest.skip("no OpenMP runtime loaded here")
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in out.stderr + out.stdout
