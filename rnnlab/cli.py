"""`rnnlab forecast | translate | experiment | bench`: a thin command line.

Each application owns its sub-command in ``<app>/cli.py`` with ``add_parser(subparsers)``
(which registers its options and sets ``func``); this file only dispatches. Errors that a user
can fix (bad file, bad option) are raised as ``rnnlab.errors.UserError`` and printed as one line;
so are a failed allocation and a failed write (exit 2), so no input ends in a traceback
(docs/RELIABILITY.md).
"""

from __future__ import annotations

import argparse
import sys

from rnnlab import cliargs, distributed
from rnnlab.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = cliargs.Parser(prog="rnnlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="{forecast,translate,experiment,bench}")
    sub.required = True
    from rnnlab import bench
    from rnnlab.experiments import cli as experiments_cli
    from rnnlab.forecast import cli as forecast_cli
    from rnnlab.translate import cli as translate_cli

    forecast_cli.add_parser(sub)
    translate_cli.add_parser(sub)
    experiments_cli.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from rnnlab.nn import runtime

        runtime.settings()  # a bad RNNLAB_* value: one line before any work (--help has run already)
        with distributed.abort_on_error(f"rnnlab {args.command}", code=2):  # MPI: one failing rank ends all
            distributed.check_same_arguments(
                sys.argv[1:] if argv is None else list(argv), f"rnnlab {args.command}"
            )
            return int(args.func(args) or 0)
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
