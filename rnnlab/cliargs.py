"""Argument types shared by the command lines (``rnnlab forecast | translate | experiment | bench``).

Each parses a string and raises ``argparse.ArgumentTypeError`` with one clear line (argparse
then exits 2 with ``argument --x: must be ...``); NaN and infinities are refused wherever a
finite number is asked for.
"""

from __future__ import annotations

import argparse
import math


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
