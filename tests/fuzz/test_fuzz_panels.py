"""Fuzzing the round-2 surfaces (issue 34, item 1): long-format panels with the cases that slip
(duplicate timestamps within an id, ids of 1-3 points, all-NaN ids, mixed frequencies across
ids, covariates missing or not numbers, a BOM, ``;`` separators) through `rnnlab forecast
--id-column`, and the forecast files it writes. Every case: exit 0 or 2, an error in one line,
no traceback, nothing written but the outputs asked for."""

import os
import tempfile

import numpy as np
import pandas as pd
from fuzz_helpers import run_cli, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = ["--epochs", "1", "--hidden", "2", "--ensemble", "1", "--window", "3", "--test-size", "0.25"]
FAST += ["--quiet", "--no-plot", "--baselines", "simple", "--target", "diff", "--min-updates", "0"]

FREQS = ["D", "W-MON", "MS", "h", "B"]
SERIES = st.fixed_dictionaries(
    {
        "n": st.integers(1, 40),
        "freq": st.sampled_from(FREQS),
        "nan": st.sampled_from(["none", "some", "all"]),
        "dup": st.booleans(),
        "cov": st.sampled_from(["ok", "missing", "text"]),
    }
)


def _panel_text(series: list, sep: str, bom: bool) -> str:
    rows = []
    rng = np.random.default_rng(0)
    for k, s in enumerate(series):
        dates = pd.date_range("2021-01-04", periods=s["n"], freq=s["freq"])
        y = 100 + np.cumsum(rng.normal(size=s["n"]))
        if s["nan"] == "all":
            y[:] = np.nan
        elif s["nan"] == "some" and s["n"] > 2:
            y[1] = np.nan
        for t, d in enumerate(dates):
            cov = (
                ""
                if s["cov"] == "missing" and t == 0
                else ("abc" if s["cov"] == "text" and t == 0 else "1.5")
            )
            value = "" if np.isnan(y[t]) else f"{y[t]:.4f}"
            rows.append([f"id{k}", d.strftime("%Y-%m-%d %H:%M:%S"), value, cov])
        if s["dup"] and rows:
            rows.append(rows[-1])
    text = "\n".join(sep.join(r) for r in [["id", "ds", "y", "temp"], *rows]) + "\n"
    return ("\ufeff" if bom else "") + text


@settings(max_examples=max(12, settings.default.max_examples // 2))  # ci 12, long 200
@given(st.lists(SERIES, min_size=1, max_size=4), st.sampled_from([",", ";"]), st.booleans(), st.booleans())
def test_odd_panels_run_or_say_why(series, sep, bom, covariates):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "panel.csv")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(_panel_text(series, sep, bom))
        before = snapshot(tmp)
        out = os.path.join(tmp, "f.csv")
        argv = ["forecast", "--csv", path, "--id-column", "id", "--column", "y", "--date-column", "ds"]
        argv += [*FAST, "--forecast-out", out] + (
            ["--covariates", "temp", "--strategy", "direct"] if covariates else []
        )
        code, _, err = run_cli(argv)
        after = snapshot(tmp)
        assert {k: v for k, v in after.items() if k != "f.csv"} == before  # the input untouched
        if code == 0:
            rows = pd.read_csv(out)
            assert list(rows.columns[:3]) == ["unique_id", "ds", "mean"] and rows["mean"].notna().all()
        else:
            assert "f.csv" not in after, err  # a refusal writes nothing


@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(st.sampled_from([".csv", ".json", ".parquet", ".xlsx", ".CSV", ""]), st.sampled_from(["", "no/"]))
def test_forecast_out_paths_fail_before_work_or_succeed(suffix, folder):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.csv")
        dates = pd.date_range("2020-01-01", periods=60, freq="D")
        y = 100 + np.cumsum(np.random.default_rng(1).normal(size=60))
        pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Close": y}).to_csv(path, index=False)
        out = os.path.join(tmp, folder, "f" + suffix)
        code, stdout, err = run_cli(["forecast", "--csv", path, *FAST, "--forecast-out", out])
        if code == 2:
            assert "Test metrics" not in stdout and not os.path.exists(out), err
        else:
            assert os.path.isfile(out)
