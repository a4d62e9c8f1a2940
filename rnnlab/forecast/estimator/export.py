"""ONNX export of a fitted ``Forecaster``: the whole forecast, from raw levels to levels
(``rnnlab forecast export``). The forecaster owns its graph; ``rnnlab.export`` lends the generic
pieces (``onnx_graph``: the recurrent layers, the graph builder, the atomic save) and knows
nothing of forecasting.

The graph takes ``history (M, W + lag)`` float64, each row the last levels up to a forecast
origin (``lag`` = 0 for ``target="level"``, 1 for ``diff`` and ``logreturn``, which need the
level before the window, m for ``sdiff``, and for the deseason targets all the seasons their
seasonal component reads: ``export_seasonal.py``), and returns ``forecast (M, steps)``
float64, the next ``steps`` levels after each origin: what ``Forecaster.forecast_from`` returns.
Inside, as in
``model.py``::

    z      = transform(history)              level: y;  diff: y_t - y_{t-1};  logreturn: log y_t - log y_{t-1}
    s      = (z - mean) / scale              the scaler fit on the training series
    per network k of the ensemble, ``steps`` times (recursive: each prediction fed back):
        nu    = mean |window| + 0.01  (scaling="window" on changes; else 1)
        z_hat = scale * nu * loc(V h_W + b_v) + mean  h_W: the last step of the RNN over window / nu;
                                                      loc: the head's location (mu, or the median)
        z_hat = base + alpha_k (z_hat - base)         shrunk towards no change
        window <- [window, (z_hat - mean) / scale][-W:]
    levels = y_origin + cumsum(z) (diff), y_origin exp(cumsum(z)) (logreturn), z (level),
             step by step for the seasonal targets (export_seasonal.py)
    forecast = mean over the networks

A ``Combination``'s graph holds each member's graph (its names prefixed ``m{k}_``), each
reading the last levels it needs of ``history``, and returns their mean. Only the point
forecast is in the graph: the intervals come from sample paths (random draws),
which ``rnnlab forecast predict`` computes. The networks run in float32 (ONNX's LSTM / GRU /
RNN operators), the rest in float64, as in rnnlab. ``steps`` is fixed when the graph is made
(the recursion is unrolled: one subgraph per network and step ahead).
"""

from __future__ import annotations

import numpy as np

from rnnlab.errors import UserError
from rnnlab.export.onnx_graph import Graph, add_layers, save
from rnnlab.forecast.estimator import export_seasonal as seasonal
from rnnlab.forecast.series import targets as T

SEASONAL = T.SEASONAL  # their transforms: export_seasonal.py


def _i64(*v):
    return np.array(v, np.int64)


def _inputs(g: Graph, f):
    """``z`` (M, W) transformed, ``s`` scaled, ``y_origin`` (M, 1) from ``history``."""
    c, W, y = g.const, f.window, "history"
    mean, scale = c(np.float64(f.scaler_.mean_), "mean"), c(np.float64(f.scaler_.scale_), "scale")
    axis1 = c(_i64(1), "axis1")
    if f.target in SEASONAL:
        z = seasonal.window(g, f, y)
    elif f.target == "level":
        z = y
    else:
        lo = g.node("Slice", [y, c(_i64(0), "zero"), c(_i64(-1), "minus1"), axis1], ["y_prev"])
        hi = g.node("Slice", [y, c(_i64(1), "one"), c(_i64(W + 1), "end"), axis1], ["y_now"])
        if f.target == "logreturn":
            lo, hi = g.node("Log", [lo], ["log_prev"]), g.node("Log", [hi], ["log_now"])
        z = g.node("Sub", [hi, lo], ["z"])  # (M, W)
    s = g.node("Div", [g.node("Sub", [z, mean], ["z_c"]), scale], ["s"])
    y_origin = g.node("Slice", [y, c(_i64(-1), "last"), c(_i64(1 << 62), "big"), axis1], ["y_origin"])
    return z, s, y_origin


