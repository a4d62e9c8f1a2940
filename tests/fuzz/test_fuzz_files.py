"""Random CSV contents and random corruptions of saved model directories: the loaders answer
with a result or one clear line (``UserError``, exit 2), never a traceback; and a save that is
killed at a random moment leaves the old model or the new one, whole."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from fuzz_helpers import random_walk, run_cli, snapshot, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.errors import UserError
from rnnlab.forecast import Combination, Forecaster
from rnnlab.forecast.series import data as D

DATES = st.one_of(
    st.dates().map(str),
    st.dates().map(lambda d: d.strftime("%m/%d/%Y")),
    st.builds(
        lambda d, h: f"{d}T{h:02d}:00:00{'+05:00' if h % 2 else '-08:00'}", st.dates(), st.integers(0, 23)
    ),
    st.sampled_from(["", "yesterday", "2262-04-12", "1677-09-20", "9999-12-31", "0000-00-00", "2020-02-30"]),
)
CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.floats(-1e6, 1e6).map(lambda v: f"{v:.3f}"),
    st.sampled_from(["", "NA", "null", "1,5", "1e300", "-1e308", "abc", '"3"', "1e-320"]),
)
SEPARATORS = st.sampled_from([",", ";", "\t", "|"])
ENCODINGS = st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-8-sig"])


@given(st.lists(st.tuples(DATES, CELLS), max_size=60), SEPARATORS, ENCODINGS, st.binary(max_size=8))
def test_random_csv_contents_load_or_say_why(rows, sep, encoding, junk):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.csv")
        text = f"Date{sep}Close\n" + "".join(f"{d}{sep}{v}\n" for d, v in rows)
        with open(path, "wb") as fh:
            fh.write(text.encode(encoding, errors="replace") + junk)
        try:
            s = D.load_series(path)
        except UserError as e:
            assert "\n" not in str(e)
            return
        assert np.isfinite(s.values).all() and (np.diff(s.dates).astype(int) > 0).all()
        assert np.abs(s.values).max(initial=0) <= D.MAX_ABS_VALUE


@pytest.mark.slow
@given(st.lists(CELLS, min_size=40, max_size=120), st.sampled_from(["level", "diff", "logreturn"]))
def test_random_series_through_the_whole_command(values, target):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.csv")
        with open(path, "w") as fh:
            fh.write(
                "Date,Close\n"
                + "".join(
                    f"2020-01-01T00:00:00+00:00,{v}\n".replace(
                        "2020-01-01", str(np.datetime64("2020-01-01") + i)
                    )
                    for i, v in enumerate(values)
                )
            )
        argv = [
            "forecast",
            "--baselines",
            "simple",
            "--csv",
            path,
            "--epochs",
            "1",
            "--hidden",
            "3",
            "--ensemble",
            "1",
            "--window",
            "3",
        ]
        run_cli(
            [
                *argv,
                "--test-size",
                "5",
                "--target",
                target,
                "--quiet",
                "--no-plot",
                "--report",
                os.path.join(tmp, "r.json"),
            ]
        )
        if os.path.exists(os.path.join(tmp, "r.json")):
            with open(os.path.join(tmp, "r.json")) as fh:
                json.loads(fh.read(), parse_constant=lambda c: pytest.fail(f"{c} in the report"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One forecast model (with its saved history), one combination of two and one translator,
    made once."""
    root = tmp_path_factory.mktemp("models")
    y = random_walk(120)
    csv = write_csv(root / "s.csv", y)
    fast = ["--epochs", "1", "--hidden", "3", "--ensemble", "1", "--window", "4", "--test-size", "10"]
    fast += ["--baselines", "simple", "--target", "diff"]
    assert run_cli(["forecast", "--csv", csv, *fast, "--quiet", "--no-plot", "--save", root / "f"])[0] == 0
    f = Forecaster.load(root / "f")
    c = Combination([f, Forecaster(**{**f.get_params(), "target": "level"}).fit(y[:110])])
    c.series_info_ = f.series_info_
    c.save(root / "c")
    (root / "p.tsv").write_text("".join(f"a b {i % 4} .\tB A {i % 4} .\n" for i in range(60)))
    tiny = ["--hidden", "4", "--emb", "4", "--min-freq", "1", "--epochs", "1", "--quiet"]
    assert run_cli(["translate", "train", "--out", root / "t", "--pairs", root / "p.tsv", *tiny])[0] == 0
    return root


def _corrupt(data, path):
    """One random corruption of the file ``path``."""
    raw = open(path, "rb").read()
    how = data.draw(st.sampled_from(["truncate", "flip", "json", "delete", "empty"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif how == "flip" and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1 :]
    elif how == "json" and path.endswith(".json"):
        obj = json.loads(raw)
        odd = st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.text(max_size=5))
        odd = st.one_of(odd, st.lists(st.integers(), max_size=3), st.just({}), st.just(1e308))
        node = obj
        while isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], dict) or data.draw(st.booleans()):
                node[key] = data.draw(odd)
                break
            node = node[key]
        raw = json.dumps(obj).encode()
    elif how == "delete":
        os.remove(path)
        return
    elif how == "empty":
        raw = b""
    open(path, "wb").write(raw)


