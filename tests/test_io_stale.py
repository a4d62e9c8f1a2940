"""rnnlab/stale.py: the ``.rnnlab-*.tmp`` directories of killed saves are removed by the next
write beside them, only when stale and held by no live writer (issue 34)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rnnlab import stale
from rnnlab.io import write_dir

pytestmark = pytest.mark.skipif(stale.fcntl is None, reason="flock: POSIX only")

WRITER = textwrap.dedent(
    """
    import sys, time
    from rnnlab.io import write_dir
    def fill(tmp):
        open(tmp + "/config.json", "w").write("{}")
        print(tmp, flush=True)
        time.sleep(600)  # killed here, mid-save
    write_dir(sys.argv[1], fill)
    """
)


def age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def fill(tmp):
    with open(os.path.join(tmp, "config.json"), "w") as f:
        f.write("{}")


def start_writer(target):
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    return p, p.stdout.readline().strip()  # its temporary directory, being filled


def test_a_killed_save_is_cleaned_by_the_next_write_but_not_while_it_lives(tmp_path):
    target = tmp_path / "m"
    p, left = start_writer(target)
    try:
        age(left, 2 * stale.STALE_SECONDS)  # old, but its writer is alive
        write_dir(tmp_path / "other", fill)
        assert os.path.isdir(left)  # held: kept
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        p.kill()
        p.wait()
    assert os.path.isdir(left) and not target.exists()  # what SIGKILL leaves
    write_dir(tmp_path / "other", fill)
    assert not os.path.exists(left)
    assert sorted(os.listdir(tmp_path)) == ["other"]


def test_only_stale_temporary_directories_are_removed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    work = tmp_path / "work"
    work.mkdir()
    kinds = {
        ".rnnlab-stale.tmp": "dir",
        ".rnnlab-fresh.tmp": "dir",  # another writer's, just begun
        ".rnnlab-old-x": "dir",  # a two-rename swap's old model: maybe the only copy
        ".rnnlab-file.tmp": "file",
        ".rnnlab-link.tmp": "link",
        "user.tmp": "dir",
    }
    for name, kind in kinds.items():
        path = work / name
        if kind == "dir":
            path.mkdir()
            (path / "x").write_text("x")
        elif kind == "file":
            path.write_text("x")
        else:
            path.symlink_to(outside)
        if name != ".rnnlab-fresh.tmp":
            age(path, 2 * stale.STALE_SECONDS)
    write_dir(work / "m", fill)
    assert sorted(os.listdir(work)) == sorted(set(kinds) - {".rnnlab-stale.tmp"} | {"m"})
    assert (outside / "keep.txt").read_text() == "mine"
    assert stale.clean_stale(work, now=time.time() + 2 * stale.STALE_SECONDS) == [".rnnlab-fresh.tmp"]


def test_a_directory_held_in_this_process_is_kept(tmp_path):
    d = tmp_path / ".rnnlab-held.tmp"
    d.mkdir()
    fd = stale.hold(str(d))
    assert fd is not None
    try:
        assert stale.clean_stale(tmp_path, now=time.time() + 10 * stale.STALE_SECONDS) == []
    finally:
        os.close(fd)
    assert stale.clean_stale(tmp_path, now=time.time() + 10 * stale.STALE_SECONDS) == [d.name]


def test_the_owner_of_a_folder_removes_what_a_killed_writer_left_at_once(tmp_path):
    """A training run cleans its own ``--out`` with a small ``min_age``: a temporary a killed save
    left a moment ago goes; one a live writer holds, or one just made (its writer between
    ``mkdtemp`` and ``flock``), stays."""
    p, left = start_writer(tmp_path / "m")
    try:
        assert stale.clean_stale(tmp_path, min_age=0) == []  # alive: held
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        p.kill()
        p.wait()
    fresh = tmp_path / ".rnnlab-fresh.tmp"
    fresh.mkdir()
    age(left, 2 * stale.OWNER_GRACE_SECONDS)
    assert stale.clean_stale(tmp_path, min_age=stale.OWNER_GRACE_SECONDS) == [os.path.basename(left)]
    assert sorted(os.listdir(tmp_path)) == [fresh.name]
