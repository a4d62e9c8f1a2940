"""`rnnlab forecast` under ``mpiexec -n 2``: the ensemble members are spread over the ranks
(member k on rank k mod K: they are independent, and an allreduce per tiny step would cost more
than the step), every rank then holds all of them, bit for bit what one process trains; only
rank 0 prints and writes."""

import json
import os
import subprocess
import sys

from mpi_helpers import HERE, ROOT, run_mpi

ENV1 = dict(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", RNNLAB_TUNE="0")


def _alone(args, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(ENV1, PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def test_two_ranks_fit_the_same_ensemble_as_one_process(tmp_path):
    res = run_mpi([HERE / "forecast_case.py", tmp_path], timeout=120)
    assert res.returncode == 0, res.stderr
    ranks = [json.loads((tmp_path / f"rank{r}-of-2.json").read_text()) for r in (0, 1)]
    one = _alone([HERE / "forecast_case.py", tmp_path])
    assert one.returncode == 0, one.stderr
    alone = json.loads((tmp_path / "rank0-of-1.json").read_text())
    for r in ranks:  # every rank holds every member, bitwise the single process's
        assert r["hashes"] == alone["hashes"] and len(set(r["hashes"])) == 3
        assert r["shrinks"] == alone["shrinks"] and r["pred"] == alone["pred"]


def test_data_parallel_two_ranks_equal_two_shards_accumulated_bitwise(tmp_path):
    """parallel="data" (issue 35 item 8): each rank a shard of every batch of the panel's global
    model, the gradients summed with one allreduce; two ranks equal one process that accumulates
    the same two shards, bit for bit, and every rank holds the same networks."""
    res = run_mpi([HERE / "forecast_data_case.py", tmp_path], timeout=180)
    assert res.returncode == 0, res.stderr
    ranks = [json.loads((tmp_path / f"data-rank{r}-of-2.json").read_text()) for r in (0, 1)]
    one = _alone([HERE / "forecast_data_case.py", tmp_path])
    assert one.returncode == 0, one.stderr
    alone = json.loads((tmp_path / "data-rank0-of-1.json").read_text())
    for r in ranks:
        assert r["hashes"] == alone["hashes"] and len(set(r["hashes"])) == 2
        assert r["shrinks"] == alone["shrinks"] and r["pred"] == alone["pred"]


def test_two_shards_in_one_process_are_the_full_batchs_gradient():
    """The in-process accumulation equals the unsharded batch up to float rounding (a check of
    the weights w_r = b_r / B), on a small network."""
    import numpy as np

    from rnnlab.forecast.estimator.train import Net, _sharded_step
    from rnnlab.nn import MSELoss

    rng = np.random.default_rng(0)
    net = Net("lstm", 5, 1, 1, 0.0, "pytorch", np.random.default_rng(1), 1)
    _, G = net.flatten_parameters()
    xb = rng.standard_normal((6, 7, 1)).astype(np.float32)  # (W, B, 1), B = 7: shards 4 and 3
    yb = rng.standard_normal((7, 1)).astype(np.float32)
    loss_fn = MSELoss()
    G[...] = 0
    full = loss_fn(net(xb), yb)
    net.backward(loss_fn.backward())
    want = G.copy()
    got_loss = _sharded_step(net, loss_fn, xb, yb, 2, G)
    assert abs(got_loss - float(full)) < 1e-6
    np.testing.assert_allclose(G, want, rtol=1e-5, atol=1e-7)


def test_the_command_prints_and_writes_on_rank_0_only(tmp_path):
    args = [
        "-m",
        "rnnlab.cli",
        "forecast",
        "--baselines",
        "simple",
        "--epochs",
        "2",
        "--ensemble",
        "3",
        "--hidden",
        "4",
        "--no-plot",
        "--report",
        "r.json",
        "--save",
        "m",
    ]
    res = run_mpi(args, timeout=180, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("Test metrics") == 1 and res.stdout.count("rnnlab forecast:") == 1
    mpi = json.loads((tmp_path / "r.json").read_text())
    alone_dir = tmp_path / "alone"
    alone_dir.mkdir()
    one = _alone(args, cwd=alone_dir)
    assert one.returncode == 0, one.stderr
    ref = json.loads((alone_dir / "r.json").read_text())
    assert mpi["metrics"] == ref["metrics"] and mpi["predictions"] == ref["predictions"]
    assert sorted(os.listdir(tmp_path / "m")) == sorted(os.listdir(alone_dir / "m"))
