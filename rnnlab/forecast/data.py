"""Loading a series, checking it, splitting it in time, windows and scaling.

What this file gets right that the book's recipe gets wrong (docs/EQUATIONS.md section 8):

* the rows are sorted by date ascending (``btc.csv`` is stored newest first);
* duplicate dates are an error, gaps in the calendar are reported;
* the split is chronological: the last ``test_size`` points are the test part and nothing
  after the training part is ever seen by the scaler, the network or early stopping;
* the scaler is fit on the training part only.

Targets (``target``: what the network models, each with an inverse back to levels) are in
``targets``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from rnnlab.errors import UserError
from rnnlab.forecast.calendar import detect_frequency
from rnnlab.forecast.targets import SEASONAL as SEASONAL
from rnnlab.forecast.targets import TARGETS as TARGETS  # re-exported: the targets, their windows
from rnnlab.forecast.targets import check_target as check_target
from rnnlab.forecast.targets import first_origin as first_origin
from rnnlab.forecast.targets import history_length as history_length
from rnnlab.forecast.targets import lag as lag
from rnnlab.forecast.targets import to_levels as to_levels
from rnnlab.forecast.targets import transform as transform

FILLS = ("none", "ffill")
MIN_TRAIN_WINDOWS = 20  # fewer training windows than this cannot fit anything
# a series of a panel (one global model) needs one training window of its own: the pool of
# every series' windows is what must reach MIN_TRAIN_WINDOWS (pooling.pool)
MIN_SERIES_WINDOWS = 1


def windows_each(n_series: int) -> int:
    """The training windows each of ``n_series`` series needs of its own: all of them alone,
    one in a panel (the pool is checked as a whole)."""
    return MIN_SERIES_WINDOWS if n_series > 1 else MIN_TRAIN_WINDOWS


# |values| above this make sums of squares overflow float64 (1e154 ** 2 > 1.8e308): refused
MAX_ABS_VALUE = 1e150


def bundled_csv() -> str:
    """Path of the bundled Bitcoin prices (``rnnlab/data/btc.csv``)."""
    return str(resources.files("rnnlab.data").joinpath("btc.csv"))


@dataclass
class Series:
    """A checked, date-sorted univariate series."""

    values: np.ndarray  # (n,) float64, oldest first
    dates: np.ndarray  # (n,) datetime64[D], ascending, unique
    path: str
    column: str
    date_column: str
    notes: list = field(default_factory=list)  # what the checks found (gaps, fills, order)
    freq: str = "unknown"  # read off the dates (calendar.detect_frequency)
    season: int = 1  # the season m it implies (1: none)
    covariates: dict = field(default_factory=dict)  # more columns, {name: (n,) float64}

    def __len__(self):
        return len(self.values)

    def date_str(self, i: int) -> str:
        return str(self.dates[i])


def _line_numbers(mask) -> str:
    """File line numbers (header is line 1) of the True rows, at most 8 of them."""
    rows = np.flatnonzero(np.asarray(mask)) + 2
    shown = ", ".join(str(r) for r in rows[:8])
    more = f" and {len(rows) - 8} more" if len(rows) > 8 else ""
    return f"{shown}{more}"


def load_series(path=None, column="Close", date_column="Date", fill="none", covariates=()) -> Series:
    """Read ``column`` of a CSV, sort it by ``date_column`` and check it.

    Raises ``UserError`` (one line, says what to fix) for: a missing file, a missing column
    (lists those that exist), values that are not numbers (says which lines), NaNs (unless
    ``fill="ffill"``), dates that do not parse and duplicate dates. ``covariates``: more
    columns, read and checked the same way (``Series.covariates``).
    """
    if fill not in FILLS:
        raise UserError(f"--fill must be one of {', '.join(FILLS)}, got {fill!r}")
    path = bundled_csv() if path is None else str(path)
    needed = ((column, "--column"), (date_column, "--date-column")) + tuple(
        (c, "--covariates") for c in covariates
    )
    df = read_frame(path, needed)
    values, missing = _parse_values(df[column], column, path)
    notes: list = []
    days = _parse_dates(df[date_column], date_column, path, notes)
    extra = {c: _parse_values(df[c], c, path) for c in covariates}
    return series_of(values, missing, days, path, column, date_column, fill, notes, extra)


def series_of(values, missing, days, path, column, date_column, fill, notes, extra=None) -> Series:
    """The checked ``Series`` of parsed rows: sorted by date, duplicates refused, missing
    values refused or filled, gaps and the frequency noted; ``extra``: {covariate: (values,
    missing)} sorted and filled alike."""
    order, days, values, missing = _sort_by_date(days, values, missing, date_column, path, notes)
    if missing.any():
        values = _fill_missing(values, missing, order, days, column, path, fill, notes)
    covariates = {}
    for name, (v, miss) in (extra or {}).items():
        v, miss = v[order], miss[order]
        covariates[name] = _fill_missing(v, miss, order, days, name, path, fill, []) if miss.any() else v
    notes.extend(_gap_notes(days))
    freq, season = detect_frequency(days)
    notes.append(f"frequency: {freq}" + (f", season {season}" if season > 1 else ", no season"))
    return Series(values, days, path, column, date_column, notes, freq, season, covariates)


def read_frame(path: str, needed):
    """The CSV at ``path`` as strings; UserError if it is missing, unreadable, lacks one of the
    ``needed`` ``(column, option)`` pairs or has no rows."""
    import pandas as pd  # the applications' dependency; the engine does not need it

    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a readable CSV file: {first}") from None
    cols = [str(c) for c in df.columns]
    for name, what in needed:
        if name not in cols:
            raise UserError(
                f"{path} has no column {name!r} ({what}); its columns are: {', '.join(repr(c) for c in cols)}"
            )
    if len(df) == 0:
        raise UserError(f"{path} has a header but no rows")
    return df


def _parse_values(raw_column, column, path):
    """The cells of ``column`` as float64 ``values (n,)`` (NaN where missing) and ``missing (n,)``.

    UserError for cells that are not numbers or are infinite.
    """
    import pandas as pd

    raw = raw_column.str.strip()
    missing = raw.isin(["", "nan", "NaN", "NA", "N/A", "null", "None"]).to_numpy()
    values = pd.to_numeric(raw.where(~missing), errors="coerce").to_numpy(np.float64)
    bad = np.isnan(values) & ~missing
    if bad.any():
        example = raw[bad].iloc[0]
        raise UserError(
            f"column {column!r} has values that are not numbers on line(s) "
            f"{_line_numbers(bad)} of {path} (e.g. {example!r})"
        )
    if not np.isfinite(values[~missing]).all():
        raise UserError(
            f"column {column!r} has infinite values on line(s) {_line_numbers(np.isinf(values))} of {path}"
        )
    huge = np.abs(np.where(missing, 0.0, values)) > MAX_ABS_VALUE
    if huge.any():
        raise UserError(
            f"column {column!r} has values beyond +-{MAX_ABS_VALUE:.0e} on line(s) {_line_numbers(huge)} "
            f"of {path}: their statistics overflow; divide the column by a power of ten first"
        )
    return values, missing


def _parse_dates(raw_column, date_column, path, notes: list) -> np.ndarray:
    """The cells of ``date_column`` as ``datetime64[D] (n,)``; UserError for cells that are not dates.

    Dates with time-zone offsets are converted to the first such date's offset (said in
    ``notes``) before the calendar day is taken, so that no day shifts without a word."""
    import pandas as pd

    raw_dates = raw_column.str.strip()
    try:
        dates = pd.to_datetime(raw_dates, errors="coerce", format="mixed")
        aware = getattr(dates.dt, "tz", None) is not None
    except (ValueError, TypeError, AttributeError):  # mixed offsets, or offsets next to naive
        # dates (pandas 3 raises; pandas 2 returns objects, which have no .dt)
        dates, aware = pd.to_datetime(raw_dates, errors="coerce", format="mixed", utc=True), True
    except OverflowError:
        dates, aware = pd.Series(pd.NaT, index=raw_dates.index), False
    bad_dates = dates.isna().to_numpy()
    if bad_dates.any() and not aware:  # ISO dates beyond pandas 2's range (1677 .. 2262): NumPy's
        try:
            days = dates.to_numpy().astype("datetime64[D]")
            days[bad_dates] = np.array(raw_dates[bad_dates].tolist(), dtype="datetime64[D]")
            return days
        except (ValueError, TypeError, OverflowError):
            pass
    if bad_dates.any():
        example = raw_dates[bad_dates].iloc[0]
        raise UserError(
            f"column {date_column!r} has values that are not dates{_date_reason(example)} on line(s) "
            f"{_line_numbers(bad_dates)} of {path} (e.g. {example!r})"
        )
    if aware:
        offset = _first_offset(raw_dates)
        local = dates.dt.tz_convert("UTC").dt.tz_localize(None) + offset
        notes.append(
            f"dates carry time-zone offsets; converted to the first one's (UTC{_fmt_offset(offset)}) "
            f"before taking the calendar day (dates without one are read as UTC)"
        )
        return local.to_numpy().astype("datetime64[D]")
    return dates.to_numpy().astype("datetime64[D]")


def _date_reason(text) -> str:
    """Why pandas could not read ``text`` as a date, when the reason is its range."""
    import pandas as pd

    try:
        pd.Timestamp(text)
    except pd.errors.OutOfBoundsDatetime:
        return " pandas can hold (outside its date range)"
    except (ValueError, TypeError, OverflowError):
        pass
    return ""


def _first_offset(raw_dates):
    """The UTC offset of the first date that has one (a ``pd.Timedelta``)."""
    import pandas as pd

    for text in raw_dates:
        try:
            ts = pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            continue
        if ts.tzinfo is not None:
            return pd.Timedelta(ts.utcoffset())
    return pd.Timedelta(0)


def _fmt_offset(offset) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _sort_by_date(days, values, missing, date_column, path, notes: list):
    """Sort the rows by date ascending (stable), noting in ``notes`` if they were not.

    UserError for duplicate dates. Returns ``order, days, values, missing`` (sorted).
    """
    order = np.argsort(days, kind="stable")
    if not np.all(order == np.arange(len(days))):
        descending = np.all(order == np.arange(len(days))[::-1])
        notes.append(
            "rows were "
            + ("newest first" if descending else "not in date order")
            + f"; sorted by {date_column} ascending"
        )
    days, values, missing = days[order], values[order], missing[order]
    dup = np.flatnonzero(days[1:] == days[:-1])
    if len(dup):
        shown = ", ".join(str(days[i]) for i in dup[:5])
        raise UserError(
            f"{path} has {len(dup)} duplicate date(s) in {date_column!r} ({shown}); keep one row per date"
        )
    return order, days, values, missing


def _fill_missing(values, missing, order, days, column, path, fill, notes: list) -> np.ndarray:
    """The sorted ``values`` with the ``missing`` ones carried forward (``fill="ffill"``).

    UserError if ``fill="none"`` (says which file lines) or the oldest value is missing.
    """
    where = np.sort(order[missing])  # original row order, for line numbers
    mask = np.zeros(len(order), bool)
    mask[where] = True
    if fill == "none":
        raise UserError(
            f"column {column!r} has {int(missing.sum())} missing value(s) on line(s) "
            f"{_line_numbers(mask)} of {path}; fix them or pass --fill ffill"
        )
    if missing[0]:
        raise UserError(
            f"column {column!r}: the oldest value ({days[0]}) is missing, "
            f"so --fill ffill has nothing to carry forward"
        )
    idx = np.where(~missing, np.arange(len(values)), 0)
    np.maximum.accumulate(idx, out=idx)
    values = values[idx]  # carry the last seen value forward
    notes.append(f"filled {int(missing.sum())} missing value(s) by carrying the previous one forward")
    return values


def _gap_notes(days) -> list:
    """Report steps longer than the usual (median) spacing of the dates."""
    if len(days) < 3:
        return []
    step = np.diff(days).astype(np.int64)  # days between rows
    usual = int(np.median(step))
    gaps = np.flatnonzero(step > usual)
    if not len(gaps):
        return [f"no gaps: every step is {usual} day(s)"]
    shown = ", ".join(f"{days[i]}..{days[i + 1]}" for i in gaps[:3])
    return [
        f"{len(gaps)} gap(s) longer than the usual {usual} day(s): {shown}"
        + (" ..." if len(gaps) > 3 else "")
    ]


# ----------------------------------------------------------------------------- windows


def windows(z, window: int, horizon: int, first: int, last: int):
    """Input windows and targets for forecast origins ``t = first .. last`` (inclusive).

    Returns ``X (M, W)`` with ``X[m] = z[t-W+1 .. t]`` and ``Y (M, H)`` with
    ``Y[m] = z[t+1 .. t+H]`` (targets past the end of z are NaN).
    """
    z = np.asarray(z, np.float64)
    origins = np.arange(first, last + 1)
    X = z[origins[:, None] + np.arange(-window + 1, 1)[None, :]]  # (M, W)
    idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]  # (M, H)
    Y = np.where(idx < len(z), z[np.minimum(idx, len(z) - 1)], np.nan)  # (M, H)
    return X, Y


# ----------------------------------------------------------------------------- split


def test_count(n: int, test_size) -> int:
    """``test_size`` as a number of points: an int N, or a float fraction in (0, 1) of n."""
    if isinstance(test_size, str):
        try:
            test_size = int(test_size) if test_size.strip().isdigit() else float(test_size)
        except ValueError:
            raise UserError(
                f"--test-size must be a count (e.g. 266) or a fraction (e.g. 0.2), got {test_size!r}"
            ) from None
    if isinstance(test_size, float):
        if not 0 < test_size < 1:
            raise UserError(f"--test-size as a fraction must lie in (0, 1), got {test_size}")
        return max(1, int(round(n * test_size)))
    if int(test_size) < 1:
        raise UserError(f"--test-size must be at least 1, got {test_size}")
    return int(test_size)


def min_train_length(
    window: int, n_out: int, target: str, valid: bool = True, season: int = 1, min_windows=MIN_TRAIN_WINDOWS
) -> int:
    """The shortest training part: ``min_windows`` windows (+ a validation slice of 2 and
    the n_out - 1 windows dropped between them) with all n_out targets inside it."""
    n_windows = min_windows + (2 + n_out - 1 if valid else 0)
    return n_windows + n_out + first_origin(window, target, season)


def min_length(
    window: int,
    n_out: int,
    target: str,
    test_size,
    valid: bool = True,
    season: int = 1,
    min_windows=MIN_TRAIN_WINDOWS,
) -> int:
    """The shortest series whose training part (what the test part leaves) is long enough.

    ``n - test_count(n)`` never decreases with n, so a bisection finds it (a test fraction
    near 1 needs about need / (1 - f) points: no loop over them)."""
    need = min_train_length(window, n_out, target, valid, season, min_windows)
    if isinstance(test_size, float):
        hi = max(need + 1, int((need + 2) / (1.0 - test_size)) + 2) if test_size < 1 else need + 1
    else:
        hi = need + 1 + test_count(need + 1, test_size)
    while hi - test_count(hi, test_size) < need:  # (rounding) make sure hi is long enough
        hi *= 2
    lo = need + 1
    while lo < hi:  # the least n in [lo, hi] with n - test_count(n) >= need
        mid = (lo + hi) // 2
        if mid - test_count(mid, test_size) >= need:
            hi = mid
        else:
            lo = mid + 1
    return lo


def check_validation_split(
    n_windows: int, n_out: int, valid_size: float, min_windows=MIN_TRAIN_WINDOWS
) -> None:
    """UserError unless ``valid_size`` of ``n_windows`` leaves ``min_windows`` to train on."""
    n_valid = max(int(round(valid_size * n_windows)), 2) if valid_size > 0 else 0
    n_fit = n_windows - n_valid - (n_out - 1 if n_valid else 0)
    if n_fit < min_windows:
        raise UserError(
            f"--valid-size {valid_size} leaves {max(n_fit, 0)} of {n_windows} training windows to train "
            f"on; at least {min_windows} are needed: lower --valid-size"
        )


def check_length(
    n: int,
    window: int,
    n_out: int,
    target: str,
    test_size=None,
    valid: bool = True,
    season=1,
    min_windows=MIN_TRAIN_WINDOWS,
):
    """UserError unless a series of n points (or a training part, if test_size is None) is long
    enough for ``min_windows`` training windows."""
    if test_size is None:
        need, what = min_train_length(window, n_out, target, valid, season, min_windows), "training part"
    else:
        need, what = min_length(window, n_out, target, test_size, valid, season, min_windows), "series"
    if n < need:
        test = "" if test_size is None else f" and test size {test_size}"
        raise UserError(
            f"the {what} has {n} points, too short for window {window}, "
            f"{n_out} output(s), target {target}{test}: it needs at least {need} points "
            f"({min_windows} training window{'s' if min_windows > 1 else ''}"
            f"{' and a validation slice' if valid else ''})"
        )


class StandardScaler:
    """``s = (z - mean_) / scale_``, fit on the training part only."""

    def fit(self, z) -> StandardScaler:
        z = np.asarray(z, np.float64)
        z = z[np.isfinite(z)]
        self.mean_ = float(z.mean())
        self.scale_ = float(z.std()) or 1.0
        return self

    def transform(self, z):
        return (np.asarray(z, np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, s):
        return np.asarray(s, np.float64) * self.scale_ + self.mean_