@given(st.data())
def test_corrupted_model_directories_load_or_say_why(models, data):
    kind = data.draw(st.sampled_from(["f", "c", "t"]))
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "m")
        shutil.copytree(models / kind, d)
        files = sorted(os.path.relpath(os.path.join(r, n), d) for r, _, ns in os.walk(d) for n in ns)
        for name in data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=2, unique=True)):
            _corrupt(data, os.path.join(d, name))
        if data.draw(st.booleans()):  # swap a file between the two applications
            other = models / ("f" if kind == "t" else "t")
            src = data.draw(st.sampled_from(sorted(os.listdir(other))))
            if os.path.isfile(other / src):
                shutil.copy(
                    other / src,
                    os.path.join(
                        d, data.draw(st.sampled_from(["config.json", "translator.json", "model.safetensors"]))
                    ),
                )
        if kind in ("f", "c"):
            run_cli(["forecast", "predict", "--model", d, "--steps", "3"])
        else:
            run_cli(["translate", "run", "--model", d, "a b 1 ."])
            before = snapshot(d)
            code, _, _ = run_cli(["translate", "train", "--out", d, "--resume", "--epochs", "1", "--quiet"])
            if code == 2:
                assert snapshot(d) == before


@given(
    st.dictionaries(
        st.sampled_from(["config.json", "model.safetensors", "notes.txt", "a"]),
        st.binary(max_size=30),
        min_size=1,
    )
)
def test_save_never_replaces_what_is_not_a_model(models, files):
    model = Forecaster.load(models / "f")
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "d")
        os.mkdir(d)
        for name, raw in files.items():
            open(os.path.join(d, name), "wb").write(raw)
        try:
            model.save(d)
        except UserError:
            assert snapshot(d) == files
        else:  # only a directory that already was a forecast model may be replaced
            assert json.loads(files["config.json"]).get("format", "rnnlab-forecaster") == "rnnlab-forecaster"


SAVER = """
import sys
from rnnlab.forecast import Combination, Forecaster
f = Forecaster.load(sys.argv[1])
print("ready", flush=True)
while True:
    f.shrinks_ = [1.0 - f.shrinks_[0]]
    f.save(sys.argv[2])
"""


@pytest.mark.slow
@given(st.floats(0.0, 0.3))
def test_a_save_killed_at_a_random_moment_leaves_a_whole_model(models, delay):
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "m")
        shutil.copytree(models / "f", target)
        p = subprocess.Popen([sys.executable, "-c", SAVER, str(models / "f"), target], stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        f = Forecaster.load(target)  # the old one or a new one, whole
        s0 = Forecaster.load(models / "f").shrinks_[0]
        assert f.shrinks_[0] in (s0, 1.0 - s0)
        assert sorted(os.listdir(target)) == ["config.json", "model.safetensors"]


def _train_cmd(corpus, out, epochs, *extra):
    tiny = ["--hidden", "8", "--emb", "4", "--batch-size", "32", "--min-freq", "1", "--quiet"]
    return [
        sys.executable,
        "-m",
        "rnnlab.cli",
        "translate",
        "train",
        "--pairs",
        str(corpus),
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        *tiny,
        *extra,
    ]


@pytest.fixture(scope="module")
def toy_corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = "le chat chien voit mange".split()
    lines = [
        " ".join(s) + "\t" + " ".join(w.upper() for w in s[::-1])
        for s in (rng.choice(words, 3) for _ in range(300))
    ]
    path = tmp_path_factory.mktemp("corpus") / "toy.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
@settings(max_examples=6, deadline=None)  # a few seconds each: two processes, a short training
@given(st.floats(0.0, 1.0))
def test_a_training_run_killed_at_a_random_moment_resumes_or_says_why(toy_corpus, delay):
    """`translate train` checkpoints every epoch as one unit: killed at any moment (here during
    its first epochs), the run directory holds a whole checkpoint or none, and `--resume` either
    finishes the run (exit 0, a model that loads) or says in one line that there is nothing to
    resume (exit 2); no temporary file is left under a target name."""
    from rnnlab.translate import Translator

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        p = subprocess.Popen(
            _train_cmd(toy_corpus, out, 40), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(1.0 + 2.0 * delay)  # past start-up: into the epochs and their checkpoints
        p.send_signal(signal.SIGKILL)
        p.wait()
        res = subprocess.run(
            _train_cmd(toy_corpus, out, 3, "--resume"), capture_output=True, text=True, timeout=300
        )
        assert "Traceback" not in res.stderr, res.stderr
        if res.returncode == 2:  # killed before the first checkpoint
            assert len(res.stderr.strip().splitlines()) == 1, res.stderr
            return
        assert res.returncode == 0, res.stderr
        Translator.load(out)  # whole
        names = [n for n in os.listdir(out) if not n.startswith(".")]
        assert all(not n.startswith(".rnnlab-") for n in os.listdir(out)), os.listdir(out)
        assert names
