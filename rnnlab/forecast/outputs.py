"""Writing outputs all or nothing: check the place first, write a temp file, rename it."""
from __future__ import annotations

import os
import tempfile

from rnnlab.errors import UserError


def check_output_path(path: str, suffix: str, option: str) -> str:
    """Fail before training if an output file cannot be written where asked."""
    path = os.path.abspath(path)
    if not path.lower().endswith(suffix):
        raise UserError(f"{option} must name a {suffix} file, got {path}")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise UserError(f"{option}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise UserError(f"{option}: {path} is a directory")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{option}: cannot write into {folder}")
    return path


def atomic_write(path: str, write) -> str:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it to ``path``."""
    path = os.path.abspath(path)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".rnnlab-", suffix=suffix, dir=os.path.dirname(path))
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                       # mkstemp makes 0600; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
