"""The options of ``rnnlab translate train`` on the command line: the data and vocabulary, the
architecture, the training, each section built from its rows of ``params.TABLE`` (the option,
its parser or choices, its help and default). Every default is None here, so that an explicit
value can be told from a default; the defaults themselves are ``options.TRAIN_DEFAULTS``."""

from __future__ import annotations

from rnnlab import cliargs
from rnnlab.translate.params import TRAIN, Param, help_line


def add_option(t, p: Param) -> None:
    """The option (or, for a bool, the switches) of one row, its value stored under ``p.name``."""
    for flag, text in p.switches:  # store_const: "--no-x" sets False, "--x" True
        t.add_argument(
            flag, dest=p.name, action="store_const", const=not flag.startswith("--no-"), help=text or p.help
        )
    if p.switches:
        return
    kw = {"type": p.parse, "choices": p.choices, "metavar": p.metavar, "help": help_line(p)}
    flag = p.flag or "--" + p.name.replace("_", "-")
    if p.flag is not None:
        kw["dest"] = p.name
    t.add_argument(flag, **{k: v for k, v in kw.items() if v is not None})


def add_section(t, section: str) -> None:
    for p in TRAIN:
        if p.section == section:
            add_option(t, p)


def add_data_arguments(t):
    """``translate train``: where the model goes, the pairs, the split and the vocabulary."""
    t.add_argument(
        "--out", required=True, metavar="DIR", type=cliargs.output_dir, help="model directory to write"
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out replace a directory that holds something other than a translator (or a run)",
    )
    add_section(t, "data")


def add_model_arguments(t):
    """``translate train``: the architecture (cell, attention, sizes) and dropout."""
    add_section(t, "model")


def add_training_arguments(t):
    """``translate train``: teacher forcing, epochs and time, the optimizer, threads, resuming."""
    add_section(t, "training")
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
