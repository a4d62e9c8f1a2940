"""Reading a column of dates: one format for the whole column, never a guess per row.

``pd.to_datetime(format="mixed")`` guesses each cell on its own, so in a dd/mm/yyyy column the
days up to 12 are read month-first and the series is silently reordered. Here:

1. ``--date-format FMT`` (a strftime format such as ``%d/%m/%Y``) reads every row with FMT;
   ``--date-format excel`` reads numbers as Excel serial days (its 1900 system: 43831 is
   2020-01-01, fractions are times of day), ``--date-format unix`` as seconds since 1970-01-01
   UTC (the series is then in UTC).
2. Without it, the format is guessed from the first non-empty cell (pandas'
   ``guess_datetime_format``, month-first and day-first), and each guess is tried on every row.
   A column that both day-first and month-first read in full (every day <= 12) is refused as
   ambiguous, naming ``--date-format``. ISO 8601 variants (with or without a time) are one format.
3. Plain numbers are refused as dates (an Excel serial 43831 would become the year 43831), except
   4-digit years (``%Y``) and 8-digit ``yyyymmdd`` (``%Y%m%d``).
4. Time zones: a column with one UTC offset keeps it (the series is in that zone, its forecast
   dates too); a column with several (``+01:00`` in winter, ``+02:00`` in summer) is read as
   instants and converted to UTC, with a note. Either way no row's instant changes.

Dates come back as ``datetime64[s]`` wall-clock times of the zone (``dates.UNIT``), which holds
sub-hourly data and years far outside pandas' nanosecond range (1677 .. 2262).
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.series.dates import UNIT

SPECIAL = ("excel", "unix")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_EXCEL_EPOCH = np.datetime64("1899-12-30T00:00:00", "s")  # day 0 of serials from 61 (1900-03-01) on
_LIMIT = (np.datetime64("0001-01-01T00:00:00", "s"), np.datetime64("9999-12-31T23:59:59", "s"))


def line_numbers(mask) -> str:
    """File line numbers (header is line 1) of the True rows, at most 8 of them: how every
    message about a CSV's cells names them (here and in ``data``, ``panel``)."""
    rows = np.flatnonzero(np.asarray(mask)) + 2
    shown = ", ".join(str(r) for r in rows[:8])
    more = f" and {len(rows) - 8} more" if len(rows) > 8 else ""
    return f"{shown}{more}"


def parse_dates(raw_column, date_column: str, path: str, notes: list, date_format=None):
    """``(dates (n,) datetime64[s], tz)`` of the cells of ``date_column``; ``tz`` is None, a fixed
    offset (``+05:00``) or ``UTC`` (several offsets, converted). UserError (one line) for cells
    that are not dates in the column's format, an ambiguous day/month order, plain numbers without
    ``--date-format excel|unix``, or a bad ``--date-format``."""

    raw = raw_column.astype(str).str.strip()
    empty = (raw == "").to_numpy()
    if empty.all():
        raise UserError(f"column {date_column!r} of {path} holds no dates")
    where = f"column {date_column!r} of {path}"
    if date_format is not None:
        fmt = str(date_format).strip()
        if fmt.lower() in SPECIAL:
            return _numbers(raw, fmt.lower(), where, notes), ("UTC" if fmt.lower() == "unix" else None)
        if "%" not in fmt:
            raise UserError(
                f"--date-format {fmt!r} is neither a strftime format (e.g. %d/%m/%Y) nor one of "
                f"{', '.join(SPECIAL)}"
            )
        return _read(raw, fmt, where, notes, given=True)
    first = raw[~empty].iloc[0]
    if _NUMBER.match(first) and raw[~empty].str.match(_NUMBER).all():
        return _plain_numbers(raw, where, notes)
    candidates = _guesses(first)
    results = {}
    for fmt in candidates:
        try:
            results[fmt] = _parse(raw, fmt)
        except (ValueError, TypeError, OverflowError):
            continue
    full = [f for f, (d, _, bad) in results.items() if not bad.any()]
    if len(full) > 1:
        a, b = full[0], full[1]
        if not results[a][0].equals(results[b][0]):
            raise UserError(
                f"{where} reads both as {a} and as {b} on every row (e.g. {first!r}): say which "
                f"with --date-format {_dayfirst(a, b)} or --date-format {_monthfirst(a, b)}"
            )
    if full:
        return _finish(results[full[0]], full[0], where, notes)
    return _read(raw, "ISO8601" if re.match(r"^[+-]?\d{4}-\d", first) else "mixed", where, notes, False)


