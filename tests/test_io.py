"""rnnlab.io: directories written as a whole, the modes the umask asks for, strict reading back,
reports without NaN (docs/RELIABILITY.md)."""

import json
import os
import stat
import threading

import numpy as np
import pytest

from rnnlab import io


def _fill(files):
    def fill(tmp):
        for name, text in files.items():
            io.atomic_write(os.path.join(tmp, name), lambda p, t=text: open(p, "w").write(t))

    return fill


def test_write_dir_replaces_the_whole_directory_and_keeps_what_is_asked(tmp_path):
    d = tmp_path / "d"
    io.write_dir(d, _fill({"a.txt": "1", "b.txt": "1"}))
    io.write_dir(d, _fill({"a.txt": "2"}), keep=("b.txt",))
    assert sorted(os.listdir(d)) == ["a.txt", "b.txt"] and (d / "a.txt").read_text() == "2"
    io.write_dir(d, _fill({"c.txt": "3"}))
    assert os.listdir(d) == ["c.txt"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab")]


def test_a_failed_write_leaves_the_old_directory_untouched(tmp_path):
    d = tmp_path / "d"
    io.write_dir(d, _fill({"a.txt": "old"}))

    def broken(tmp):
        _fill({"a.txt": "new"})(tmp)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.write_dir(d, broken)
    assert (d / "a.txt").read_text() == "old"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab")]


def test_concurrent_writers_never_fail_and_never_leave_a_mix(tmp_path):
    d, errors = tmp_path / "d", []

    def writer(k):
        try:
            for _ in range(15):
                io.write_dir(d, _fill({"a.txt": str(k), "b.txt": str(k)}))
        except Exception as e:  # noqa: BLE001 - any failure is the test's failure
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert (d / "a.txt").read_text() == (d / "b.txt").read_text()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab")]


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_files_and_folders_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        io.write_dir(tmp_path / "d", _fill({"a.txt": "x"}))
        io.write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o777 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "a.txt").st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o666 & ~mask


def test_check_target_dir_refuses_what_is_not_ours_unless_overwrite(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.json").write_text("mine")
    with pytest.raises(io.UserError, match="holds other files"):
        io.check_target_dir(tmp_path / "d", lambda d: False, "--save", "forecast model")
    io.check_target_dir(tmp_path / "d", lambda d: False, "--save", "forecast model", overwrite=True)
    io.check_target_dir(tmp_path / "d", lambda d: True, "--save", "forecast model")
    io.check_target_dir(tmp_path / "no" / "d", lambda d: True, "--save", "forecast model")  # made later
    with pytest.raises(io.UserError, match="not a directory"):
        io.check_target_dir(tmp_path / "d" / "config.json" / "x", lambda d: True, "--save", "forecast model")


def test_reading_back_is_strict(tmp_path):
    for text, needle in (("[]", "not an object"), ('{"a": NaN}', "NaN"), ("{", "Expecting")):
        (tmp_path / "x.json").write_text(text)
        with pytest.raises(ValueError, match=needle):
            io.read_json_object(tmp_path / "x.json")
    schema = {"n": "int", "x": "number|null", "s": "str"}
    io.check_schema({"n": 1, "x": None, "s": ""}, schema, "cfg")
    for bad in ({"n": True, "x": 1, "s": ""}, {"n": 1, "x": "1", "s": ""}, {"n": 1, "s": ""}, [1]):
        with pytest.raises(ValueError, match="cfg"):
            io.check_schema(bad, schema, "cfg")
    with pytest.raises(ValueError, match="'w'"):
        io.check_finite({"v": np.ones(2), "w": np.array([1.0, np.nan])}, "model")


def test_reports_write_null_and_say_why_instead_of_nan(tmp_path):
    path = tmp_path / "r.json"
    io.write_report(path, {"metrics": {"mae": float("nan"), "rmse": 1.0}, "loss": [np.float32("inf")]})
    r = json.loads(path.read_text())  # strict JSON: json.loads would accept NaN, the text has none
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert r["metrics"] == {"mae": None, "rmse": 1.0} and r["loss"] == [None]
    assert set(r["nulls"]) == {"metrics.mae", "loss[0]"} and "not a finite number" in r["nulls"]["loss[0]"]


def test_an_unwritable_folder_is_found_by_trying(tmp_path):
    assert io.can_write_into(tmp_path)
    assert not io.can_write_into(tmp_path / "missing")
    if os.path.isdir("/proc"):
        assert not io.can_write_into("/proc")  # root's mode bits say yes; the kernel says no
