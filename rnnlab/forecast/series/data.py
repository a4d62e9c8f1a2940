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
from rnnlab.forecast.series import dates as Dt
from rnnlab.forecast.series.date_columns import line_numbers, parse_dates
from rnnlab.forecast.series.targets import SEASONAL as SEASONAL
from rnnlab.forecast.series.targets import TARGETS as TARGETS  # re-exported: the targets, their windows
from rnnlab.forecast.series.targets import check_target as check_target
from rnnlab.forecast.series.targets import first_origin as first_origin
from rnnlab.forecast.series.targets import history_length as history_length
from rnnlab.forecast.series.targets import lag as lag
from rnnlab.forecast.series.targets import to_levels as to_levels
from rnnlab.forecast.series.targets import transform as transform

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
    dates: np.ndarray  # (n,) datetime64[s], ascending, unique: wall-clock times of ``tz``
    path: str
    column: str
    date_column: str
    notes: list = field(default_factory=list)  # what the checks found (gaps, fills, order)
    freq: str = "unknown"  # the frequency's name (dates.label of freq_alias: daily, monthly ...)
    season: int = 1  # the season m it implies (1: none)
    covariates: dict = field(default_factory=dict)  # more columns, {name: (n,) float64}
    freq_alias: str | None = None  # a pandas alias (D, MS, h ...); "none": integer steps; None: irregular
    tz: str | None = None  # None (naive), a fixed offset "+05:00", "UTC" or an IANA zone name
    date_format: str | None = None  # the --date-format the dates were read with (None: guessed)

    def __post_init__(self):
        self.dates = np.asarray(self.dates).astype(Dt.UNIT)

    def __len__(self):
        return len(self.values)

    def date_str(self, i: int) -> str:
        """Date ``i`` as the user reads it (``dates.format_date``: a date, or date and time for
        sub-daily series, with the UTC offset of a zone)."""
        return self.date_strings(self.dates[i : i + 1 if i != -1 else None])[0]

    def date_strings(self, dates=None) -> list[str]:
        """``dates`` (default: the series' own) written as ``date_str`` writes one."""
        d = self.dates if dates is None else np.asarray(dates)
        if d.dtype.kind in "iu":  # integer steps (--freq none)
            return [str(int(v)) for v in d]
        if self.freq_alias is None:  # irregular: times when any date of the series has one
            sub = bool((self.dates != self.dates.astype("datetime64[D]")).any())
        else:
            sub = Dt.is_sub_daily(self.freq_alias)
        return Dt.date_strings(d, sub_daily=sub, tz=self.tz)


def load_series(
    path=None, column="Close", date_column="Date", fill="none", covariates=(), date_format=None, freq=None
) -> Series:
    """Read ``column`` of a CSV, sort it by ``date_column`` and check it.

    Raises ``UserError`` (one line, says what to fix) for: a missing file, a missing column
    (lists those that exist), values that are not numbers (says which lines), NaNs (unless
    ``fill="ffill"``), dates that do not parse in one format (``date_format``: ``--date-format``,
    see ``date_columns``) and duplicate dates. ``covariates``: more columns, read and checked the
    same way (``Series.covariates``). ``freq``: a pandas offset alias that overrides the one read
    off the dates (``none``: integer steps).
    """
    freq = Dt.check_freq(freq)
    if fill not in FILLS:
        raise UserError(f"--fill must be one of {', '.join(FILLS)}, got {fill!r}")
    path = bundled_csv() if path is None else str(path)
    needed = ((column, "--column"), (date_column, "--date-column")) + tuple(
        (c, "--covariates") for c in covariates
    )
    df = read_frame(path, needed)
    values, missing = _parse_values(df[column], column, path)
    notes: list = []
    days, tz = _parse_dates(df[date_column], date_column, path, notes, date_format)
    extra = {c: _parse_values(df[c], c, path) for c in covariates}
    fmt = date_format
    return series_of(values, missing, days, path, column, date_column, fill, notes, extra, tz, freq, fmt)


