"""MPI jobs that must end (issue 34): a rank that leaves normally while another waits in a
collective, and ranks started with different command lines."""

import os
import subprocess
import sys
import time

from mpi_helpers import HERE, ROOT, need_mpi, run_mpi


def test_a_rank_that_leaves_early_ends_the_job_with_one_line_naming_it(monkeypatch):
    monkeypatch.setenv("RNNLAB_MPI_EXIT_WAIT", "3")
    t0 = time.time()
    res = run_mpi([HERE / "exit_case.py"], timeout=90)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if "exit-case" in ln]
    assert len(lines) == 1 and "rank 1 of 2 finished" in lines[0], res.stderr
    assert time.time() - t0 < 60


def test_ranks_with_different_arguments_stop_before_training(tmp_path):
    exe = need_mpi()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", RNNLAB_TUNE="0", PYTHONPATH=str(ROOT))
    base = [sys.executable, "-m", "rnnlab.cli", "forecast", "--no-plot", "--quiet", "--hidden", "4"]
    cmd = [exe, "-n", "1", *base, "--epochs", "2", ":", "-n", "1", *base, "--epochs", "4"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if "rnnlab forecast" in ln]
    assert len(lines) == 1 and "--epochs 4" in lines[0] and "--epochs 2" in lines[0], res.stderr
    assert "Test metrics" not in res.stdout
