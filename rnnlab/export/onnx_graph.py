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


class Graph:
    """Nodes and initialisers being collected for one ``onnx.GraphProto``."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self._names: set = set()

    def const(self, value, name):
        """An initialiser ``name`` holding ``value`` (made once: a name already made is
        returned as it is); returns the name."""
        if name not in self._names:
            self._names.add(name)
            self.inits.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, outputs, **attrs):
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs), **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def model(self, name, inputs, outputs):
        import onnx

        graph = self.helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        opset = [self.helper.make_opsetid("", OPSET)]
        model = self.helper.make_model(graph, opset_imports=opset, producer_name="rnnlab")
        model.ir_version = min(model.ir_version, 8)  # readable by onnxruntime releases of 2022 on
        onnx.checker.check_model(model)
        return model


def add_layers(g: Graph, module, x: str, prefix: str, seq: str = "", states=None, weights=None):
    """The nodes of ``module``'s stack on the time-major input ``x`` (T, N, I): returns the name
    of its output (T, N, D*H) and, per state, the names of each layer's final (D, N, H).
    ``states``: names of (L*D, N, H) initial states (h0, c0), or None for zeros. ``weights``:
    the prefix of the weights' names (default ``prefix``; the same one for a module applied
    several times in one graph)."""
    mode, L, D, H = module.mode, module.num_layers, module.num_directions, module.hidden_size
    n_states = 2 if mode == "LSTM" else 1
    w = prefix if weights is None else weights
    flat = g.const(np.array([0, 0, -1], np.int64), f"{w}shape_flat")
    finals: list = [[] for _ in range(n_states)]
    for layer in range(L):
        p, wp = f"{prefix}l{layer}_", f"{w}l{layer}_"
        W, R, B = onnx_weights(module, layer)
        args = [x, g.const(W, wp + "W"), g.const(R, wp + "R"), g.const(B, wp + "B"), seq]
        for k in range(n_states):
            if states is None:
                args.append("")
                continue
            bounds = [
                g.const(np.array([v], np.int64), f"{p}s{k}_{n}")
                for n, v in (("lo", layer * D), ("hi", (layer + 1) * D))
            ]
            axis = g.const(np.array([0], np.int64), f"{p}s{k}_axis")
            args.append(g.node("Slice", [states[k], *bounds, axis], [f"{p}s{k}"]))
        outs = [p + "Y", p + "Yh"] + ([p + "Yc"] if mode == "LSTM" else [])
        attrs: dict = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
        if mode == "GRU":
            attrs["linear_before_reset"] = int(module.reset_after)
        if mode == "RNN":
            attrs["activations"] = [module.nonlinearity.capitalize()] * D
        g.node(mode, args, outs, name=f"{p}{mode.lower()}", **attrs)
        Yt = g.node("Transpose", [outs[0]], [p + "Yt"], perm=[0, 2, 1, 3])  # (T, N, D, H)
        x = g.node("Reshape", [Yt, flat], [p + "out"])  # (T, N, D*H): forward, then reverse
        for k, o in enumerate(outs[1:]):
            finals[k].append(o)
    return x, finals


def build(module, lengths: bool = True, states: bool = True, name: str = "rnnlab"):
    """The ``onnx.ModelProto`` of ``module`` (an ``rnnlab.nn`` RNN, LSTM or GRU)."""
    from onnx import TensorProto, helper

    g = Graph()
    L, D, H, lstm = module.num_layers, module.num_directions, module.hidden_size, module.mode == "LSTM"
    f32 = TensorProto.FLOAT
    dims = ["N", "T", module.input_size] if module.batch_first else ["T", "N", module.input_size]
    inputs = [helper.make_tensor_value_info("input", f32, dims)]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["N"]))
    state_names = ["h0", "c0"] if lstm else ["h0"]
    if states:
        inputs += [helper.make_tensor_value_info(s, f32, [L * D, "N", H]) for s in state_names]
    x = g.node("Transpose", ["input"], ["x_tnc"], perm=[1, 0, 2]) if module.batch_first else "input"
    seq = g.node("Cast", ["lengths"], ["seq_lens"], to=TensorProto.INT32) if lengths else ""
    x, finals = add_layers(g, module, x, "", seq, state_names if states else None)
    g.node(
        "Transpose" if module.batch_first else "Identity",
        [x],
        ["output"],
        **({"perm": [1, 0, 2]} if module.batch_first else {}),
    )
    out_names = ["h_n", "c_n"] if lstm else ["h_n"]
    for k, o in enumerate(out_names):
        g.node("Concat", finals[k], [o], axis=0)
    out_dims = ["N", "T", D * H] if module.batch_first else ["T", "N", D * H]
    outputs = [helper.make_tensor_value_info("output", f32, out_dims)]
    outputs += [helper.make_tensor_value_info(o, f32, [L * D, "N", H]) for o in out_names]
    return g.model(name, inputs, outputs)


def save(model, path) -> str:
    """Write an ``onnx.ModelProto`` to ``path`` atomically; returns the path."""
    from rnnlab.io import atomic_write

    data = model.SerializeToString()

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write)


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
    return save(model, path)