def series_of(
    values,
    missing,
    days,
    path,
    column,
    date_column,
    fill,
    notes,
    extra=None,
    tz=None,
    freq=None,
    date_format=None,
) -> Series:
    """The checked ``Series`` of parsed rows: sorted by date, duplicates refused, missing
    values refused or filled, gaps and the frequency noted; ``extra``: {covariate: (values,
    missing)} sorted and filled alike. ``tz``: the dates' zone; ``freq``: a checked ``--freq``
    alias (``dates.check_freq``) that overrides the inferred one; ``date_format``: the
    ``--date-format`` they were read with, kept for files read beside them (``--future-csv``)."""
    days = np.asarray(days).astype(Dt.UNIT)
    order, days, values, missing = _sort_by_date(days, values, missing, date_column, path, notes)
    if missing.any():
        values = _fill_missing(values, missing, order, days, column, path, fill, notes)
    covariates = {}
    for name, (v, miss) in (extra or {}).items():
        v, miss = v[order], miss[order]
        covariates[name] = _fill_missing(v, miss, order, days, name, path, fill, []) if miss.any() else v
    alias = Dt.infer_freq(days) if freq is None else freq  # --freq none: "none", integer steps
    fits = freq is None or freq == Dt.NONE or Dt.follows(days, freq)
    notes.extend(_gap_notes(days, alias if alias != Dt.NONE and fits else None))
    if freq is None and len(days) < 3:
        label, season = "unknown", 1
    else:
        label, season = Dt.label(alias)
    if not fits:
        notes.append(f"the dates do not all lie on the --freq {freq} calendar; the future dates follow it")
    notes.append(f"frequency: {label}" + (f", season {season}" if season > 1 else ", no season"))
    return Series(
        values, days, path, column, date_column, notes, label, season, covariates, alias, tz, date_format
    )


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
            f"{line_numbers(bad)} of {path} (e.g. {example!r})"
        )
    if not np.isfinite(values[~missing]).all():
        raise UserError(
            f"column {column!r} has infinite values on line(s) {line_numbers(np.isinf(values))} of {path}"
        )
    huge = np.abs(np.where(missing, 0.0, values)) > MAX_ABS_VALUE
    if huge.any():
        raise UserError(
            f"column {column!r} has values beyond +-{MAX_ABS_VALUE:.0e} on line(s) {line_numbers(huge)} "
            f"of {path}: their statistics overflow; divide the column by a power of ten first"
        )
    return values, missing


def _parse_dates(raw_column, date_column, path, notes: list, date_format=None):
    """The cells of ``date_column`` as ``(dates (n,) datetime64[s], tz)``: one format for the
    whole column (``date_columns.parse_dates``: ``--date-format``, ambiguity, numbers, zones)."""
    return parse_dates(raw_column, date_column, path, notes, date_format)


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
            f"{line_numbers(mask)} of {path}; fix them or pass --fill ffill"
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


def _gap_notes(days, alias=None) -> list:
    """The gaps: the dates of the ``alias`` calendar that are missing, or (irregular dates, no
    alias) the steps longer than the usual (median) one."""
    if len(days) < 3:
        return []
    if alias is not None:
        missing = Dt.missing_dates(days, alias)
        if not len(missing):
            return [f"no gaps: every step is one {alias} step"]
        at = np.searchsorted(days, missing)  # the gap each missing date lies in: days[at - 1 .. at]
        starts = np.unique(at)
        shown = ", ".join(f"{Dt.format_date(days[i - 1])}..{Dt.format_date(days[i])}" for i in starts[:3])
        return [
            f"{len(starts)} gap(s), {len(missing)} missing {alias} date(s): {shown}"
            + (" ..." if len(starts) > 3 else "")
        ]
    step = np.diff(days).astype(np.int64)  # seconds between rows
    usual = int(np.median(step))
    gaps = np.flatnonzero(step > usual)
    if not len(gaps):
        return [f"no gaps: every step is {Dt._span(usual)}"]
    shown = ", ".join(f"{Dt.format_date(days[i])}..{Dt.format_date(days[i + 1])}" for i in gaps[:3])
    return [
        f"{len(gaps)} gap(s) longer than the usual {Dt._span(usual)}: {shown}"
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
