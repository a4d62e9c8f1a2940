"""The defects of issue 34 in `rnnlab forecast`, each pinned (docs/RELIABILITY.md)."""

import os
import re
import time

import pytest
from conftest import assert_one_line as one_line
from conftest import run_cli
from forecast_helpers import random_walk, write_csv

FAST = ["--epochs", "1", "--hidden", "4", "--ensemble", "1", "--window", "5", "--test-size", "20"]
FAST += ["--quiet", "--no-plot", "--baselines", "simple", "--target", "diff"]


def run(capsys, *argv):
    return run_cli(["forecast", *argv], capsys)


@pytest.fixture
def csv_path(tmp_path):
    return write_csv(tmp_path / "series.csv", random_walk())


@pytest.mark.parametrize("extra", [[], ["--likelihood", "none"]])
def test_a_horizon_the_series_cannot_support_is_refused_before_training_with_the_longest(
    capsys, csv_path, extra
):
    """--horizon 1000 on a short series trained for minutes, then ended in a ValueError. It is
    refused at once, and the longest horizon it names is exact: it runs, one more is refused."""
    t0 = time.perf_counter()
    code, out, err = run(capsys, "--csv", csv_path, *FAST, *extra, "--horizon", "1000")
    one_line(code, err, "--horizon 1000")
    assert time.perf_counter() - t0 < 5 and "epoch" not in out
    longest = int(re.search(r"at most (\d+)", err).group(1))
    assert 1 < longest < 1000
    code, _, err = run(capsys, "--csv", csv_path, *FAST, *extra, "--horizon", str(longest + 1))
    one_line(code, err, f"at most {longest}")
    code, _, err = run(capsys, "--csv", csv_path, *FAST, *extra, "--horizon", str(longest))
    assert code == 0, err


@pytest.mark.parametrize("likelihood", ["quantile", "gaussian"])
@pytest.mark.parametrize("interval", ["0.99999999999", "1e-12", "0.8,0.99999999999"])
def test_an_interval_whose_levels_round_to_0_and_1_is_refused_at_parse_time(capsys, likelihood, interval):
    """Its levels rounded to 0 and 1: a traceback after training (quantile), or a 1,077-character
    line (gaussian). Now one line before the data is read (the CSV does not exist)."""
    argv = ["--csv", "/nonexistent.csv", "--likelihood", likelihood, "--interval", interval]
    code, _, err = run(capsys, *argv)
    one_line(code, err, "argument --interval: coverage ")
    assert len(err) < 300


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model saved once for the module (the edits below copy it)."""
    import contextlib
    import io

    from rnnlab.cli import main

    tmp = tmp_path_factory.mktemp("saved")
    csv = write_csv(tmp / "series.csv", random_walk())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["forecast", "--csv", csv, *FAST, "--save", str(tmp / "m")]) == 0
    return tmp / "m"


def edited(saved, tmp_path, edit):
    import json
    import shutil

    target = tmp_path / "m"
    shutil.copytree(saved, target)
    cfg = json.loads((target / "config.json").read_text())
    edit(cfg)
    (target / "config.json").write_text(json.dumps(cfg))
    return str(target)


def _set(*keys_value):
    *keys, value = keys_value

    def edit(cfg):
        for k in keys[:-1]:
            cfg = cfg[k]
        cfg[keys[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit,needle",
    [
        (_set("params", "seed", -1), "seed must be an integer >= 0"),
        (_set("covariates", "spec", {"past": 5, "future": [], "calendar": None}), "covariates['spec']"),
        (_set("covariates", "spec", {"past": [3], "future": [], "calendar": None}), "covariates['spec']"),
        (_set("covariates", "spec", {"past": ["a"], "future": [], "calendar": None}), "as many columns"),
        (_set("covariates", "spec", {"past": [], "future": [], "calendar": "x"}), "no calendar cycle"),
        (_set("covariates", "spec", [1]), "covariates['spec']"),
        (_set("scaler", "mean", 1e308), "scaler: 'mean' and 'scale' must lie within"),
        (_set("scaler", "scale", 1e308), "scaler: 'mean' and 'scale' must lie within"),
        (_set("calibration", "factors", [[1e308], [1e308]]), "calibration['factors']"),
    ],
)
def test_an_edited_model_is_one_line_on_load(capsys, saved, tmp_path, edit, needle):
    """params.seed -1 and a wrong-typed covariates.spec ended in tracebacks; a scaler mean of
    1e308 printed seven warnings before its error; calibration factors of 1e308 gave infinite
    intervals with exit 0."""
    model = edited(saved, tmp_path, edit)
    code, out, err = run(capsys, "predict", "--model", model, "--steps", "3")
    one_line(code, err, needle)
    assert "inf" not in out


def test_the_unedited_model_still_predicts(capsys, saved, tmp_path):
    code, out, err = run(
        capsys, "predict", "--model", edited(saved, tmp_path, lambda c: None), "--steps", "3"
    )
    assert code == 0 and err == "", err


def _tree(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("error", ["safetensors", "oserror"])
def test_a_full_disk_during_save_is_one_line_and_the_old_model_stays(
    capsys, saved, tmp_path, monkeypatch, error
):
    """A full disk while the weights were written ended in a SafetensorError traceback."""
    import errno

    import safetensors.numpy
    from safetensors import SafetensorError

    model = edited(saved, tmp_path, lambda c: None)
    before = _tree(tmp_path / "m")

    def full(*a, **k):
        if error == "safetensors":  # what safetensors raises on ENOSPC
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, .. })")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    csv = write_csv(tmp_path / "series.csv", random_walk())
    code, _, err = run(capsys, "--csv", csv, *FAST, "--save", model, "--overwrite")
    one_line(code, err, f"cannot write {model}: {os.strerror(errno.ENOSPC)}; it is unchanged")
    assert _tree(tmp_path / "m") == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rnnlab-")]
    monkeypatch.undo()
    code, _, err = run(capsys, "predict", "--model", model, "--steps", "2")
    assert code == 0, err


def test_export_refuses_an_existing_file_without_overwrite(capsys, saved, tmp_path):
    """`forecast export --out` replaced an existing file (`translate export` refuses)."""
    pytest.importorskip("onnx")
    out = tmp_path / "f.onnx"
    out.write_bytes(b"mine")
    code, _, err = run(capsys, "export", "--model", str(saved), "--out", str(out))
    one_line(code, err, "--overwrite")
    assert out.read_bytes() == b"mine"
    code, _, err = run(capsys, "export", "--model", str(saved), "--out", str(out), "--overwrite")
    assert code == 0 and out.read_bytes() != b"mine", err


def test_the_python_api_refuses_the_horizon_before_training_too():
    from rnnlab.errors import UserError
    from rnnlab.forecast import Forecaster
    from rnnlab.forecast.series.horizons import max_horizon

    y = random_walk(200)
    f = Forecaster(target="diff", horizon=40, epochs=1, ensemble=1, hidden_size=4, season=1, window=5)
    _, longest = max_horizon(len(y), 5, 1, "diff", 1, f.valid_size, True)
    assert longest < 40
    with pytest.raises(UserError, match=f"at most {longest};"):
        f.fit(y)
    f.set_params(horizon=longest).fit(y)  # the longest named trains
    f.set_params(horizon=1000, likelihood="none").fit(y)  # nothing calibrated: any horizon fits
