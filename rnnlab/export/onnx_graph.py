"""ONNX export of rnnlab's recurrent layers: ``RNN`` (tanh, relu), ``LSTM``, ``GRU`` (both forms).

Each layer of the stack is one ONNX operator (``RNN``, ``LSTM``, ``GRU``, opset 14+), with
``direction="bidirectional"`` for two directions; between layers the operator's output
``Y (T, D, N, H)`` becomes the next layer's input ``(T, N, D*H)`` (forward then reverse, as
rnnlab and PyTorch concatenate them). What differs between the two worlds is the layout of the
weights:

    gates      rnnlab (PyTorch)      ONNX
    LSTM       i, f, g, o            i, o, f, c      (g is ONNX's c, the cell candidate)
    GRU        r, z, n               z, r, h
    weights    weight_ih (G*H, I)    W (D, G*H, I)   one block per direction, gates reordered
               weight_hh (G*H, H)    R (D, G*H, H)
    biases     bias_ih, bias_hh      B (D, 2*G*H) = [Wb, Rb]

The GRU's two forms are both ONNX's: PyTorch's reset-after (``n = tanh(xg_n + r * (W_n h +
b_hn))``) is ``linear_before_reset=1``; the chapter's reset-before (``c = tanh(xg_n + W_n (r *
h) + b_hn)``) is ``linear_before_reset=0``. Variable lengths go in as ``sequence_lens``: ONNX,
like rnnlab, reverses each sequence within its own length and writes zeros past it.

Graph inputs: ``input`` (T, N, I) (``(N, T, I)`` with ``batch_first``), then, as asked,
``lengths`` (N,) int64, ``h0`` (L*D, N, H) and, for the LSTM, ``c0``; outputs ``output``,
``h_n`` (and ``c_n``). T and N are free dimensions.
"""

from __future__ import annotations

import numpy as np

OPSET = 17
ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}  # ONNX's gate blocks, from ours


def _reorder(a, mode, H):
    """Gate blocks of a (G*H, ...) weight or (G*H,) bias in ONNX's order."""
    return np.concatenate([a[g * H : (g + 1) * H] for g in ORDER[mode]], axis=0)


def onnx_weights(module, layer):
    """``(W, R, B)`` of one layer, ONNX's layout (float32)."""
    H, G = module.hidden_size, module.cell.n_gates
    Ws, Rs, Bs = [], [], []
    for sfx in module._suffixes(layer):
        U, W, b_ih, b_hh = module._weights(sfx)
        Ws.append(_reorder(U, module.mode, H))
        Rs.append(_reorder(W, module.mode, H))
        Bs.append(np.concatenate([_reorder(b_ih, module.mode, H), _reorder(b_hh, module.mode, H)]))
    W, R, B = (np.stack(x).astype(np.float32) for x in (Ws, Rs, Bs))
    assert W.shape[1] == R.shape[1] == G * H and B.shape[1] == 2 * G * H
    return W, R, B


def build(module, lengths: bool = True, states: bool = True, name: str = "rnnlab"):
    """The ``onnx.ModelProto`` of ``module`` (an ``rnnlab.nn`` RNN, LSTM or GRU)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    mode, L, D, H = module.mode, module.num_layers, module.num_directions, module.hidden_size
    lstm = mode == "LSTM"
    f32 = TensorProto.FLOAT
    dims = ["N", "T", module.input_size] if module.batch_first else ["T", "N", module.input_size]
    inputs = [helper.make_tensor_value_info("input", f32, dims)]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["N"]))
    state_names = ["h0", "c0"] if lstm else ["h0"]
    if states:
        inputs += [helper.make_tensor_value_info(s, f32, [L * D, "N", H]) for s in state_names]
    nodes, inits = [], []

    def const(value, cname):
        inits.append(numpy_helper.from_array(np.asarray(value), cname))
        return cname

    x = "input"
    if module.batch_first:
        nodes.append(helper.make_node("Transpose", [x], ["x_tnc"], perm=[1, 0, 2]))
        x = "x_tnc"
    seq = ""
    if lengths:
        nodes.append(helper.make_node("Cast", ["lengths"], ["seq_lens"], to=TensorProto.INT32))
        seq = "seq_lens"
    flat = const(np.array([0, 0, -1], np.int64), "shape_flat")
    finals: list = [[] for _ in state_names]
    for layer in range(L):
        W, R, B = onnx_weights(module, layer)
        args = [x, const(W, f"W_l{layer}"), const(R, f"R_l{layer}"), const(B, f"B_l{layer}"), seq]
        for s in state_names:
            if states:
                lo, hi = const(np.array([layer * D], np.int64), f"{s}_lo{layer}"), f"{s}_hi{layer}"
                const(np.array([(layer + 1) * D], np.int64), hi)
                axis = const(np.array([0], np.int64), f"{s}_axis{layer}")
                nodes.append(helper.make_node("Slice", [s, lo, hi, axis], [f"{s}_l{layer}"]))
                args.append(f"{s}_l{layer}")
            else:
                args.append("")
        outs = [f"Y_l{layer}", f"Yh_l{layer}"] + ([f"Yc_l{layer}"] if lstm else [])
        attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
        if mode == "GRU":
            attrs["linear_before_reset"] = int(module.reset_after)
        if mode == "RNN":
            attrs["activations"] = [module.nonlinearity.capitalize()] * D
        nodes.append(helper.make_node(mode, args, outs, name=f"{mode.lower()}_l{layer}", **attrs))
        nodes.append(helper.make_node("Transpose", [outs[0]], [f"Yt_l{layer}"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"Yt_l{layer}", flat], [f"out_l{layer}"]))
        x = f"out_l{layer}"
        for k, o in enumerate(outs[1:]):
            finals[k].append(o)
    if module.batch_first:
        nodes.append(helper.make_node("Transpose", [x], ["output"], perm=[1, 0, 2]))
    else:
        nodes.append(helper.make_node("Identity", [x], ["output"]))
    out_names = ["h_n", "c_n"] if lstm else ["h_n"]
    for k, o in enumerate(out_names):
        nodes.append(helper.make_node("Concat", finals[k], [o], axis=0))
    out_dims = ["N", "T", D * H] if module.batch_first else ["T", "N", D * H]
    outputs = [helper.make_tensor_value_info("output", f32, out_dims)]
    outputs += [helper.make_tensor_value_info(o, f32, [L * D, "N", H]) for o in out_names]
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnnlab")
    model.ir_version = min(model.ir_version, 8)  # readable by onnxruntime releases of 2022 on
    onnx.checker.check_model(model)
    return model


def to_onnx(module, path, lengths: bool = True, states: bool = True) -> str:
    """Write ``module`` as an ONNX model to ``path`` (atomically); returns the path.

    ``lengths``: a ``lengths`` (N,) int64 input for padded batches; ``states``: initial states
    as inputs (else zeros). Needs the ``onnx`` package (``pip install "rnnlab[onnx]"``)."""
    if getattr(module, "mode", None) not in ORDER:
        raise TypeError(f"to_onnx exports rnnlab.nn RNN, LSTM and GRU layers, got {type(module).__name__}")
    try:
        model = build(module, lengths, states)
    except ImportError as e:
        raise ImportError('ONNX export needs the onnx package: pip install "rnnlab[onnx]"') from e
    from rnnlab.io import atomic_write

    data = model.SerializeToString()

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write)
