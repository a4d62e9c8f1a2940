"""`rnnlab forecast | translate | experiment | bench`: a thin command line.

Each application owns its sub-command in ``<app>/cli.py`` with ``add_parser(subparsers)``
(which registers its options and sets ``func``); this file only dispatches. Errors that a user
can fix (bad file, bad option) are raised as ``rnnlab.errors.UserError`` and printed as one line;
so are a failed allocation and a failed write (exit 2), so no input ends in a traceback
(docs/RELIABILITY.md).

The conventions every command shares are kept here: ``--version``; ``--quiet`` (added where a
command has none: no progress or chatter on stderr); a warning is one line ``rnnlab CMD: warning:
...`` on stderr, even with ``--quiet`` (it is about the user's input or the run), and the
libraries' own (numpy's overflow, deprecations) are not shown (``python -W`` still shows them);
``--report -`` writes the JSON report to stdout and everything else to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

from rnnlab import __version__, cliargs, distributed
from rnnlab.errors import UserError
from rnnlab.io import STDOUT, report_to_stdout
from rnnlab.nn import runtime

QUIET_HELP = "no progress bars or status lines on standard error (warnings and errors still show)"
# the libraries' warnings about their own state or future, not the user's input: never shown
HIDDEN = (RuntimeWarning, DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning)


def build_parser() -> argparse.ArgumentParser:
    parser = cliargs.Parser(prog="rnnlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{forecast,translate,experiment,bench}")
    sub.required = True
    from rnnlab import bench
    from rnnlab.experiments import cli as experiments_cli
    from rnnlab.forecast.cli import main as forecast_cli
    from rnnlab.translate import cli as translate_cli

    forecast_cli.add_parser(sub)
    translate_cli.add_parser(sub)
    experiments_cli.add_parser(sub)
    bench.add_parser(sub)
    for p in _commands(parser):
        if "--quiet" not in p._option_string_actions:
            p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    return parser


def _commands(parser):
    """The parsers that run something (those that set ``func``), sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if sub.get_default("func") is not None:
                    yield sub
                yield from _commands(sub)


@contextlib.contextmanager
def _warnings_as_lines(command: str):
    """A warning is one line ``rnnlab CMD: warning: ...``, each once; the ``HIDDEN`` kinds are
    dropped. ``python -W`` / ``PYTHONWARNINGS`` (a developer's choice) win."""
    if sys.warnoptions:
        yield
        return
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            print(f"rnnlab {command}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for kind in HIDDEN:
            warnings.simplefilter("ignore", kind)
        warnings.showwarning = show
        yield


def _run(args) -> int:
    threads = getattr(args, "threads", None)  # every training command's --threads: the engine's
    report = getattr(args, "report", None) == STDOUT
    with contextlib.ExitStack() as stack:
        if threads is not None:  # (translate train then holds BLAS at one and sizes its own pool)
            stack.enter_context(runtime.override(threads=threads))
        stack.enter_context(_warnings_as_lines(args.command))
        if report:
            stack.enter_context(report_to_stdout())
        return int(args.func(args) or 0)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        runtime.settings()  # a bad RNNLAB_* value: one line before any work (--help has run already)
        with distributed.abort_on_error(f"rnnlab {args.command}", code=2):  # MPI: one failing rank ends all
            distributed.check_same_arguments(
                sys.argv[1:] if argv is None else list(argv), f"rnnlab {args.command}"
            )
            return _run(args)
    except UserError as e:
        print(f"rnnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"rnnlab {args.command}: error: not enough memory for this configuration", file=sys.stderr)
        return 2
    except OSError as e:  # a disk that filled up, a folder removed meanwhile
        print(f"rnnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnnlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
