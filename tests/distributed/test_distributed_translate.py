"""``mpiexec -n 2 rnnlab translate train``: each rank a shard of every batch, the same training
as one process (float32, within 1e-6 relative), one rank printing and writing, and a checkpoint
that resumes with 2 ranks (bit for bit) or with 1, also after a rank was killed mid-epoch."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from mpi_helpers import run_mpi, start_mpi

from rnnlab.cli import main
from rnnlab.io import read_tensors

WORDS = "the cat dog sees a big small red blue house tree runs eats".split()
TINY = ["--hidden", "16", "--emb", "8", "--batch-size", "15", "--min-freq", "1", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(900):
        s = list(rng.choice(WORDS, rng.integers(2, 6)))
        lines.append(" ".join(s) + f" {i % 7} .\t" + " ".join(w.upper() for w in s[::-1]) + " .")
    path = tmp_path_factory.mktemp("data") / "toy.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_args(out, corpus_file, epochs):
    return ["translate", "train", "--out", str(out), "--pairs", str(corpus_file), "--epochs", str(epochs)]


def mpi_train(out, corpus_file, epochs, *extra):
    argv = [*train_args(out, corpus_file, epochs), *TINY, "--cell", "lstm", *extra]
    res = run_mpi(["-m", "rnnlab.cli", *argv], timeout=60)
    assert res.returncode == 0, res.stderr
    return res


def weights(run_dir):
    """The last epoch's weights (the checkpoint's; the model holds the best valid epoch's)."""
    return read_tensors(run_dir / "checkpoint" / "model.safetensors")


def max_rel(a, b):
    assert sorted(a) == sorted(b)
    d = max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)
    return d / max(float(np.abs(b[k]).max()) for k in b)


@pytest.fixture(scope="module")
def runs(corpus_file, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    dist = mpi_train(base / "dist", corpus_file, 2)
    assert main([*train_args(base / "single", corpus_file, 2), *TINY, "--cell", "lstm"]) == 0
    return base, dist


def test_two_ranks_train_as_one_process_does(runs):
    base, _ = runs
    a, b = weights(base / "dist"), weights(base / "single")
    moved = read_tensors(base / "dist" / "model.safetensors")  # the best (first) epoch's
    assert max_rel(a, moved) > 1e-4, "the second epoch changed nothing: the comparison is empty"
    assert max_rel(a, b) <= 1e-6


def test_only_rank_0_prints_and_the_run_is_complete(runs):
    base, dist = runs
    assert dist.stdout.count("done: 2 epochs") == 1, dist.stdout
    assert dist.stdout.count("data: ") == 1 and "2 ranks" in dist.stdout
    assert (base / "dist" / "translator.json").is_file() and (base / "dist" / "config.json").is_file()


def test_a_two_rank_checkpoint_resumes_with_two_ranks_exactly_and_with_one(runs, corpus_file):
    base, _ = runs
    mpi_train(base / "cut", corpus_file, 1)
    shutil.copytree(base / "cut", base / "cut1")
    mpi_train(base / "cut", corpus_file, 2, "--resume")
    full, resumed = weights(base / "dist"), weights(base / "cut")
    for k in full:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)
    resume_alone = ["translate", "train", "--out", str(base / "cut1"), "--resume", "--epochs", "2", "--quiet"]
    assert main(resume_alone) == 0
    assert max_rel(weights(base / "cut1"), full) <= 1e-6


def _ranks_of(out) -> list:
    """The pids of the Python ranks training into ``out`` (not mpiexec, not its proxies)."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            proc.name.isdigit()
            and argv[0].decode(errors="replace") == sys.executable
            and str(out).encode() in argv
        ):
            pids.append(int(proc.name))
    return sorted(pids)


def test_a_rank_killed_mid_epoch_leaves_a_checkpoint_that_resumes_exactly(runs, corpus_file):
    """SIGKILL of one rank while epoch 2 or 3 trains: the job ends, the checkpoint on disk is a
    whole earlier epoch's, and --resume with 2 ranks gives the uninterrupted run's weights bit for bit."""
    base, _ = runs
    out = base / "killed"
    argv = ["-m", "rnnlab.cli", *train_args(out, corpus_file, 3), *TINY, "--cell", "lstm"]
    job = start_mpi(argv)
    state = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 60
    while not state.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.exists() and job.poll() is None, "the job ended (or hung) before its first checkpoint"
    ranks = _ranks_of(out)
    assert len(ranks) == 2, ranks
    os.kill(ranks[-1], signal.SIGKILL)
    try:
        job.wait(timeout=60)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail("the job did not end after one of its ranks was killed")
    assert job.returncode != 0
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done <= 2, f"the checkpoint says epoch {done}: the kill came after the job's end"
    read_tensors(out / "checkpoint" / "model.safetensors")  # whole: it loads
    mpi_train(out, corpus_file, 2, "--resume")
    full, resumed = weights(base / "dist"), weights(out)
    for k in full:
        np.testing.assert_array_equal(resumed[k], full[k], err_msg=k)