def _guesses(first: str) -> list:
    """Formats guessed from one cell, month-first then day-first; a year-first guess that puts the
    day before the month (``%Y-%d-%m``, which no one writes) is dropped."""
    from pandas.tseries.api import guess_datetime_format

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dayfirst in (False, True):
            fmt = guess_datetime_format(first, dayfirst=dayfirst)
            if fmt is None or fmt in out:
                continue
            y, d, m = (fmt.find(x) for x in ("%Y", "%d", "%m"))
            if min(y, d, m) >= 0 and y < d < m:
                continue
            out.append(fmt)
    return out


def _dayfirst(a: str, b: str) -> str:
    return a if a.find("%d") < a.find("%m") else b


def _monthfirst(a: str, b: str) -> str:
    return b if a.find("%d") < a.find("%m") else a


def _parse(raw, fmt: str, dayfirst: bool = False):
    """``(pandas datetimes, tz, bad (n,) bool)``: every cell read with ``fmt`` (``mixed``: pandas'
    per-cell guess, the last resort, month-first unless ``dayfirst``). Several offsets come back
    in UTC (``tz``: ``("UTC", [the offsets])``)."""
    import pandas as pd

    empty = (raw == "").to_numpy()
    kwargs = {"format": fmt} if fmt != "mixed" else {"format": "mixed", "dayfirst": dayfirst}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(raw.where(~empty), errors="coerce", **kwargs)
            tz = getattr(parsed.dt, "tz", None)
        except (ValueError, TypeError, AttributeError):  # several offsets (pandas 3 raises,
            parsed, tz = None, None  # pandas 2 returns objects without .dt)
        if parsed is None or (parsed.dtype == object):
            parsed = pd.to_datetime(raw.where(~empty), errors="coerce", utc=True, **kwargs)
            tz = ("UTC", _offsets(raw[~empty]))
    bad = parsed.isna().to_numpy()
    return parsed, tz, bad


def _offsets(raw) -> list:
    """The distinct UTC offsets written in the cells (at most 5, for the note)."""
    found = raw.str.extract(r"(Z|[+-]\d{2}:?\d{2})\s*$", expand=False).fillna("no offset")
    return list(dict.fromkeys(found.tolist()))[:5]


def _read(raw, fmt: str, where: str, notes: list, given: bool):
    """Every cell in ``fmt``; UserError naming the lines that are not."""
    try:
        result = _parse(raw, fmt)
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"--date-format {fmt!r} is not a strftime format pandas can read") from None
    dates, tz, bad = result
    if bad.any():
        result = _beyond_pandas(raw, result)
        bad = result[2]
    if bad.any():
        example = raw[bad].iloc[0]
        how = f" in the format {fmt}" if fmt not in ("mixed", "ISO8601") else ""
        hint = "" if given else " (or pass --date-format FMT)"
        raise UserError(
            f"{where} has values that are not dates{how}{_range_reason(example)} on line(s) "
            f"{line_numbers(bad)} (e.g. {example!r}){hint}"
        )
    if fmt == "mixed" and isinstance(dates, type(raw)):
        try:
            other, _, other_bad = _parse(raw, "mixed", dayfirst=True)
        except (ValueError, TypeError, OverflowError):
            other, other_bad = None, None
        if other is not None and not other_bad.any() and not other.equals(dates):
            raise UserError(
                f"{where} reads both day-first and month-first on every row (e.g. {raw.iloc[0]!r}): "
                f"say which with --date-format (e.g. --date-format %d/%m/%Y)"
            )
    return _finish(result, fmt, where, notes)


