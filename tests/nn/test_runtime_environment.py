"""A bad ``RNNLAB_*`` value is one line when the engine is used, and ``--help`` still works
(issue 34: `RNNLAB_BACKEND=gpu rnnlab forecast --help` was an import-time traceback)."""

import os
import subprocess
import sys

import pytest

from rnnlab.errors import UserError
from rnnlab.nn import runtime

BAD = [
    ("RNNLAB_BACKEND", "gpu"),
    ("RNNLAB_GEMM", "cuda"),
    ("RNNLAB_NUM_THREADS", "two"),
    ("RNNLAB_NUM_THREADS", "0"),
    ("RNNLAB_SCRATCH_MIB", "lots"),
    ("RNNLAB_SCRATCH_MIB", "-1"),
    ("RNNLAB_MIN_THREAD_WORK", "small"),
    ("RNNLAB_MIN_THREAD_WORK", "-5"),
    ("RNNLAB_MIN_THREAD_WORK", "inf"),
]


def rnnlab(*argv, **env):
    env = {**os.environ, **env}
    cmd = [sys.executable, "-m", "rnnlab.cli", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("name,value", BAD)
def test_a_bad_value_is_named_by_the_environment_reader(name, value):
    with pytest.raises(ValueError, match=f"^{name}='{value}' must be "):
        runtime._from_environment({name: value})


def test_good_values_still_read():
    env = {
        "RNNLAB_BACKEND": " NumPy ",
        "RNNLAB_GEMM": "mkl",
        "RNNLAB_NUM_THREADS": "3",
        "RNNLAB_SCRATCH_MIB": "8",
        "RNNLAB_MIN_THREAD_WORK": " 1e6 ",
    }
    s = runtime._from_environment(env)
    assert (s.backend, s.gemm, s.threads, s.scratch_mib, s.min_thread_work) == ("numpy", "mkl", 3, 8.0, 1e6)
    assert runtime._from_environment({"RNNLAB_MIN_THREAD_WORK": "0"}).min_thread_work == 0
    assert runtime._from_environment({}).min_thread_work == runtime.Settings().min_thread_work
    assert runtime._from_environment({"RNNLAB_NO_FUSED": "1", "OMP_NUM_THREADS": "x"}).backend == "numpy"


@pytest.mark.parametrize("name,value", BAD[:1] + BAD[2:3])
def test_help_works_and_every_command_refuses_in_one_line(name, value):
    res = rnnlab("forecast", "--help", **{name: value})
    assert res.returncode == 0 and "usage: rnnlab forecast" in res.stdout, res.stderr
    for argv in (
        ["forecast", "--csv", "/nonexistent.csv"],
        ["translate", "run", "--model", "/nonexistent", "hello"],
        ["bench"],
    ):
        res = rnnlab(*argv, **{name: value})
        assert res.returncode == 2, res.stderr
        assert res.stderr.startswith(f"rnnlab {argv[0]}: error: {name}={value!r} must be "), res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_settings_refuse_until_the_code_sets_them(monkeypatch):
    monkeypatch.setattr(runtime, "_environment_problem", "RNNLAB_BACKEND='gpu' must be one of ...")
    with pytest.raises(UserError, match="RNNLAB_BACKEND='gpu'"):
        runtime.settings()
    with runtime.override(backend="numpy"):
        assert runtime.settings().backend == "numpy"
