"""backend/numba_cache.py: numba's cache entries of the backend are dropped when any backend
source changes (a caller's entry holds its callees' code from other files), kept otherwise."""

from __future__ import annotations

import os

import pytest

from rnnlab.nn.backend import numba_cache


def _tree(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    entries = [cache / "a.f-1.py311.nbi", cache / "a.f-1.py311.1.nbc", cache / "b.cpython-311.pyc"]
    for f in entries:
        f.write_bytes(b"old")
    return cache, entries


def test_entries_go_when_any_source_changes_and_stay_while_none_does(tmp_path):
    cache, (nbi, nbc, pyc) = _tree(tmp_path)
    assert numba_cache.drop_if_stale(tmp_path)  # no stamp yet: nothing cached can be trusted
    assert not nbi.exists() and not nbc.exists() and pyc.exists()  # Python's own .pyc stays
    assert (cache / numba_cache.STAMP).read_text() == numba_cache.sources_digest(tmp_path)

    nbi.write_bytes(b"new")
    assert not numba_cache.drop_if_stale(tmp_path) and nbi.exists()  # the same sources

    (tmp_path / "b.py").write_text("y = 3\n")  # the callee's file only
    assert numba_cache.drop_if_stale(tmp_path) and not nbi.exists()
    assert not numba_cache.drop_if_stale(tmp_path)
    assert not [f for f in os.listdir(cache) if f.endswith(".tmp")]


def test_a_read_only_cache_is_left_alone(tmp_path, monkeypatch):
    cache, (nbi, _, _) = _tree(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(type(nbi), "unlink", refuse)
    assert not numba_cache.drop_if_stale(tmp_path)
    assert nbi.exists()


def test_the_backend_is_in_step_after_import():
    """Importing the compiled kernels leaves the backend's stamp equal to its sources."""
    from pathlib import Path

    pytest.importorskip("numba")
    from rnnlab.nn.backend import kernels

    folder = Path(kernels.__file__).parent
    stamp = folder / "__pycache__" / numba_cache.STAMP
    if not os.access(folder, os.W_OK):
        pytest.skip("a read-only tree: numba keeps its cache elsewhere")
    assert stamp.read_text() == numba_cache.sources_digest(folder)