def _beyond_pandas(raw, result):
    """ISO dates outside pandas' nanosecond range (1677 .. 2262) read by NumPy instead."""
    dates, tz, bad = result
    if tz is not None:
        return result
    try:
        far = np.array(raw[bad].tolist(), dtype=UNIT)
    except (ValueError, TypeError, OverflowError):
        return result
    out = np.asarray(dates.to_numpy()).astype(UNIT)
    out[bad] = far
    return out, None, np.zeros(len(out), bool)


def _range_reason(text) -> str:
    import pandas as pd

    try:
        pd.Timestamp(text)
    except pd.errors.OutOfBoundsDatetime:
        return " pandas can hold (outside its date range)"
    except (ValueError, TypeError, OverflowError):
        pass
    return ""


def _finish(result, fmt: str, where: str, notes: list):
    """``(datetime64[s] wall-clock dates, tz)`` of a parse, the time zone said in ``notes``."""
    dates, tz, _ = result
    if isinstance(dates, np.ndarray):
        return dates.astype(UNIT), None
    if isinstance(tz, tuple):  # several offsets: instants, in UTC
        shown = ", ".join(tz[1])
        notes.append(
            f"dates carry several time-zone offsets ({shown}): read as instants and converted to UTC "
            f"(a date without one is read as UTC)"
        )
        return _wall(dates.dt.tz_localize(None)), "UTC"
    if tz is not None:
        name = _tz_name(tz)
        notes.append(f"dates carry one time-zone offset (UTC{name}): kept, the forecast dates carry it too")
        return _wall(dates.dt.tz_localize(None)), name
    return _wall(dates), None


def _wall(dates) -> np.ndarray:
    return np.asarray(dates.dt.as_unit("s").to_numpy()).astype(UNIT)


def _tz_name(tz) -> str:
    """``+05:00`` for a fixed offset, else the zone's name (``UTC``, ``Europe/Berlin``)."""
    import datetime

    if isinstance(tz, datetime.timezone):
        off = tz.utcoffset(None)
        if off == datetime.timedelta(0):
            return "UTC"
        minutes = int(off.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return str(tz)


def _plain_numbers(raw, where: str, notes: list):
    """A column of plain numbers: 4-digit years and 8-digit yyyymmdd are dates, anything else is
    refused (Excel serials, Unix seconds) unless ``--date-format`` says what they count."""
    cells = raw[raw != ""]
    for digits, fmt in ((4, "%Y"), (8, "%Y%m%d")):
        if cells.str.fullmatch(rf"\d{{{digits}}}").all():
            return _read(raw, fmt, where, notes, given=False)
    raise UserError(
        f"{where} holds plain numbers, not dates (e.g. {cells.iloc[0]!r}): pass --date-format excel "
        f"(Excel serial days), --date-format unix (seconds since 1970) or a format such as %Y%m%d"
    )


def _numbers(raw, kind: str, where: str, notes: list) -> np.ndarray:
    """``--date-format excel|unix``: numbers as Excel serial days or Unix seconds."""
    import pandas as pd

    values = pd.to_numeric(raw.where(raw != ""), errors="coerce").to_numpy(np.float64)
    seconds = values * 86_400.0 if kind == "excel" else values
    base = _EXCEL_EPOCH if kind == "excel" else np.datetime64("1970-01-01T00:00:00", "s")
    lo, hi = ((_LIMIT[0] - base).astype(np.float64), (_LIMIT[1] - base).astype(np.float64))
    bad = ~np.isfinite(seconds) | (seconds < lo) | (seconds > hi)
    if kind == "excel":
        bad |= values < 1
    if bad.any():
        example = raw[bad].iloc[0]
        raise UserError(
            f"{where} has values that are not {kind} dates on line(s) {line_numbers(bad)} (e.g. {example!r})"
        )
    what = "Excel serial days (43831 = 2020-01-01)" if kind == "excel" else "Unix seconds since 1970 UTC"
    notes.append(f"dates read as {what} (--date-format {kind})")
    return base + np.round(seconds).astype(np.int64).astype("timedelta64[s]")
