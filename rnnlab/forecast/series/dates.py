"""A series' calendar: its frequency as a pandas offset alias, the dates after its end, and
how its dates are written.

* ``infer_freq(dates)``: the alias (``D``, ``B``, ``W-WED``, ``MS``, ``ME``, ``QS-JAN``,
  ``QE-DEC``, ``YS-JAN``, ``YE-DEC``, ``h``, ``15min`` ...) that ``pd.infer_freq`` reads off
  ascending dates; when rows are missing (``pd.infer_freq`` then gives up) the alias whose
  grid from the first date to the last holds every date and is at least ``MIN_COVERAGE``
  full (the best such grid; a daily series missing a few days is still daily). ``None``:
  irregular.
* ``future_dates(series, steps)``: the ``steps`` dates after the last one,
  ``pd.date_range(start=last, periods=steps + 1, freq=alias)[1:]`` -- calendar arithmetic, so
  a monthly series goes 2002-01-01, 2002-02-01, 2002-03-01 and month ends cross February as
  2024-01-31, 2024-02-29, 2024-03-31; in the series' time zone, so hours cross a DST change as
  pandas does. ``--freq none``: integer steps (1, 2, ... after the last date).
* ``format_date`` / ``date_strings``: ISO 8601, a date for daily and coarser series, date and
  time for sub-daily ones, with the UTC offset when the series has a time zone.
* ``label(alias)``: the frequency's name and season m (hourly 24, daily 7, business-daily 5,
  weekly 52, monthly 12, quarterly 4, half-yearly 2, yearly 1).

Dates are held as ``datetime64[s]`` wall-clock times of the series' zone ``tz`` (``None``:
naive; a fixed offset such as ``+05:00``; ``UTC``; or an IANA name) -- the day a user reads in
the file, which is what calendars and seasons need, at a resolution that holds sub-hourly data
and years past 2262.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from rnnlab.errors import UserError

UNIT = "datetime64[s]"  # the resolution of Series.dates
MIN_COVERAGE = 0.75  # with missing rows: the least share of its grid a frequency must fill
NONE = "none"  # --freq none: integer steps, no dates ahead
EXAMPLES = "D, B, W-SUN, MS, ME, QS, QE, YS, YE, h, 15min"


def _pd():
    import pandas as pd  # the applications' dependency; the engine does not need it

    return pd


# the spellings pandas 2.2 deprecated and pandas 3 removed, and their successors
OLD_ALIASES = {"M": "ME", "BM": "BME", "SM": "SME", "Q": "QE", "BQ": "BQE", "A": "YE", "Y": "YE"}
OLD_ALIASES.update({"BA": "BYE", "BY": "BYE", "AS": "YS", "BAS": "BYS", "H": "h", "BH": "bh"})
OLD_ALIASES.update({"T": "min", "S": "s", "L": "ms", "U": "us", "N": "ns"})


def _modern(alias: str) -> str:
    """``alias`` in today's spelling: ``M`` -> ``ME``, ``2H`` -> ``2h``, ``A-DEC`` -> ``YE-DEC``."""
    m = re.fullmatch(r"(\d*)([A-Za-z]+)(-.+)?", alias)
    if not m or m.group(2) not in OLD_ALIASES:
        return alias
    return m.group(1) + OLD_ALIASES[m.group(2)] + (m.group(3) or "")


def to_offset(alias: str, option: str = "--freq"):
    """The pandas offset of ``alias`` (old spellings such as ``M``, ``H``, ``A`` accepted on every
    pandas: 3 removed them); UserError naming ``option`` for an unknown alias."""
    pd = _pd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            offset = pd.tseries.frequencies.to_offset(_modern(str(alias).strip()))
        except (ValueError, TypeError):
            offset = None
    if offset is None or offset.n < 1:
        raise UserError(
            f"{option} {alias!r} is not a pandas frequency alias: use one such as {EXAMPLES}, "
            f"or {NONE} for integer steps"
        )
    return offset


def check_freq(alias) -> str | None:
    """``--freq``: the canonical alias (``M`` -> ``ME``, ``H`` -> ``h``, ``QS-JAN`` -> ``QS-OCT``),
    ``NONE`` kept, None kept (infer it); UserError (one line) for anything else."""
    if alias is None:
        return None
    if str(alias).strip().lower() == NONE:
        return NONE
    return canonical(alias)


def canonical(alias: str) -> str:
    """The name pandas' ``infer_freq`` gives the grid of ``alias``: quarters are named by the
    last month of the year they fall on (``QS-JAN`` and ``QS-OCT`` are one grid)."""
    off = to_offset(alias)
    month = getattr(off, "startingMonth", None)
    if month is not None and "Quarter" in type(off).__name__:
        off = type(off)(n=off.n, startingMonth=(month - 1) % 3 + 10)
    return off.freqstr


