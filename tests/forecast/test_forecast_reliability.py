"""The defects of issue 20 in `rnnlab forecast`, each pinned: hangs, tracebacks, lost files,
silent wrong answers (docs/RELIABILITY.md)."""

import json
import os
import time

import numpy as np
import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli
from forecast_helpers import TINY, random_walk, write_csv

from rnnlab.errors import UserError
from rnnlab.forecast import Forecaster
from rnnlab.forecast.series import data as D
from rnnlab.io import read_tensors, write_tensors

FAST = ["--epochs", "1", "--hidden", "4", "--ensemble", "1", "--window", "5", "--test-size", "20"]
FAST += ["--quiet", "--no-plot", "--baselines", "simple"]
FAST += ["--target", "diff"]  # one Forecaster's directory (a Combination's: test_forecast_combination)


def run(capsys, *argv):
    return run_cli(["forecast", *argv], capsys)


@pytest.fixture
def csv_path(tmp_path):
    return write_csv(tmp_path / "series.csv", random_walk())


@pytest.fixture
def model_dir(tmp_path, capsys, csv_path):
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(tmp_path / "m"))
    assert code == 0, err
    return tmp_path / "m"


def test_a_test_fraction_near_one_answers_at_once(capsys, csv_path):
    t0 = time.perf_counter()
    for size in ("0.9999999999", "99999999999999999"):
        code, _, err = run(capsys, "--csv", csv_path, *FAST, "--test-size", size)
        one_line(code, err, "too short")
    assert time.perf_counter() - t0 < 5
    assert D.min_length(7, 1, "diff", 0.5) == 2 * D.min_train_length(7, 1, "diff")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--seed", "-1"], "--seed"),
        (["--lr", "inf"], "--lr"),
        (["--weight-decay", "nan"], "--weight-decay"),
        (["--valid-size", "0.9999"], "--valid-size"),
        (["--hidden", "200000"], "--hidden"),
        (["--window", "10000000"], "--window"),
        (["--save", "/dev/null/m"], "--save"),  # a file stands in the way
        (["--report", "{tmp}/no/r.json"], "--report"),
        (["--plot", "{tmp}/p.txt"], "--plot"),
        (["--save", "{tmp}/series.csv"], "not a directory"),
    ],
)
def test_bad_values_are_one_line_before_any_work(argv, needle, tmp_path, capsys, csv_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    t0 = time.perf_counter()
    code, out, err = run(capsys, "--csv", csv_path, *FAST, *argv)
    one_line(code, err, needle)
    assert "Test metrics" not in out and time.perf_counter() - t0 < 5


def test_save_makes_the_missing_folders_above_it(tmp_path, capsys, csv_path):
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(tmp_path / "runs" / "a" / "m"))
    assert code == 0, err
    assert (tmp_path / "runs" / "a" / "m" / "config.json").is_file()
    assert sorted(os.listdir(tmp_path / "runs" / "a")) == ["m"]  # no temporary left beside it


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc, a folder no one can write into")
def test_an_unwritable_save_folder_fails_before_training(capsys, csv_path):
    code, out, err = run(capsys, "--csv", csv_path, *FAST, "--save", "/proc/m")
    one_line(code, err, "cannot write into /proc")
    assert "Test metrics" not in out


def test_save_refuses_what_is_not_a_forecast_model(tmp_path, capsys, csv_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "config.json").write_text('{"mine": true}')  # named like a model's file, but not one
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(d))
    one_line(code, err, "--overwrite")
    assert os.listdir(d) == ["config.json"] and (d / "config.json").read_text() == '{"mine": true}'
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(d), "--overwrite")
    assert code == 0, err
    assert sorted(os.listdir(d)) == ["config.json", "model.safetensors"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab")]


@pytest.mark.parametrize(
    "files",
    [
        # a translator's run directory (translate train --out): config.json beside model.safetensors
        {"config.json": '{"train": {}}', "model.safetensors": "w", "translator.json": "{}", "ckpt/x": "c"},
        # a Hugging Face-style model directory
        {"config.json": '{"model_type": "bert"}', "model.safetensors": "w", "tokenizer.json": "{}"},
        # a forecast model of an earlier release had no marker; without one it is not taken for ours
        {"config.json": '{"params": {}}', "model.safetensors": "w"},
    ],
)
def test_save_never_replaces_another_programs_model_directory(tmp_path, capsys, csv_path, files):
    d = tmp_path / "theirs"
    for name, text in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(text)
    before = {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()}
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(d))
    one_line(code, err, "--overwrite")
    assert {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()} == before
    assert all((d / n).read_text() == t for n, t in files.items())
    # with --overwrite rnnlab writes its two files and keeps every other one
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(d), "--overwrite")
    assert code == 0, err
    assert json.loads((d / "config.json").read_text())["format"] == "rnnlab-forecaster"
    theirs = {n: t for n, t in files.items() if n not in ("config.json", "model.safetensors")}
    assert all((d / n).read_text() == t for n, t in theirs.items())
    assert Forecaster.load(d).window == 5
    # now it is ours: a second save replaces our files only, and still keeps the others
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(d))
    assert code == 0, err
    assert {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()} == before | {"model.safetensors"}


def test_a_save_over_our_own_model_keeps_the_users_files(model_dir, capsys, csv_path):
    (model_dir / "NOTES.md").write_text("my notes")
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(model_dir))
    assert code == 0, err
    assert (model_dir / "NOTES.md").read_text() == "my notes"


