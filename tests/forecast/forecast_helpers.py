"""Small synthetic series for the forecaster's tests (the bundled data is used where named).

A plain module with a unique name (not a conftest.py: the suite's ``from conftest import``
must keep finding ``tests/conftest.py``).
"""

import numpy as np

# a tiny configuration so the fast tests train in well under a second
TINY = dict(
    window=5,
    horizon=1,
    strategy="recursive",
    target="logreturn",
    cell="gru",
    hidden_size=6,
    num_layers=1,
    dropout=0.0,
    epochs=3,
    batch_size=16,
    lr=1e-2,
    clip=4.0,
    weight_decay=0.0,
    valid_size=0.2,
    patience=5,
    init="pytorch",
    shuffle=True,
    shrink=True,
    ensemble=1,
    likelihood="gaussian",
    scaling="window",
    intervals=(0.8, 0.95),
    calibration="conformal",
    n_samples=200,
    bounds="none",
    season=1,
    min_updates=0,
    seed=0,
    parallel="members",
    time_budget=None,
    test_size=20,
    train_windows=None,
    preset=None,
)


def random_walk(n=160, seed=0, start=100.0):
    """A positive geometric random walk with a little momentum (so a network has something)."""
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    eps = rng.normal(0.0, 0.02, n)
    for t in range(1, n):
        r[t] = 0.3 * r[t - 1] + eps[t]
    return start * np.exp(np.cumsum(r))


def write_csv(
    path,
    values,
    start="2020-01-01",
    newest_first=True,
    date_fmt="%m/%d/%Y",
    column="Close",
    raw=None,
    freq="D",
):
    """A CSV like btc.csv: Date, Symbol, Close; ``raw`` overrides cells: {row: "text"}."""
    import pandas as pd

    dates = pd.date_range(start, periods=len(values), freq=freq)
    rows = [(d.strftime(date_fmt), "XYZ", f"{v:.6f}") for d, v in zip(dates, values)]
    for i, text in (raw or {}).items():
        rows[i] = (rows[i][0], rows[i][1], text)
    if newest_first:
        rows = rows[::-1]
    with open(path, "w") as fh:
        fh.write(f"Date,Symbol,{column}\n")
        for r in rows:
            fh.write(",".join(r) + "\n")
    return str(path)
