"""Finding and loading the GEMM libraries (``gemm.py``: MKL, OpenBLAS; ``onednn.py``: oneDNN).

``load(name)`` looks for the library's shared object in this environment's ``lib`` folders and
on the loader's path (MKL and oneDNN come as wheels, ``rnnlab[fast]``), or takes the OpenBLAS
NumPy itself loaded; a library that does not load is simply not offered (None).
"""

from __future__ import annotations

import ctypes.util
import os
import site
import sys
from collections.abc import Callable

from rnnlab.nn.backend.gemm import MKL, Library, OpenBLAS, numpy_openblas_path
from rnnlab.nn.backend.onednn import OneDNN

NAMES = ("mkl", "openblas", "onednn")
_FILES = {
    "mkl": (("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so"), "mkl_rt"),
    "onednn": (("libdnnl.so.3", "libdnnl.so"), "dnnl"),
}
_CLASSES: dict[str, Callable[[str], Library]] = {"mkl": MKL, "openblas": OpenBLAS, "onednn": OneDNN}


def _lib_paths(names, short):
    dirs = [os.path.join(p, "lib") for p in (sys.prefix, sys.base_prefix, site.USER_BASE) if p]
    for d in dirs:
        for name in names:
            yield os.path.join(d, name)
    found = ctypes.util.find_library(short)
    if found:
        yield found


def load(name: str) -> Library | None:
    """The library ``name`` ("mkl", "openblas", "onednn"), or None when it does not load here."""
    if sys.platform != "linux" or name not in NAMES:
        return None
    paths = [numpy_openblas_path()] if name == "openblas" else list(_lib_paths(*_FILES[name]))
    for path in paths:
        if not path or (not os.path.exists(path) and os.sep in path):
            continue
        try:
            return _CLASSES[name](path)
        except (OSError, AttributeError):
            continue
    return None
