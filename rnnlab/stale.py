"""The temporaries of killed writes: ``write_dir`` fills a ``.rnnlab-*.tmp`` directory beside its
target and removes it when done, so one that stays was left by a process that died (SIGKILL, a
power cut). The next write beside it removes those unchanged for ``STALE_SECONDS`` that no live
writer holds: a writer holds an exclusive ``flock`` on its own while it works, and the kernel
drops the lock when the process dies, however it dies. Nothing else is touched: files, links
and every other name stay (the old directory of a two-rename swap, ``.rnnlab-old-*``, may be
the only copy of a model).
"""

from __future__ import annotations

import os
import shutil
import stat
import time

try:
    import fcntl
except ImportError:  # pragma: no cover (not POSIX: stale directories are known by age alone)
    fcntl = None  # type: ignore[assignment]

STALE_SECONDS = 3600  # a write_dir directory this much older than its last change was killed
OWNER_GRACE_SECONDS = 1.0  # covers a writer's mkdtemp -> flock (microseconds) many times over


def hold(path: str) -> int | None:
    """A descriptor of the directory ``path`` holding an exclusive ``flock`` (None where there
    is none to take); released when it is closed, or when the process dies however it dies."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def clean_stale(parent, now: float | None = None, min_age: float = STALE_SECONDS) -> list[str]:
    """Remove the ``.rnnlab-*.tmp`` directories in ``parent`` that killed writes left (``write_dir``
    fills one beside its target and removes it when done): those unchanged for ``min_age`` seconds
    and locked by no live writer. A process that owns ``parent`` (a training run in its ``--out``)
    passes a small ``min_age``: the lock alone then tells the dead from the living (without
    ``flock`` age is all there is, and ``STALE_SECONDS`` holds). Returns the names removed; a
    failure removes nothing more."""
    now = time.time() if now is None else now
    min_age = STALE_SECONDS if fcntl is None else min_age
    try:
        names = sorted(n for n in os.listdir(parent) if n.startswith(".rnnlab-") and n.endswith(".tmp"))
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(str(parent), name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or now - st.st_mtime < min_age:
            continue  # a file, a link (never followed) or a directory in use
        fd = hold(path)
        if fd is None and fcntl is not None:
            continue  # a live writer holds it
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
        finally:
            if fd is not None:
                os.close(fd)
    return removed
