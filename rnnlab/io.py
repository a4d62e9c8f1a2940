"""Files, all or nothing: every model, checkpoint, report and plot rnnlab writes goes through here.

    atomic_write(path, write)     write(tmp) into a fresh temporary file beside ``path``, fsync,
                                  rename over ``path``, fsync the folder: a crash leaves the old
                                  file or the new one, never half of either
    write_json / write_tensors    JSON (strict: no NaN) and safetensors, atomically
    read_tensors                  safetensors (no pickle: safe on a file from anyone)
    check_output_path             fail BEFORE a long run if an output cannot be written there

Temporary names are unique per call (``tempfile.mkstemp``), so two runs writing the same
target never collide.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from rnnlab.errors import UserError


def _fsync_dir(folder) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write) -> str:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = os.path.abspath(str(path))
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".rnnlab-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; use the usual mode
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)
    return path


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path, obj, indent=1) -> str:
    """Strict JSON (NaN and inf refused), atomically."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=False)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, write)


def write_tensors(path, tensors) -> str:
    """A dict of arrays as safetensors, atomically (0-d arrays stay 0-d)."""
    from safetensors.numpy import save_file

    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(arrays, tmp))


def read_tensors(path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


def check_output_path(path, suffix: str, option: str) -> str:
    """Fail before training if an output file cannot be written where asked."""
    path = os.path.abspath(str(path))
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
