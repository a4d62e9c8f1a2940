"""`rnnlab experiment ...` end to end through rnnlab.cli.main, with tiny settings."""

import json

import pytest

from rnnlab.cli import main

TINY = [
    "--length",
    "6",
    "--steps",
    "12",
    "--hidden",
    "6",
    "--eval-every",
    "4",
    "--test-size",
    "16",
    "--quiet",
]


def _is_png(path):
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_adding_writes_plots_and_report(tmp_path, capsys):
    files = {k: str(tmp_path / f"{k}.png") for k in ("plot", "grad", "gates")}
    report = tmp_path / "adding.json"
    rc = main(
        [
            "experiment",
            "adding",
            "--cell",
            "all",
            *TINY,
            "--plot",
            files["plot"],
            "--grad-plot",
            files["grad"],
            "--gate-plot",
            files["gates"],
            "--report",
            str(report),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "baseline: predict 1 always, MSE 0.1667" in out
    for cell in ("rnn", "lstm", "gru"):
        assert f"\n{cell} " in out
    for path in files.values():
        assert _is_png(path), path
    data = json.loads(report.read_text())
    assert set(data) == {"rnn", "lstm", "gru", "config"}
    assert data["lstm"]["history"][-1] == [12, data["lstm"]["test_mse"]]
    assert data["config"]["length"] == 6 and data["config"]["wall_time_s"] > 0
    norms = data["gru"]["hidden_grad_norms"]  # --grad-plot's numbers, (T,) each
    assert len(norms["untrained"]) == len(norms["trained"]) == 6


def test_copy_writes_accuracy_report(tmp_path, capsys):
    report = tmp_path / "copy.json"
    plot, grad = tmp_path / "copy.png", tmp_path / "copy_grad.png"
    rc = main(
        [
            "experiment",
            "copy",
            "--cell",
            "gru",
            *TINY,
            "--n-symbols",
            "3",
            "--n-recall",
            "2",
            "--plot",
            str(plot),
            "--grad-plot",
            str(grad),
            "--report",
            str(report),
        ]
    )
    assert rc == 0
    assert "chance: 1/3 = 33.3%" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert set(data) == {"gru", "config"} and 0 <= data["gru"]["accuracy"] <= 1
    assert _is_png(plot) and _is_png(grad)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cell", "transformer"], "invalid choice: 'transformer' (choose from"),
        (["--steps", "0"], "argument --steps: must be a positive integer, got '0'"),
        (["--lr", "fast"], "argument --lr: must be a positive number, got 'fast'"),
        (["--length", "1"], "argument --length: must be an integer >= 2, got '1'"),
    ],
)
def test_bad_option_values_are_rejected_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["experiment", "adding", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--plot", "curves.txt"], "must end with .png"),
        (["--report", "out/missing/r.json"], "does not exist"),
        (["--cell", "gru", "--gate-plot", "g.png"], "use --cell lstm or all"),
    ],
)
def test_bad_values_give_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["experiment", "adding", *TINY, *argv])
    except SystemExit as e:  # refused by the parser (an output folder is checked there)
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("rnnlab experiment") and ": error:" in err and message in err
    assert err.count("\n") == 1


def test_learning_rate_per_cell(tmp_path):
    report = tmp_path / "r.json"
    rc = main(
        ["experiment", "adding", "--cell", "all", *TINY, "--lr", "0.02,rnn=1e-3", "--report", str(report)]
    )
    assert rc == 0
    data = json.loads(report.read_text())
    assert data["config"]["lr"] == {"rnn": 1e-3, "lstm": 0.02, "gru": 0.02}
    assert [data[c]["lr"] for c in ("rnn", "lstm", "gru")] == [1e-3, 0.02, 0.02]


def test_bad_learning_rate_names_the_cells(capsys):
    with pytest.raises(SystemExit):
        main(["experiment", "copy", "--lr", "0.01,transformer=1"])
    assert "'transformer' is not a cell" in capsys.readouterr().err
