"""rnnlab layers to and from Keras 3 and PyTorch.

**PyTorch** keeps the same names and layouts as rnnlab (``weight_ih_l0``, gates ``i f g o`` and
``r z n``): ``layer.load_state_dict(torch_module.state_dict())`` reads a ``torch.nn`` module
(tensors convert with ``numpy()``), and ``to_torch(layer)`` returns the equivalent ``torch.nn``
module (torch imported only then; the chapter's reset-before GRU has no PyTorch module).

**Keras** stores a layer as ``[kernel (I, G*H), recurrent_kernel (H, G*H), bias]``:

    Keras      gates      bias
    LSTM       i f c o    one (4H,): rnnlab's b_ih, with b_hh = 0 (to Keras: b_ih + b_hh)
    GRU        z r h      reset_after=True: (2, 3H) = [input bias, recurrent bias];
                          reset_after=False: one (3H,), as for the LSTM

``Bidirectional`` holds the forward layer's weights, then the backward layer's; a stack is a list
of layers, each one rnnlab layer of ``num_layers``. ``from_keras(layers)`` reads Keras layer
objects (their ``get_config`` and ``get_weights``; keras itself is not imported);
``keras_weights(layer)`` gives the weight lists to ``set_weights``; ``to_keras(layer)`` builds
the Keras layers (imports keras).
"""

from __future__ import annotations

import numpy as np

import rnnlab.nn as rnn

# rnnlab's gate blocks, taken from Keras' order (the same permutation both ways for these)
_FROM_KERAS = {"LSTM": [0, 1, 2, 3], "GRU": [1, 0, 2]}


def _blocks(a, order, H, axis):
    return np.concatenate([np.take(a, range(g * H, (g + 1) * H), axis=axis) for g in order], axis=axis)


def _kind(layer):
    if type(layer).__name__ == "Bidirectional":
        return _kind(layer.forward_layer)[0], True
    name = type(layer).__name__
    if name not in _FROM_KERAS:
        raise TypeError(f"from_keras reads Keras LSTM, GRU and Bidirectional layers, got {name}")
    return name, False


def from_keras(layers, dtype=np.float32):
    """An rnnlab ``LSTM`` or ``GRU`` equal to a Keras layer, or to a list of stacked Keras layers
    of one kind (each ``LSTM``, ``GRU`` or ``Bidirectional`` of one; same units). The Keras
    layers must be built (called once, or ``build``)."""
    layers = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    kinds = [_kind(k) for k in layers]
    mode, bidir = kinds[0]
    if any(k != kinds[0] for k in kinds):
        raise ValueError(f"from_keras: the layers must be of one kind, got {kinds}")
    cells = [k.forward_layer if bidir else k for k in layers]
    configs = [c.get_config() for c in cells]
    H = configs[0]["units"]
    for c in configs:
        if c["units"] != H:
            raise ValueError("from_keras: every layer of a stack must have the same units")
        if c.get("activation", "tanh") != "tanh" or c.get("recurrent_activation", "sigmoid") != "sigmoid":
            raise ValueError("from_keras: only activation='tanh', recurrent_activation='sigmoid'")
        if bidir and layers[0].get_config().get("merge_mode", "concat") != "concat":
            raise ValueError("from_keras: Bidirectional must use merge_mode='concat'")
    weights = [k.get_weights() for k in layers]
    kw = {"reset_after": bool(configs[0].get("reset_after", True))} if mode == "GRU" else {}
    I = weights[0][0].shape[0]
    module = getattr(rnn, mode)(I, H, num_layers=len(layers), bidirectional=bidir, dtype=dtype, **kw)
    for layer, w in enumerate(weights):
        per_dir = len(w) // (2 if bidir else 1)
        for d, sfx in enumerate(module._suffixes(layer)):
            _set_from_keras(module, sfx, w[d * per_dir : (d + 1) * per_dir], configs[layer])
    return module


def _set_from_keras(module, sfx, w, config):
    mode, H, p = module.mode, module.hidden_size, module.params
    order = _FROM_KERAS[mode]
    kernel, recurrent = w[0], w[1]
    p["weight_ih" + sfx][...] = _blocks(kernel, order, H, 1).T
    p["weight_hh" + sfx][...] = _blocks(recurrent, order, H, 1).T
    bias = w[2] if config.get("use_bias", True) else np.zeros(len(order) * H)
    if mode == "GRU" and module.reset_after:
        b_ih, b_hh = bias[0], bias[1]
    else:
        b_ih, b_hh = bias, np.zeros_like(bias)
    p["bias_ih" + sfx][...] = _blocks(b_ih, order, H, 0)
    p["bias_hh" + sfx][...] = _blocks(b_hh, order, H, 0)


def keras_weights(module):
    """Per layer of ``module``, the weight list Keras' ``set_weights`` takes (a Bidirectional
    layer's: forward then backward)."""
    if getattr(module, "mode", None) not in _FROM_KERAS:
        raise TypeError("keras_weights: an rnnlab.nn LSTM or GRU")
    mode, H = module.mode, module.hidden_size
    order = _FROM_KERAS[mode]  # its own inverse
    out = []
    for layer in range(module.num_layers):
        ws = []
        for sfx in module._suffixes(layer):
            U, W, b_ih, b_hh = module._weights(sfx)
            ws.append(_blocks(U.T, order, H, 1))
            ws.append(_blocks(W.T, order, H, 1))
            if mode == "GRU" and module.reset_after:
                ws.append(np.stack([_blocks(b_ih, order, H, 0), _blocks(b_hh, order, H, 0)]))
            else:
                ws.append(_blocks(b_ih + b_hh, order, H, 0))
        out.append(ws)
    return out


def to_keras(module, return_sequences=True):
    """The Keras layers equal to ``module`` (one per layer; ``Bidirectional`` for two
    directions), built and holding its weights. Keras runs time-major data batch first:
    ``(N, T, I)``."""
    import keras

    weights = keras_weights(module)
    layers = []
    for layer, w in enumerate(weights):
        kw = {"reset_after": module.reset_after} if module.mode == "GRU" else {}
        cell = getattr(keras.layers, module.mode)(module.hidden_size, return_sequences=return_sequences, **kw)
        k = keras.layers.Bidirectional(cell) if module.bidirectional else cell
        in_size = module.input_size if layer == 0 else module.hidden_size * module.num_directions
        k.build((None, None, in_size))
        k.set_weights(w)
        layers.append(k)
    return layers


def to_torch(module):
    """The ``torch.nn`` RNN / LSTM / GRU equal to ``module`` (same sizes, weights copied)."""
    import torch

    if getattr(module, "mode", None) not in ("RNN", "LSTM", "GRU"):
        raise TypeError("to_torch: an rnnlab.nn RNN, LSTM or GRU")
    if module.mode == "GRU" and not module.reset_after:
        raise ValueError("to_torch: PyTorch has no reset-before GRU (reset_after=False)")
    kw = {"nonlinearity": module.nonlinearity} if module.mode == "RNN" else {}
    t = getattr(torch.nn, module.mode)(
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first,
        dropout=module.dropout,
        bidirectional=module.bidirectional,
        dtype={np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[module.dtype],
        **kw,
    )
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in module.state_dict().items()})
    return t
