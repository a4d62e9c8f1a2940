"""numba's on-disk cache of the compiled backend, kept in step with its sources.

numba keys a cached function on its own file's time stamp. A compiled function that calls one
in another file keeps that callee's machine code in its own cache entry: after an edit or a
``git pull`` in an editable install that changes only the callee's file (``infer_cells.py``, say),
the caller (``bf16_loops.py``'s loop) would go on running the old callee. ``kernels.py``, which
every compiled module imports before it defines a compiled function, calls ``drop_if_stale``
first: a SHA-256 of all the backend's sources is kept beside the cache, and where it differs the
cache entries are removed (numba rebuilds each on first use). A fresh ``pip install`` writes
every file anew, which numba's own check already catches; this covers the in-tree cache only
(``NUMBA_CACHE_DIR`` or a read-only tree: numba's own check alone).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STAMP = "rnnlab-sources.sha256"  # beside numba's files in __pycache__


def sources_digest(folder: Path) -> str:
    """SHA-256 over the names and bytes of the ``*.py`` files in ``folder``, in name order."""
    h = hashlib.sha256()
    for f in sorted(folder.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def drop_if_stale(folder: Path) -> bool:
    """Remove numba's cache entries (``*.nbi``, ``*.nbc``) in ``folder/__pycache__`` when the
    sources' digest differs from the one kept there, then keep the new one (written atomically);
    whether entries were dropped. Nothing happens where the cache cannot be written."""
    cache, digest = folder / "__pycache__", sources_digest(folder)
    stamp = cache / STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass  # no stamp yet: every entry is suspect
    try:
        cache.mkdir(exist_ok=True)
        dropped = [f for f in cache.iterdir() if f.suffix in (".nbi", ".nbc")]
        for f in dropped:
            f.unlink(missing_ok=True)
        tmp = cache / f"{STAMP}.{os.getpid()}.tmp"
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:  # a read-only install: numba keeps its cache elsewhere
        return False
    return bool(dropped)
