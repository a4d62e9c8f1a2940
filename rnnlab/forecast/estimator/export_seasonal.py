"""The seasonal targets in the forecaster's ONNX graph (``export.py``).

``sdiff`` reads ``W + m`` levels per origin; the window is ``z = y[m:] - y[:-m]`` and step h of
the levels ``y_{t+h} = y_{t+h-m} + z_{t+h}``. The deseason targets (``deseason``,
``deseason_mean``; docs/EQUATIONS.md section 10.1) read ``W - 1 + history_length`` levels, every
season their seasonal component averages; on a history that long every ``c`` the window needs
has all its seasons, so the whole transform is linear in the log levels ``x = log y`` and goes
into the graph as constant matrices, found by applying rnnlab's own functions to unit vectors::

    z (M, W)       = x (M, L) @ Z (L, W)               the window of z
    x_{t+h} (M, 1) = x_ext[:, -L:] @ w (L, 1) + z_{t+h}  b_{t+h-1} + c_{t+h} + z_{t+h}, step by step
    levels         = exp(x_{t+1} .. x_{t+steps})
"""

from __future__ import annotations

import numpy as np

from rnnlab.forecast.series import targets as T


def width(f) -> int:
    """Levels the graph reads per origin (what a forecast reads: ``targets.levels_read``)."""
    return f.levels_read


def z_matrix(f) -> np.ndarray:
    """``Z (L, W)``: the window of z as a linear map of the log history (deseason targets)."""
    L, W, q = width(f), f.window, T.span(f.target, f.season)
    return np.stack([T.adjusted_change(e, f.season, q)[-W:] for e in np.eye(L)])


def step_weights(f) -> np.ndarray:
    """``w (L, 1)``: ``b_t + c_{t+1}`` as a linear map of the last L log levels up to t."""
    return T.next_base(np.eye(width(f)), f.season, T.span(f.target, f.season))[:, None]


def window(g, f, history: str) -> str:
    """``z (M, W)`` from the graph input ``history (M, L)``."""
    c = g.const
    if f.target == "sdiff":
        m, axis1 = f.season, c(np.array([1], np.int64), "axis1")
        lo = g.node(
            "Slice",
            [history, c(np.array([0], np.int64), "zero"), c(np.array([-m], np.int64), "minus_m"), axis1],
            ["y_back"],
        )
        hi = g.node(
            "Slice",
            [history, c(np.array([m], np.int64), "m"), c(np.array([1 << 62], np.int64), "big"), axis1],
            ["y_now"],
        )
        return g.node("Sub", [hi, lo], ["z"])  # z_t = y_t - y_{t-m}
    x = g.node("Log", [history], ["x_hist"])
    return g.node("MatMul", [x, c(z_matrix(f), "Z")], ["z"])


def levels(g, f, history: str, zpath: str, steps: int, p: str) -> str:
    """One member's levels ``(M, steps)`` from its path of z ``(M, steps)``."""
    c = g.const
    axis1, big = c(np.array([1], np.int64), "axis1"), c(np.array([1 << 62], np.int64), "big")
    deseason = f.target in T.DESEASON
    ext = g.node("Log", [history], [p + "x0"]) if deseason else history
    back = -width(f) if deseason else -f.season
    news = []
    for h in range(steps):
        q = f"{p}lv{h}_"
        z_h = g.node(
            "Slice",
            [zpath, c(np.array([h], np.int64), f"h{h}"), c(np.array([h + 1], np.int64), f"h{h + 1}"), axis1],
            [q + "z"],
        )
        start = c(np.array([back], np.int64), "back")
        if deseason:  # x_{t+h} = x_ext[-L:] @ w + z_{t+h}
            tail = g.node("Slice", [ext, start, big, axis1], [q + "tail"])
            base = g.node("MatMul", [tail, c(step_weights(f), "w_step")], [q + "base"])
        else:  # y_{t+h} = y_{t+h-m} + z_{t+h}
            stop = c(np.array([back + 1], np.int64), "back1") if back + 1 < 0 else big
            base = g.node("Slice", [ext, start, stop, axis1], [q + "base"])
        new = g.node("Add", [base, z_h], [q + "new"])
        ext = g.node("Concat", [ext, new], [q + "ext"], axis=1)
        news.append(new)
    out = g.node("Concat", news, [p + "new_all"], axis=1) if len(news) > 1 else news[0]
    return g.node("Exp", [out], [p + "levels"]) if deseason else out
