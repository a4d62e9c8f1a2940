"""Running a program under ``mpiexec -n 2`` from pytest: skipped (with the reason) only when
mpi4py or an ``mpiexec`` is missing; every run is bounded by a timeout."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (the mpich wheel puts it there), else on PATH."""
    beside = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def need_mpi() -> str:
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    exe = mpiexec()
    if exe is None:
        pytest.skip("no mpiexec beside this Python or on PATH (pip install -e '.[mpi]')")
    return exe


def _command(args, n: int) -> tuple[list, dict]:
    """``mpiexec -n n python ARGS`` and its environment: one BLAS thread per rank."""
    exe = need_mpi()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", RNNLAB_TUNE="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    return [exe, "-n", str(n), sys.executable, *map(str, args)], env


def run_mpi(args, n=2, timeout=60, cwd=None) -> subprocess.CompletedProcess:
    """``mpiexec -n n python ARGS`` with one BLAS thread per rank; fails the test on a timeout."""
    cmd, env = _command(args, n)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s (a rank hung?): {e.stderr!r}")


def start_mpi(args, n=2) -> subprocess.Popen:
    """``run_mpi`` started, not waited for (its output discarded): for a test that acts on a
    running job."""
    cmd, env = _command(args, n)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
