"""rnnlab.distributed: the world of one (no MPI), sharding, and under ``mpiexec -n 2`` the
exactness of data-parallel Adam steps, the parameter hashes, and a failing or killed rank."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from mpi_helpers import HERE, ROOT, run_mpi

from rnnlab import distributed


@pytest.mark.parametrize("n,size", [(7, 2), (8, 2), (2, 3), (0, 2), (10, 4), (5, 1)])
def test_shards_are_contiguous_even_and_cover_the_batch(n, size):
    bounds = [distributed.shard_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])), bounds
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True), sizes


def test_shard_bounds_rejects_a_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        distributed.shard_bounds(4, 2, 2)


def test_launch_detection_reads_the_launchers_variables():
    assert not distributed.launched_under_mpi({})
    assert not distributed.launched_under_mpi({"PMI_SIZE": "1"})
    assert distributed.launched_under_mpi({"PMI_SIZE": "2"})
    assert distributed.launched_under_mpi({"OMPI_COMM_WORLD_SIZE": "4"})
    assert distributed.launched_under_mpi({"RNNLAB_MPI": "1"})


def test_without_mpi_the_world_is_one_and_mpi4py_is_not_imported():
    code = (
        "import sys; from rnnlab import distributed as d; w = d.world(); "
        "print(w.size, w.rank, w.sum(2.5), w.any(False), 'mpi4py' in sys.modules)"
    )
    env_clean = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env_clean, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "0", "2.5", "False", "False"]


def test_world_of_one_allreduce_is_the_weighted_gradient():
    from rnnlab.nn import Linear

    m = Linear(3, 2, dtype=np.float64, seed=0)
    m.grads["weight"][...] = 2.0
    m.grads["bias"][...] = 4.0
    distributed.World().allreduce_gradients(m, 0.25)  # unflattened: packed, reduced, unpacked
    assert np.all(m.grads["weight"] == 0.5) and np.all(m.grads["bias"] == 1.0)


@pytest.fixture(scope="module")
def exact():
    out = run_mpi([HERE / "mpi_cases.py", "exact"], timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("key", ["float64-flat", "float64-tensors", "float32-flat", "float32-tensors"])
def test_two_ranks_equal_gradient_accumulation_bitwise(exact, key):
    assert exact["size"] == 2
    res = exact[key]
    assert res["moved"] > 1e-3, "training did not move the parameters: the comparison is empty"
    assert res["accum_bitwise"] and res["accum"] == [0.0, 0.0], f"{key}: differs by {res['accum']}"


WHOLE = [("float64-flat", 1e-12), ("float32-flat", 1e-6), ("float32-tensors", 1e-6)]


@pytest.mark.parametrize("key,tol", WHOLE)
def test_two_ranks_match_the_whole_batch(exact, key, tol):
    assert exact[key]["whole"][1] <= tol, f"{key}: max relative difference {exact[key]['whole'][1]:.2e}"


def test_parameter_hashes_agree_across_ranks(exact):
    for key, hashes in exact["rank_hashes"].items():
        assert len(hashes) == 2 and hashes[0] == hashes[1], f"{key}: {hashes}"


def test_a_raising_rank_aborts_the_job_with_one_line_naming_it():
    out = run_mpi([HERE / "mpi_cases.py", "fault"], timeout=30)
    assert out.returncode != 0
    assert "got past the collectives" not in out.stdout
    lines = [ln for ln in out.stderr.splitlines() if "deliberate failure" in ln]
    assert lines == ["mpi_cases: rank 1 of 2: ValueError: deliberate failure; aborting the job"], out.stderr


def test_a_killed_rank_ends_the_job():
    out = run_mpi([HERE / "mpi_cases.py", "killed"], timeout=30)
    assert out.returncode != 0
    assert "got past the collectives" not in out.stdout
