"""``rnnlab --version``: the package's version on stdout, exit 0, nothing else."""

from conftest import run_cli

import rnnlab


def test_version_is_printed(capsys):
    code, out, err = run_cli(["--version"], capsys)
    assert code == 0 and err == ""
    assert out == f"rnnlab {rnnlab.__version__}\n"
