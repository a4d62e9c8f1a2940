"""OpenMP workers wait passively on a busy machine, and spin (the libraries' default) on an idle
one, unless the user says otherwise (issue 34: spinning workers on a machine whose cores other
processes hold made a small LSTM step ~100x slower; sleeping ones cost an idle machine ~2x)."""

import os
import subprocess
import sys

import pytest

from rnnlab.nn import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    "env, load, expected",
    [
        ({}, 3.0, "PASSIVE"),
        ({}, 0.2, None),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, 3.0, None),
        ({"GOMP_SPINCOUNT": "1000"}, 3.0, None),
    ],
)
def test_the_load_chooses_unless_the_user_did(env, load, expected):
    before = dict(env)
    assert runtime.wait_policy(env, load) == expected
    assert env == ({**before, "OMP_WAIT_POLICY": "PASSIVE"} if expected else before)


def _openmp_sees(load: float, **env) -> str:
    """What the OpenMP runtime itself reports (OMP_DISPLAY_ENV=VERBOSE) in a process whose load
    average reads ``load``, after an LSTM ran on the compiled backend ('' when none loaded)."""
    code = (
        f"import os; os.getloadavg = lambda: ({load}, {load}, {load}); "
        "import numpy as np; from rnnlab.nn import LSTM, runtime; "
        "LSTM(1, 16)(np.zeros((7, 32, 1), np.float32)); print(runtime.describe()['backend'])"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "OMP_DISPLAY_ENV": "VERBOSE", "PYTHONPATH": ROOT, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    shown = out.stderr + out.stdout
    if out.stdout.strip().splitlines()[-1] != "compiled" or "OPENMP DISPLAY ENVIRONMENT" not in shown:
        pytest.skip("no OpenMP runtime loaded here (the NumPy backend): nothing spins")
    if "GOMP_SPINCOUNT" not in shown:
        pytest.skip("not GNU OpenMP: its display names no spin count to check")
    return shown


def test_the_libraries_read_the_policy_before_they_start():
    # libgomp shows an unset policy as 'PASSIVE' too; its spin count tells them apart
    assert "GOMP_SPINCOUNT = '0'" in _openmp_sees(4.0)  # busy: workers sleep at once
    assert "GOMP_SPINCOUNT = '300000'" in _openmp_sees(0.0)  # idle: the library's default spin
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in _openmp_sees(4.0, OMP_WAIT_POLICY="ACTIVE")