def check_tz(tz: str) -> str:
    """``tz`` if pandas knows the zone (``+05:00``, ``UTC``, ``Europe/Berlin``); else UserError."""
    try:
        _pd().Timestamp(0).tz_localize(tz)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, LookupError):
        raise UserError(f"unknown time zone {tz!r}") from None
    return tz


# ----------------------------------------------------------------------------- frequency


def _index(dates, tz=None):
    """A ``DatetimeIndex`` of wall-clock ``dates`` in zone ``tz``."""
    pd = _pd()
    idx = pd.DatetimeIndex(np.asarray(dates).astype(UNIT))
    return _localize(idx, tz) if tz else idx


def _localize(idx, tz):
    try:
        return idx.tz_localize(tz, ambiguous="infer", nonexistent="shift_forward")
    except (ValueError, TypeError):  # ambiguity that cannot be inferred from a short stretch
        return idx.tz_localize(tz, ambiguous=np.ones(len(idx), bool), nonexistent="shift_forward")


def infer_freq(dates) -> str | None:
    """The pandas offset alias ascending ``dates`` follow, or None (irregular, or < 3 dates).

    ``pd.infer_freq`` first; when it gives up (missing rows), the candidate grid from the first
    date to the last that contains every date and fills the largest share of it, if that share is
    at least ``MIN_COVERAGE``."""
    pd = _pd()
    d = np.asarray(dates).astype(UNIT)
    if len(d) < 3 or not (np.diff(d).astype(np.int64) > 0).all():
        return None
    idx = pd.DatetimeIndex(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            alias = pd.infer_freq(idx)
        except (ValueError, TypeError):
            alias = None
    if alias is not None:
        return canonical(alias)
    days = d.astype("datetime64[D]")
    if (days != d).any() and (np.diff(days).astype(np.int64) > 0).all():
        # times of day that vary a little (a reading at 09:29, 09:31 ...; offsets that change
        # with summer time, converted to UTC): the days may still be regular
        alias = infer_freq(days)
        return alias if alias is not None and not is_sub_daily(alias) else None
    best, share = None, MIN_COVERAGE
    for cand in _candidates(idx):
        s = _coverage(idx, cand)
        if s > share + 1e-12:
            best, share = cand, s
    return None if best is None else canonical(best)


def _candidates(idx) -> list[str]:
    """Aliases worth trying on dates with missing rows: multiples of the smallest step, and the
    calendar frequencies anchored where the first date lies."""
    pd = _pd()
    steps = np.diff(_seconds(idx))
    small = int(steps.min())
    out = []
    day = 86_400
    if small % day:  # a sub-daily clock: the smallest step, and the smallest common one
        common = int(np.gcd.reduce(steps[:10_000]))
        for sec in dict.fromkeys((small, common)):
            out.append(pd.tseries.frequencies.to_offset(pd.Timedelta(sec, unit="s")).freqstr)
        return out
    first = idx[0]
    months = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    wday = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[first.day_of_week]
    out += ["D", "B", f"W-{wday}", f"2W-{wday}", "MS", "ME", "BMS", "BME", "SMS", "SME"]
    m = first.month - 1
    for q in ("QS", "QE", "BQS", "BQE", "2QS", "2QE"):
        out.append(f"{q}-{months[m]}")  # QS-JAN: Jan, Apr, Jul, Oct; QE-MAR = QE-DEC
    for y in ("YS", "YE", "BYS", "BYE"):
        out.append(f"{y}-{months[m]}")
    n_days = small // day
    if n_days > 1:
        out.append(f"{n_days}D")
    return out


def _coverage(idx, alias: str) -> float:
    """The share of the grid ``date_range(first, last, alias)`` that ``idx`` fills; 0 unless the
    grid holds every date (and is no larger than ``len(idx) / MIN_COVERAGE``)."""
    pd = _pd()
    offset = to_offset(alias)
    first, last = idx[0], idx[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not offset.is_on_offset(first):
            return 0.0
        probe = _seconds(pd.date_range(first, periods=21, freq=offset, unit="s"))
        nominal = (probe[-1] - probe[0]) / 20  # seconds a step, on average for calendar offsets
        span = int(_seconds(idx[-1:])[0] - _seconds(idx[:1])[0])
        if span / max(nominal, 1) + 1 > len(idx) / MIN_COVERAGE + 2:
            return 0.0
        grid = pd.date_range(first, last, freq=offset, unit="s")
    if len(grid) == 0 or not np.isin(_seconds(idx), _seconds(grid)).all():
        return 0.0
    return len(idx) / len(grid)


def follows(dates, alias: str) -> bool:
    """Whether every one of ``dates`` lies on the ``alias`` grid that starts at the first."""
    d = np.asarray(dates).astype(UNIT)
    if len(d) < 2:
        return True
    idx = _pd().DatetimeIndex(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        offset = to_offset(alias)
        if not offset.is_on_offset(idx[0]):
            return False
        grid = _pd().date_range(idx[0], idx[-1], freq=offset, unit="s")
    return bool(np.isin(_seconds(idx), _seconds(grid)).all())


def _seconds(idx) -> np.ndarray:
    """Seconds since 1970 of a naive ``DatetimeIndex`` (whatever its unit)."""
    return np.asarray(idx.to_numpy()).astype(UNIT).astype(np.int64)


def irregularity(dates, limit: int = 3) -> str:
    """One phrase saying how ``dates`` are irregular: their steps, and the first steps that are
    not the usual (median) one."""
    d = np.asarray(dates).astype(UNIT)
    if len(d) < 3:
        return f"only {len(d)} date(s), too few to read a frequency from"
    step = np.diff(d).astype(np.int64)
    usual = int(np.median(step))
    odd = np.flatnonzero(step != usual)
    sub = bool((d != d.astype("datetime64[D]")).any())
    shown = ", ".join(
        f"{format_date(d[i], sub)}..{format_date(d[i + 1], sub)} ({_span(int(step[i]))})" for i in odd[:limit]
    )
    more = f" and {len(odd) - limit} more" if len(odd) > limit else ""
    return (
        f"steps from {_span(int(step.min()))} to {_span(int(step.max()))}, usually {_span(usual)}; "
        f"{len(odd)} of {len(step)} are not: {shown}{more}"
    )


def _span(seconds: int) -> str:
    for unit, s in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % s == 0:
            n = seconds // s
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} s"


def missing_dates(dates, alias: str | None) -> np.ndarray:
    """The dates of the ``alias`` grid from the first date to the last that ``dates`` lack."""
    if alias is None or alias == NONE or len(dates) < 2:
        return np.array([], UNIT)
    pd = _pd()
    d = np.asarray(dates).astype(UNIT)
    if not is_sub_daily(alias):  # daily and coarser: the days count, not the times of day
        d = d.astype("datetime64[D]").astype(UNIT)
    idx = _index(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        offset = to_offset(alias)
        if not offset.is_on_offset(idx[0]):
            return np.array([], UNIT)
        grid = pd.date_range(idx[0], idx[-1], freq=offset, unit="s")
    g = _seconds(grid)
    return g[~np.isin(g, _seconds(idx))].astype(UNIT)


# ----------------------------------------------------------------------------- names, seasons

_MONTHS_LABEL = {1: ("monthly", 12), 2: ("every 2 months", 6), 3: ("quarterly", 4), 6: ("half-yearly", 2)}


def label(alias: str | None) -> tuple[str, int]:
    """``(name, season m)`` of a frequency alias: the season is the cycle the seasonal naive
    forecast repeats (hourly 24: a day; daily 7: a week; business-daily 5; weekly 52; monthly 12;
    quarterly 4; half-yearly 2; yearly 1: none). Sub-hourly series take the day as their season
    when it has at most 96 steps (15 minutes or longer), else the hour. ``None``: irregular."""
    if alias is None:
        return "irregular", 1
    if alias == NONE:
        return "integer steps", 1
    pd = _pd()
    off = to_offset(alias)
    n = off.n
    name = type(off).__name__
    if isinstance(off, pd.tseries.offsets.Tick) and name != "Day":
        sec = off.nanos / 1e9
        if sec == 3600:
            return "hourly", 24
        per_day, per_hour = 86_400 / sec, 3_600 / sec
        season = per_day if per_day <= 96 else per_hour
        season = int(season) if float(season).is_integer() and season > 1 else 1
        what = "hourly" if sec > 3600 else "sub-hourly"
        return f"{what}, every {_span(int(sec)) if sec.is_integer() else f'{sec:g} s'}", season
    if name == "Day":
        return ("daily", 7) if n == 1 else (f"every {n} days", 1)
    if name == "BusinessDay":
        return ("business-daily", 5) if n == 1 else (f"every {n} business days", 1)
    if name == "Week":
        return ("weekly", 52) if n == 1 else (f"every {n} weeks", 52 // n if 52 % n == 0 else 1)
    if name in ("SemiMonthBegin", "SemiMonthEnd"):
        return "semi-monthly", 24
    if "Month" in name:
        return _MONTHS_LABEL.get(n, (f"every {n} months", 12 // n if 12 % n == 0 else 1))
    if "Quarter" in name:
        return _MONTHS_LABEL.get(3 * n, (f"every {n} quarters", 1))
    if "Year" in name:
        return ("yearly", 1) if n == 1 else (f"every {n} years", 1)
    return alias, 1


def is_sub_daily(alias: str | None) -> bool:
    """Whether steps of ``alias`` are shorter than a day (then dates are written with times)."""
    if alias is None or alias == NONE:
        return False
    off = to_offset(alias)
    pd = _pd()
    return isinstance(off, pd.tseries.offsets.Tick) and off.nanos < 86_400 * 10**9


# ----------------------------------------------------------------------------- the future


def future_dates(series, steps: int) -> np.ndarray:
    """The ``steps`` dates after ``series``' last date: ``pd.date_range(start=last, periods=steps
    + 1, freq=alias)[1:]`` in the series' zone, as wall-clock ``datetime64[s]``; with ``--freq
    none`` the integer steps ``1 .. steps`` after the last date. UserError for irregular dates: says
    which steps make them so and suggests ``--freq``."""
    pd = _pd()
    alias = getattr(series, "freq_alias", None)
    if alias == NONE or (alias is None and getattr(series, "freq", None) == label(NONE)[0]):
        return np.arange(1, steps + 1, dtype=np.int64)
    dates = np.asarray(series.dates).astype(UNIT)
    if alias is None:
        alias = infer_freq(dates)
    if alias is None:
        raise UserError(str(undated(series)))
    tz = getattr(series, "tz", None)
    offset = to_offset(alias)
    last = _index(dates[-48:], tz)[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if offset.is_on_offset(last):
            ahead = pd.date_range(start=last, periods=steps + 1, freq=offset, unit="s")[1:]
        else:  # a --freq the dates do not follow: the next points of its grid
            ahead = pd.date_range(start=last + offset, periods=steps, freq=offset, unit="s")
    if tz:
        ahead = ahead.tz_localize(None)  # wall-clock times of the zone
    return ahead.as_unit("s").to_numpy().astype(UNIT)


def undated(series) -> str | None:
    """Why ``future_dates(series, ...)`` cannot date the future (one line: the irregular steps,
    and ``--freq`` to say what they are), or None when it can."""
    alias = getattr(series, "freq_alias", None)
    if alias is not None or getattr(series, "freq", None) == label(NONE)[0]:
        return None
    dates = np.asarray(series.dates).astype(UNIT)
    if infer_freq(dates) is not None:
        return None
    return (
        f"the dates are irregular ({irregularity(dates)}), so the future has no dates: pass "
        f"--freq ALIAS (e.g. {EXAMPLES}) or --freq {NONE} for integer steps"
    )


# ----------------------------------------------------------------------------- writing


def format_date(d, sub_daily: bool | None = None, tz: str | None = None) -> str:
    """ISO 8601 text of one wall-clock date: ``2024-02-29`` (daily and coarser) or
    ``2024-02-29T13:00:00`` (sub-daily; ``sub_daily=None``: when it has a time of day), with the
    UTC offset of zone ``tz`` after a time (``2024-02-29T13:00:00+01:00``); an integer step as
    itself."""
    if isinstance(d, (int, np.integer)):
        return str(int(d))
    d = np.datetime64(d, "s")
    if sub_daily is None:
        sub_daily = d != d.astype("datetime64[D]")
    if not sub_daily:
        return str(d.astype("datetime64[D]"))
    text = str(d)
    if tz:
        text = _index(np.array([d]), tz)[0].isoformat()
    return text


def date_strings(dates, alias: str | None = None, tz: str | None = None, sub_daily=None) -> list[str]:
    """``format_date`` of each date, all written alike: with times when ``alias`` is sub-daily
    (or, without an alias, when any date has a time of day; ``sub_daily`` decides if given)."""
    d = np.asarray(dates)
    if d.dtype.kind in "iu":
        return [str(int(v)) for v in d]
    d = d.astype(UNIT)
    if sub_daily is not None:
        sub = bool(sub_daily)
    elif alias is not None and alias != NONE:
        sub = is_sub_daily(alias)
    else:
        sub = bool(len(d)) and bool((d != d.astype("datetime64[D]")).any())
    if sub and tz:
        return [t.isoformat() for t in _index(d, tz)]
    return [format_date(v, sub) for v in d]