@pytest.mark.parametrize("kind", ["fifo", "deep", "dir"])
def test_a_config_that_is_no_regular_json_file_is_one_line(model_dir, capsys, csv_path, kind):
    cfg = model_dir / "config.json"
    os.remove(cfg)
    if kind == "fifo":
        os.mkfifo(cfg)  # reading it would block forever
    elif kind == "deep":
        cfg.write_text("[" * 100_000 + "]" * 100_000)
    else:
        cfg.mkdir()
    t0 = time.time()
    code, _, err = run(capsys, "predict", "--model", str(model_dir))
    one_line(code, err, str(model_dir))
    code, _, err = run(capsys, "--csv", csv_path, *FAST, "--save", str(model_dir))
    one_line(code, err, "--overwrite")
    assert time.time() - t0 < 30


def test_a_saved_model_carries_its_format_and_older_ones_still_load(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["format"] == "rnnlab-forecaster" and cfg["format_version"] == 1
    del cfg["format"], cfg["format_version"]  # a model saved before the marker
    (model_dir / "config.json").write_text(json.dumps(cfg))
    assert Forecaster.load(model_dir).window == 5
    cfg["format"] = "rnnlab-translator"
    (model_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="format"):
        Forecaster.load(model_dir)


def test_predict_never_opens_a_path_from_the_model_nor_the_bundled_data(model_dir, tmp_path, capsys):
    os.remove(tmp_path / "series.csv")  # the training CSV has moved
    code, out, err = run(capsys, "predict", "--model", str(model_dir), "--steps", "2")
    assert code == 0, err
    assert "saved in" in out and "btc" not in out
    cfg = json.loads((model_dir / "config.json").read_text())
    other = write_csv(tmp_path / "other.csv", random_walk(seed=5, start=9000.0))
    cfg["series"] = {"path": other, "column": "Close", "date_column": "Date"}  # no saved history
    (model_dir / "config.json").write_text(json.dumps(cfg))
    code, out, err = run(capsys, "predict", "--model", str(model_dir))
    one_line(code, err, "--csv")  # it asks; it does not read other.csv


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda c: [1, 2], "not an object"),
        (lambda c: {**c, "series": [1]}, "series"),
        (lambda c: {**c, "params": {**c["params"], "hidden_size": 10**9}}, "hidden_size"),
        (lambda c: {**c, "params": {**c["params"], "window": "7"}}, "window"),
        (lambda c: {**c, "scaler": {"mean": 0.0, "scale": -1.0}}, "scale"),
        (lambda c: {**c, "shrink": [2.0]}, "shrink"),
    ],
)
def test_crafted_model_directories_are_one_line(model_dir, capsys, edit, needle):
    cfg = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps(edit(cfg)))
    code, _, err = run(capsys, "predict", "--model", str(model_dir))
    one_line(code, err, needle)


def test_nan_weights_are_refused(model_dir, capsys):
    w = read_tensors(model_dir / "model.safetensors")
    name = sorted(w)[0]
    w[name] = np.full_like(w[name], np.nan)
    write_tensors(model_dir / "model.safetensors", w)
    code, out, err = run(capsys, "predict", "--model", str(model_dir))
    one_line(code, err, "NaN")
    assert "nan" not in out


def test_steps_are_bounded(model_dir, capsys):
    code, _, err = run(capsys, "predict", "--model", str(model_dir), "--steps", "2000000")
    one_line(code, err, "--steps")


def test_values_near_1e300_are_refused_with_the_reason(tmp_path, capsys):
    path = write_csv(tmp_path / "huge.csv", random_walk() * 1e298)
    code, _, err = run(capsys, "--csv", path, *FAST, "--report", str(tmp_path / "r.json"))
    one_line(code, err, "overflow")
    assert not (tmp_path / "r.json").exists()


def test_time_zone_offsets_are_converted_and_said(tmp_path):
    path = tmp_path / "tz.csv"
    rows = ["Date,Close"] + [f"2020-01-{d:02d}T00:30:00+05:00,{100 + d}" for d in range(1, 29)]
    path.write_text("\n".join(rows) + "\n")
    s = D.load_series(path)
    assert s.date_str(0) == "2020-01-01" and s.tz == "+05:00"  # the local day, not UTC's 2019-12-31
    assert any("UTC+05:00" in n for n in s.notes)
    rows[5] = "2020-01-05T00:30:00-03:00,105"  # mixed offsets: pandas refuses them without utc=True
    path.write_text("\n".join(rows) + "\n")
    s = D.load_series(path)
    assert len(s) == 28 and any("offsets" in n for n in s.notes)


def test_dates_after_2262_load(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text("Date,Close\n" + "".join(f"2300-01-{d:02d},{d}\n" for d in range(1, 29)))
    assert D.load_series(path).date_str(-1) == "2300-01-28"


def test_a_diverging_fit_says_so(tmp_path):
    y = random_walk(160)
    cfg = {k: v for k, v in TINY.items() if k not in ("test_size", "train_windows", "preset")}
    cfg.update(lr=1e30, clip=None, valid_size=0.0, shrink=False, epochs=3)
    with pytest.raises(UserError, match="diverged"):
        Forecaster(**cfg).fit(y)
