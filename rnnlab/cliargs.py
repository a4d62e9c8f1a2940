"""Argument types shared by the command lines (``rnnlab forecast | translate | experiment | bench``).

Each parses a string and raises ``argparse.ArgumentTypeError`` with one clear line (argparse
then exits 2 with ``argument --x: must be ...``); NaN and infinities are refused wherever a
finite number is asked for, sizes have an upper bound (so a typo cannot ask for 600 GiB), and
output paths are checked for writability at parse time, before any work starts. ``Parser``
prints an error as one line (no usage block) and exits 2.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import sys

from rnnlab.io import can_write_into, existing_folder_above, output_file_problem


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line: ``prog: error: ... (see --help)``.

    An option the command does not know is named as such, with the closest one it does know
    (``difflib``), by the (sub)command it was given to: argparse alone took the value after
    ``--no-such-option value`` for a sub-command and said "invalid choice: 'value'"."""

    _argv: list = []

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)
        ns, extras = super().parse_known_args(args, namespace)
        if extras:  # (a sub-command's parser has refused its own already)
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras

    def error(self, message):
        unknown = self._unknown_option()
        if unknown is not None:
            names = {o.lstrip("-"): o for o in self._long_options()}  # the dashes are no likeness
            close = difflib.get_close_matches(unknown.lstrip("-"), list(names), n=1, cutoff=0.6)
            message = f"unknown option {unknown}" + (f" (did you mean {names[close[0]]}?)" if close else "")
        message = " ".join(message.split())
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)

    def _long_options(self) -> list:
        return sorted(o for o in self._option_string_actions if o.startswith("--"))

    def _unknown_option(self):
        """The first word of this parser's arguments (up to its sub-command) that looks like an
        option and is none of its options or their unique abbreviations; None if there is none."""
        subparsers = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
        subcommands = {c for a in subparsers for c in a.choices}
        takes_value = False
        for word in self._argv:
            if word == "--":
                return None
            if takes_value:  # the value of the option before it
                takes_value = False
                continue
            if word in subcommands:
                return None  # the rest is the sub-command's
            if not word.startswith("-") or word == "-" or self._negative_number_matcher.match(word):
                continue
            name = word.split("=", 1)[0] if word.startswith("--") else word[:2]
            action = self._option_string_actions.get(name)
            if action is None and word.startswith("--"):
                hits = [o for o in self._long_options() if o.startswith(name)]
                action = self._option_string_actions[hits[0]] if hits else None
            if action is None:
                return name
            takes_value = action.nargs != 0 and "=" not in word and len(word) == len(name)
        return None


def number(kind, low=None, what="a number", high=None, low_open=False, high_open=False):
    """A parser for ``kind`` (int or float) values in [low, high] (open ends on request)."""

    def parse(text):
        try:
            value = kind(text.strip()) if isinstance(text, str) else kind(text)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names it in its errors
    return parse


positive_int = number(int, 1, "a positive integer")
nonnegative_int = number(int, 0, "an integer >= 0")
positive_float = number(float, 0.0, "a positive number", low_open=True)
nonnegative_float = number(float, 0.0, "a number >= 0")
unit_interval = number(float, 0.0, "a number in [0, 1]", 1.0)
fraction = number(float, 0.0, "a number in [0, 1)", 1.0, high_open=True)
# Adam's step is about lr in every weight: past 10 a step overflows float32 in a few updates
learning_rate = number(float, 0.0, "a learning rate in (0, 10]", 10.0, low_open=True)


def bounded_int(high: int, low: int = 1):
    """An integer in [low, high]: sizes that would otherwise allocate without limit."""
    return number(int, low, f"an integer in [{low}, {high}]", high)


# the largest sizes the options accept: far beyond what trains on a CPU in a day, far below
# what exhausts memory before the first step
MAX_HIDDEN, MAX_LAYERS, MAX_WINDOW, MAX_STEPS = 4096, 16, 10_000, 10_000
hidden_size = bounded_int(MAX_HIDDEN)
layers = bounded_int(MAX_LAYERS)


def add_threads(group) -> None:
    """``--threads N`` of a training command: the engine's threads while it runs (``rnnlab.cli``
    applies it; ``translate train`` has its own, which also sizes its pool)."""
    group.add_argument(
        "--threads",
        type=bounded_int(256),
        help="threads of the engine's GEMMs and row blocks (default: RNNLAB_NUM_THREADS or the libraries')",
    )


def output_file(suffix: str):
    """A path where a ``suffix`` file can be written now (its folder exists and is writable)."""

    def parse(text):
        problem = output_file_problem(text, suffix)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return text

    parse.__name__ = f"a {suffix} file"
    return parse


def output_dir(text):
    """A directory that can be created or replaced: the nearest folder above it that exists is
    writable (the missing ones between are created when it is written, ``io.write_dir``), no
    file stands in the way, and it is not a file itself (whether it may be replaced is the
    command's check, with ``--overwrite``)."""
    path = os.path.abspath(text)
    try:
        parent = existing_folder_above(path)
    except NotADirectoryError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not can_write_into(parent):
        raise argparse.ArgumentTypeError(f"cannot write into {parent}")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path} exists and is not a directory")
    return text


LANG_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")


def lang_code(text):
    """A language's ISO 639 code (``fr``, ``es``, ``pt-BR``): the detokeniser's rules."""
    if not isinstance(text, str) or not LANG_CODE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be a language code such as fr, es or en, got {text!r:.40}")
    return text


def count_or_fraction(text):
    """An integer count (>= 1) or a fraction in (0, 1) (``--test-size 266`` or ``0.2``)."""
    t = text.strip()
    try:
        v = int(t) if t.isdigit() else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a count (e.g. 266) or a fraction (e.g. 0.2), got {text!r}"
        ) from None
    if (isinstance(v, float) and not 0 < v < 1) or (isinstance(v, int) and v < 1):
        raise argparse.ArgumentTypeError(f"must be a count >= 1 or a fraction in (0, 1), got {text!r}")
    return v


def add_precision(p, choices, what: str) -> None:
    """``--precision {float32,int8}`` (default float32) on the inference commands; ``what``: the
    help's account of what int8 quantises and when it is used."""
    p.add_argument("--precision", choices=choices, default="float32", help=f"{what} (default: float32)")