def _network(g: Graph, f, net, win: str, q: str, p: str, W: int) -> str:
    """One application of network ``net`` (weights named ``p``) to the scaled windows ``win``
    (M, W) float64: its point forecast (M, K) float64 (the head's location, times the window
    scale ``nu`` under ``scaling="window"``)."""
    from onnx import TensorProto

    c = g.const
    scaled = f.window_scaled
    if scaled:  # nu = mean |s| + 0.01 (Forecaster.window_scale)
        absolute = g.node("Abs", [win], [q + "abs"])
        mean_abs = g.node("ReduceMean", [absolute], [q + "mabs"], axes=[1])  # opset 17: an attribute
        nu = g.node("Add", [mean_abs, c(np.float64(0.01), "nu_floor")], [q + "nu"])
        win = g.node("Div", [win, nu], [q + "win_nu"])
    V = net.head.params["weight"]
    b = net.head.params.get("bias", np.zeros(net.head.out_features, np.float32))
    x32 = g.node("Cast", [win], [q + "x32"], to=TensorProto.FLOAT)  # (M, W)
    xt = g.node("Transpose", [x32], [q + "xt"], perm=[1, 0])
    x3 = g.node("Unsqueeze", [xt, c(_i64(2), "axis2")], [q + "x3"])  # (W, M, 1)
    out, _ = add_layers(g, net.rnn, x3, q, weights=p)
    h_last = g.node("Gather", [out, c(np.array(W - 1, np.int64), "t_last")], [q + "h"], axis=0)
    pred = g.node("Gemm", [h_last, c(V, p + "V"), c(b, p + "b_v")], [q + "pred"], transB=1)  # V h_W + b_v
    pred = g.node("Cast", [pred], [q + "pred64"], to=TensorProto.DOUBLE)
    head, K = f.head_, f._n_out
    if head.P > 1:  # the location of each step's P outputs: mu, or the median quantile
        per_step = g.node("Reshape", [pred, c(np.array([-1, K, head.P], np.int64), "shape_kp")], [q + "kp"])
        where = 0
        if head.likelihood == "quantile":  # sorted ascending first (crossed quantiles)
            n_params = c(_i64(head.P), "n_params")
            per_step = g.node("TopK", [per_step, n_params], [q + "sorted", q + "order"], axis=2, largest=0)[0]
            where = int(np.searchsorted(head.levels, 0.5))
        pred = g.node("Gather", [per_step, c(np.array(where, np.int64), "loc_index")], [q + "loc"], axis=2)
    if scaled:
        pred = g.node("Mul", [pred, nu], [q + "pred_nu"])
    return pred


def _member(g: Graph, f, k: int, z: str, s: str, y_origin: str, steps: int) -> str:
    """Network k's forecast path of levels (M, steps)."""
    c, W, level, p = g.const, f.window, f.target == "level", f"n{k}_"
    mean, scale, axis1, last, big = "mean", "scale", "axis1", "last", "big"
    alpha = c(np.float64(f.shrinks_[k]), p + "alpha")
    base = g.node("Slice", [z, last, big, axis1], [p + "base0"]) if level else c(np.float64(0.0), "zero_f")
    win, path, n = s, list[str](), 0
    while n < steps:
        q = f"{p}s{len(path)}_"
        pred = _network(g, f, f.nets_[k], win, q, p, W)
        zh = g.node("Add", [g.node("Mul", [pred, scale], [q + "zs"]), mean], [q + "zh"])
        d = g.node("Sub", [zh, base], [q + "d"])
        zh = g.node("Add", [base, g.node("Mul", [alpha, d], [q + "ad"])], [q + "zk"])  # shrink
        path.append(zh)
        n += f._n_out
        if level:
            base = g.node("Slice", [zh, last, big, axis1], [q + "base"])
        sh = g.node("Div", [g.node("Sub", [zh, mean], [q + "zc"]), scale], [q + "sh"])
        both = g.node("Concat", [win, sh], [q + "both"], axis=1)
        win = g.node("Slice", [both, c(_i64(-W), "minus_w"), big, axis1], [q + "win"])
    zpath = g.node("Concat", path, [p + "zpath_all"], axis=1) if len(path) > 1 else path[0]
    zpath = g.node("Slice", [zpath, c(_i64(0), "zero"), c(_i64(steps), "steps"), axis1], [p + "zpath"])
    if level:
        return zpath
    if f.target in SEASONAL:
        return seasonal.levels(g, f, "history", zpath, steps, p)
    cum = g.node("CumSum", [zpath, c(np.array(1, np.int64), "axis_scalar")], [p + "cum"])
    if f.target == "diff":
        return g.node("Add", [y_origin, cum], [p + "levels"])
    return g.node("Mul", [y_origin, g.node("Exp", [cum], [p + "growth"])], [p + "levels"])


def build(forecaster, steps: int | None = None):
    """The ``onnx.ModelProto`` of a fitted ``Forecaster`` or ``Combination`` for ``steps``
    (default its horizon)."""
    forecaster._check_fitted()
    forecaster = vars(forecaster).get("model_", forecaster)  # what a Forecaster resolved at fit
    ids = getattr(forecaster, "series_ids_", None) or []
    if len(ids) > 1:  # one graph holds one scaler: the others' series would be silently off
        raise UserError(
            f"this model was fitted on {len(ids)} series, each with its own scaler; the ONNX graph "
            "holds one: export a model of one series (a panel model forecasts with rnnlab forecast predict)"
        )
    if hasattr(forecaster, "members_"):
        return _combination(forecaster, steps)
    return _forecaster(forecaster, steps)


