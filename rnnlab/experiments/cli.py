"""`rnnlab experiment adding | copy`: train the cells, print a table, write plots and a report.

    rnnlab experiment adding --length 100 --plot adding.png --grad-plot grads.png \
                             --gate-plot gates.png --report adding.json
    rnnlab experiment copy --length 100 --steps 3000 --lr 1e-2,rnn=1e-3,lstm=3e-3 --plot copy.png

Thin: it parses, calls ``run_adding`` / ``run_copy``, and writes what they return.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from rnnlab import cliargs
from rnnlab.errors import UserError
from rnnlab.experiments import plots, probes
from rnnlab.experiments.models import CELLS
from rnnlab.experiments.train import run_adding, run_copy
from rnnlab.io import STDOUT, write_report

CELL_CHOICES = (*CELLS, "all")


def _rates(text):
    """'0.01' -> 0.01;  '1e-2,rnn=1e-3' -> {"default": 0.01, "rnn": 0.001}."""
    rates = {}
    for item in text.split(","):
        cell, _, value = item.rpartition("=")
        cell = cell.strip() or "default"
        if cell not in (*CELLS, "default"):
            raise argparse.ArgumentTypeError(
                f"{cell!r} is not a cell; write a rate (0.01) or rates per cell "
                f"(0.01,rnn=0.001) with cells {', '.join(CELLS)}"
            )
        rates[cell] = cliargs.positive_float(value.strip())
    return rates["default"] if list(rates) == ["default"] else rates


def _common(p, length, min_length, what, steps, lr):
    """The options both experiments take: the task, the training, the outputs."""
    _task_arguments(p, length, min_length, what, steps)
    _training_arguments(p, lr)
    _output_arguments(p)


def _task_arguments(p, length, min_length, what, steps):
    """Which cells, the sequence length (``what`` it means for this task), how many steps."""
    p.add_argument(
        "--cell",
        choices=CELL_CHOICES,
        default="all",
        help="which cell to train (default: all, one after another)",
    )
    p.add_argument(
        "--length",
        type=cliargs.number(int, min_length, f"an integer >= {min_length}"),
        default=length,
        metavar="T",
        help=f"{what} (default: {length})",
    )
    p.add_argument(
        "--steps",
        type=cliargs.positive_int,
        default=steps,
        metavar="N",
        help=f"training steps, each on a fresh random batch (default: {steps})",
    )


def _training_arguments(p, lr):
    """Model size, batch, Adam rate(s), clipping, the test batch and the seed."""
    p.add_argument(
        "--hidden", type=cliargs.hidden_size, default=128, metavar="H", help="hidden units (default: 128)"
    )
    p.add_argument(
        "--batch-size",
        type=cliargs.positive_int,
        default=32,
        metavar="B",
        help="sequences per training step (default: 32)",
    )
    p.add_argument(
        "--lr",
        type=_rates,
        default=lr,
        metavar="LR",
        help=f"Adam learning rate, or one per cell: 1e-2,rnn=1e-3 (default: {lr:g})",
    )
    p.add_argument(
        "--clip",
        type=cliargs.positive_float,
        default=1.0,
        help="clip the global gradient norm to this (default: 1.0)",
    )
    p.add_argument(
        "--eval-every",
        type=cliargs.positive_int,
        default=100,
        metavar="N",
        help="score the held-out test batch every N steps (default: 100)",
    )
    p.add_argument(
        "--test-size",
        type=cliargs.positive_int,
        default=500,
        metavar="N",
        help="sequences in the fixed held-out test batch (default: 500)",
    )
    p.add_argument(
        "--seed",
        type=cliargs.number(int, 0, "an integer >= 0"),
        default=0,
        help="seed for weights, training batches and test batch (default: 0)",
    )
    p.add_argument(
        "--time-budget",
        type=cliargs.positive_float,
        metavar="MINUTES",
        help="stop each cell's training after this many minutes, short of --steps (default: no limit)",
    )
    cliargs.add_threads(p)


def _output_arguments(p):
    """The plots and the report to write, and the progress bar."""
    p.add_argument("--plot", metavar="FILE.png", help="write the learning curves here")
    p.add_argument(
        "--grad-plot",
        metavar="FILE.png",
        help="write ||dL/dh_t|| over t, untrained vs trained, for each cell",
    )
    p.add_argument(
        "--gate-plot",
        metavar="FILE.png",
        help="write the trained LSTM's gates for one test example (needs lstm)",
    )
    p.add_argument(
        "--report",
        metavar="FILE.json",
        type=cliargs.output_file(".json"),
        help="write the results as JSON here (- : standard output; the rest then goes to stderr)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "experiment",
        help="LSTM and GRU remember where a plain RNN forgets: measure it",
        description="Long-memory experiments: train RNN, LSTM and GRU on the same batches and "
        "compare them on a held-out test batch.",
    )
    sub = p.add_subparsers(dest="experiment", metavar="{adding,copy}")
    sub.required = True
    a = sub.add_parser(
        "adding",
        help="the adding problem (Hochreiter & Schmidhuber 1997)",
        description="Each step holds a number in [0, 1) and a marker; two steps "
        "are marked; predict their sum. Predicting 1 scores MSE 1/6.",
    )
    _common(a, length=100, min_length=2, what="sequence length T", steps=2000, lr=1e-2)
    a.set_defaults(func=_run)
    c = sub.add_parser(
        "copy",
        help="the copy (memory) task: reproduce symbols after a delay",
        description="Read K symbols, wait T blank steps, see a go marker, then "
        "reproduce the K symbols. Guessing scores 1 / alphabet.",
    )
    _common(
        c, length=20, min_length=0, what="blank steps T between reading and recalling", steps=2000, lr=1e-2
    )
    c.add_argument(
        "--n-symbols",
        type=cliargs.number(int, 2, "an integer >= 2"),
        default=8,
        metavar="A",
        help="alphabet size; chance accuracy is 1/A (default: 8)",
    )
    c.add_argument(
        "--n-recall",
        type=cliargs.positive_int,
        default=5,
        metavar="K",
        help="how many symbols to remember (default: 5)",
    )
    c.set_defaults(func=_run)
    return p


def _check_out(path, ext):
    if path is None or (path == STDOUT and ext == ".json"):  # --report -: standard output
        return path
    if not path.lower().endswith(ext):
        raise UserError(f"output file {path!r} must end with {ext}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"folder {folder!r} for {path!r} does not exist")
    return path


def _run(args):
    for path, ext in (
        (args.plot, ".png"),
        (args.grad_plot, ".png"),
        (args.report, ".json"),
        (args.gate_plot, ".png"),
    ):
        _check_out(path, ext)
    if args.gate_plot and args.cell not in ("lstm", "all"):
        raise UserError(f"--gate-plot shows the LSTM's gates; use --cell lstm or all, not {args.cell}")
    common = dict(
        cells=args.cell,
        length=args.length,
        steps=args.steps,
        hidden_size=args.hidden,
        batch_size=args.batch_size,
        lr=args.lr,
        clip=args.clip,
        eval_every=args.eval_every,
        test_size=args.test_size,
        seed=args.seed,
        progress=not args.quiet,
        time_budget=args.time_budget,
    )
    t0 = time.perf_counter()
    if args.experiment == "adding":
        exp = run_adding(**common)
    else:
        exp = run_copy(**common, n_symbols=args.n_symbols, n_recall=args.n_recall)
    wall = time.perf_counter() - t0
    _print_table(exp, wall)
    if args.plot:
        plots.plot_history(exp, args.plot)
        print(f"wrote {args.plot}")
    norms = None
    if args.grad_plot:
        norms = probes.gradient_norms(exp)
        plots.plot_gradients(norms, args.grad_plot)
        print(f"wrote {args.grad_plot}")
    if args.gate_plot:
        task = "adding problem" if exp.task == "adding" else "copy task"
        plots.plot_gates(
            probes.lstm_gates(exp.models["lstm"], exp.test[0], example=0),
            args.gate_plot,
            title=f"Trained LSTM on the {task}, T = {args.length}",
        )
        print(f"wrote {args.gate_plot}")
    if args.report:
        report = exp.report()
        report["config"]["wall_time_s"] = round(wall, 2)
        for cell, pair in (norms or {}).items():  # the gradient picture's numbers
            report[cell]["hidden_grad_norms"] = {k: v.tolist() for k, v in pair.items()}
        write_report(args.report, report)  # strict JSON; a non-finite number is null, with the reason
        print(f"wrote {args.report}")
    return 0


def _print_table(exp, wall, out=None):
    out = out or sys.stdout
    cfg = exp.config
    if exp.task == "adding":
        print(
            f"\nadding problem, T = {cfg['length']}, {cfg['steps']} steps of batch "
            f"{cfg['batch_size']}, hidden {cfg['hidden_size']}, test batch {cfg['test_size']}",
            file=out,
        )
        print(f"{'cell':<6}{'lr':>8}{'test MSE':>10}{'/ baseline':>12}{'time (s)':>10}", file=out)
        for cell, run in exp.runs.items():
            print(
                f"{cell:<6}{run['lr']:>8g}{run['test_mse']:>10.4f}"
                f"{run['test_mse'] / cfg['baseline_mse']:>12.3f}{run['wall_time_s']:>10.1f}",
                file=out,
            )
        print(
            f"baseline: predict 1 always, MSE {cfg['baseline_mse']:.4f} "
            f"({cfg['baseline_test_mse']:.4f} on this test batch)",
            file=out,
        )
    else:
        print(
            f"\ncopy task, {cfg['n_recall']} of {cfg['n_symbols']} symbols across "
            f"{cfg['length']} blank steps, {cfg['steps']} steps of batch {cfg['batch_size']}, "
            f"hidden {cfg['hidden_size']}",
            file=out,
        )
        print(f"{'cell':<6}{'lr':>8}{'accuracy':>10}{'time (s)':>10}", file=out)
        for cell, run in exp.runs.items():
            print(f"{cell:<6}{run['lr']:>8g}{run['accuracy']:>10.1%}{run['wall_time_s']:>10.1f}", file=out)
        print(f"chance: 1/{cfg['n_symbols']} = {cfg['chance']:.1%}", file=out)
    print(f"total wall time {wall:.1f} s", file=out)