def _combination(comb, steps: int | None):
    """A ``Combination``'s graph: each member's own graph (its names prefixed ``m{k}_``) reads
    the last ``levels_read`` columns of ``history`` it needs; ``forecast`` is their mean."""
    from onnx import TensorProto, compose, helper

    steps = comb.horizon if steps is None else int(steps)
    L, g = comb.levels_read, Graph()
    total = None
    for k, m in enumerate(comb.members_):
        sub = compose.add_prefix(_forecaster(m, steps), f"m{k}_")
        start = g.const(_i64(L - m.levels_read), f"from{k}")
        g.node(
            "Slice", ["history", start, g.const(_i64(L), "to"), g.const(_i64(1), "axis")], [f"m{k}_history"]
        )
        g.nodes.extend(sub.graph.node)
        g.inits.extend(sub.graph.initializer)
        out = f"m{k}_forecast"
        total = out if total is None else g.node("Add", [total, out], [f"sum{k}"])
    g.node("Div", [total, g.const(np.float64(len(comb.members_)), "members")], ["forecast"])
    inputs = [helper.make_tensor_value_info("history", TensorProto.DOUBLE, ["M", L])]
    outputs = [helper.make_tensor_value_info("forecast", TensorProto.DOUBLE, ["M", steps])]
    model = g.model("rnnlab-forecast-combination", inputs, outputs)
    meta = {"window": comb.window, "lag": L - comb.window, "steps": steps, "target": comb.target}
    helper.set_model_props(model, {**{k: str(v) for k, v in meta.items()}, "ensemble": str(len(comb.nets_))})
    return model


def _forecaster(f, steps: int | None):
    """A ``Forecaster``'s graph (module docstring)."""
    from onnx import TensorProto, helper

    if getattr(f, "n_past_", 0) or getattr(f, "n_future_", 0):
        raise UserError(
            "ONNX export of a model with covariates is not supported (yet): the graph reads the series only"
        )
    if getattr(f, "bounds", "none") != "none":
        raise UserError(
            f"ONNX export of a model with bounds={f.bounds!r} is not supported: the graph reads the "
            f"last window only, not the history the bounds come from"
        )
    steps = f.horizon if steps is None else int(steps)
    if not 1 <= steps <= 1000:
        raise ValueError(f"steps must lie in [1, 1000] (the graph unrolls them), got {steps}")
    lag = seasonal.width(f) - f.window
    g = Graph()
    z, s, y_origin = _inputs(g, f)
    paths = [_member(g, f, k, z, s, y_origin, steps) for k in range(len(f.nets_))]
    total = paths[0]
    for k, other in enumerate(paths[1:]):  # onnxruntime has no float64 Mean: a sum, then / K
        total = g.node("Add", [total, other], [f"sum{k}"])
    g.node("Div", [total, g.const(np.float64(len(paths)), "ensemble")], ["forecast"])
    inputs = [helper.make_tensor_value_info("history", TensorProto.DOUBLE, ["M", f.window + lag])]
    outputs = [helper.make_tensor_value_info("forecast", TensorProto.DOUBLE, ["M", steps])]
    model = g.model("rnnlab-forecaster", inputs, outputs)
    meta = {"window": f.window, "lag": lag, "steps": steps, "target": f.target, "ensemble": len(f.nets_)}
    helper.set_model_props(model, {k: str(v) for k, v in meta.items()})
    return model


def export_forecaster(forecaster, path, steps: int | None = None) -> str:
    """Write the forecaster's ONNX graph to ``path`` (atomically); returns the path."""
    return save(build(forecaster, steps), path)


def histories(forecaster, y, origins) -> np.ndarray:
    """The graph's input for ``origins`` of the levels ``y``: ``(M, W + lag)`` float64."""
    L = forecaster.levels_read
    y = np.asarray(y, np.float64)
    origins = np.asarray(origins, np.int64).reshape(-1)
    if len(origins) and (origins.min() < L - 1 or origins.max() >= len(y)):
        raise ValueError(
            f"the graph reads {L} levels up to each origin: origins must lie in [{L - 1}, {len(y) - 1}]"
        )
    return y[origins[:, None] + np.arange(-L + 1, 1)[None, :]]
