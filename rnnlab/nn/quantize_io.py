"""What a quantised layer's file holds, and the checks on reading one (``quantize.py`` writes and
reads it with ``rnnlab.io.write_tensors`` / ``read_tensors``: safetensors, atomic, no pickle).

    weight_ih_l0, weight_hh_l0, ...              int8 (G*H, K), PyTorch's names and layouts;
                                                 bf16 layers: uint16 (G*H, K), bf16's bits
    weight_ih_l0.scale, weight_hh_l0.scale, ...  float32 (G*H,) one scale per output row (int8)
    bias_ih_l0, bias_hh_l0, ...                  float32 (G*H,) (when the layer has biases)
    __config__   int64 (10,): format version, mode, input, hidden, layers, bias, batch_first,
                 bidirectional, option (GRU: reset_after; RNN: 1 for relu), weight dtype
                 (0 int8, 1 bf16). Version 1 (int8 only) had 9 values and still reads.
    __sha256__   uint8 (32,): SHA-256 over every other tensor's name, dtype, shape and bytes,
                 in name order

safetensors checks its header; it cannot see a changed weight byte (an int8 is an int8), which
the digest does. ``unpack`` refuses, with one ``ValueError`` line naming the file and the first
problem, anything but exactly the tensors the configuration says, with their dtypes and shapes,
finite biases and finite positive scales. Nothing here imports the math.
"""

from __future__ import annotations

import hashlib

import numpy as np

MODES = ("RNN", "LSTM", "GRU")
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
CONFIG_KEY, DIGEST_KEY, VERSION = "__config__", "__sha256__", 2
WEIGHT_DTYPES = ("int8", "bf16")
_SIZES = ("input_size", "hidden_size", "num_layers")
_FLAGS = ("bias", "batch_first", "bidirectional", "option")
_I8, _U16, _F32 = np.dtype(np.int8), np.dtype(np.uint16), np.dtype(np.float32)


def suffixes(config: dict, layer: int) -> list[str]:
    return [f"_l{layer}", f"_l{layer}_reverse"][: 2 if config["bidirectional"] else 1]


def config_of(module) -> dict:
    """The configuration a quantised copy of ``module`` (an rnnlab LSTM, GRU or RNN) keeps:
    what its file records, less the weight dtype."""
    if module.mode == "GRU":
        option = bool(getattr(module, "reset_after", True))
    else:
        option = module.mode == "RNN" and getattr(module, "nonlinearity", "tanh") == "relu"
    return {
        "mode": module.mode,
        "input_size": module.input_size,
        "hidden_size": module.hidden_size,
        "num_layers": module.num_layers,
        "bias": module.bias,
        "batch_first": module.batch_first,
        "bidirectional": module.bidirectional,
        "option": bool(option),
    }


def expected_tensors(config: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Every tensor a quantised layer of ``config`` holds: ``{name: (dtype, shape)}``."""
    G, H = GATES[config["mode"]], config["hidden_size"]
    D, bf16 = 2 if config["bidirectional"] else 1, config.get("dtype", "int8") == "bf16"
    want: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    for layer in range(config["num_layers"]):
        K = config["input_size"] if layer == 0 else D * H
        for sfx in suffixes(config, layer):
            for name, k in (("weight_ih", K), ("weight_hh", H)):
                want[name + sfx] = (_U16 if bf16 else _I8, (G * H, k))
                if not bf16:
                    want[name + sfx + ".scale"] = (_F32, (G * H,))
            if config["bias"]:
                want["bias_ih" + sfx] = want["bias_hh" + sfx] = (_F32, (G * H,))
    return want


def digest(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """SHA-256 of the tensors (names, dtypes, shapes, bytes; name order) as 32 uint8."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        v = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{v.dtype.str}|{v.shape}|".encode())
        h.update(v.tobytes())
    return np.frombuffer(h.digest(), np.uint8).copy()


def encode(config: dict) -> np.ndarray:
    values = [int(config[k]) for k in _SIZES + _FLAGS]
    dtype = WEIGHT_DTYPES.index(config.get("dtype", "int8"))
    return np.array([VERSION, MODES.index(config["mode"]), *values, dtype], np.int64)


def decode(a: np.ndarray) -> dict:
    """The configuration ``encode`` wrote (``ValueError`` when it is not one)."""
    a = np.asarray(a)
    if a.dtype != np.int64 or a.shape not in ((9,), (10,)):
        raise ValueError(f"{CONFIG_KEY} must be 10 int64 values, got {a.dtype} {a.shape}")
    version, mode, *rest = (int(v) for v in a)
    if version not in (1, VERSION) or len(a) != 8 + version:
        raise ValueError(f"format version {version} with {len(a)} values; this rnnlab reads 1 and {VERSION}")
    sizes, flags, dtype = rest[:3], rest[3:7], (rest[7] if version > 1 else 0)
    if not 0 <= dtype < len(WEIGHT_DTYPES):
        raise ValueError(f"{CONFIG_KEY}: weight dtype {dtype} is none of {WEIGHT_DTYPES}")
    if not 0 <= mode < len(MODES) or min(sizes) < 1 or max(sizes) > 1 << 20:
        raise ValueError(f"{CONFIG_KEY} is not a valid configuration: {a.tolist()}")
    if any(v not in (0, 1) for v in flags):
        raise ValueError(f"{CONFIG_KEY} flags must be 0 or 1: {a.tolist()}")
    config: dict = {"mode": MODES[mode], **dict(zip(_SIZES, sizes))}
    config.update({k: bool(v) for k, v in zip(_FLAGS, flags)})
    config["dtype"] = WEIGHT_DTYPES[dtype]
    return config


def check_tensors(config: dict, tensors: dict) -> dict[str, np.ndarray]:
    """``tensors`` if they are exactly what a layer of ``config`` holds (names, dtypes, shapes;
    finite biases; finite, positive scales), else ``ValueError`` naming the first problem."""
    want = expected_tensors(config)
    missing, extra = sorted(set(want) - set(tensors)), sorted(set(tensors) - set(want))
    if missing or extra:
        raise ValueError(f"missing tensors {missing[:3]}, unexpected tensors {extra[:3]}")
    out = {}
    for name, (dtype, shape) in want.items():
        v = np.asarray(tensors[name])
        if v.dtype != dtype or v.shape != shape:
            raise ValueError(f"'{name}' is {v.dtype} {v.shape}, expected {dtype} {shape}")
        if dtype == _F32 and not np.isfinite(v).all():
            raise ValueError(f"'{name}' has NaN or inf values")
        if dtype == _U16 and ((v & 0x7F80) == 0x7F80).any():  # bf16's exponent all ones
            raise ValueError(f"'{name}' has NaN or inf values (bf16)")
        if name.endswith(".scale") and not (v > 0).all():
            raise ValueError(f"'{name}' has scales <= 0")
        out[name] = np.ascontiguousarray(v)
    return out


def pack(config: dict, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors of the file: ``params``, the encoded configuration and their digest."""
    tensors = {**check_tensors(config, params), CONFIG_KEY: encode(config)}
    return {**tensors, DIGEST_KEY: digest(tensors)}


def unpack(tensors: dict[str, np.ndarray], what: str = "file") -> tuple[dict, dict[str, np.ndarray]]:
    """``(config, params)`` of a file's tensors, checked (``ValueError``: one line)."""
    try:
        if CONFIG_KEY not in tensors or DIGEST_KEY not in tensors:
            raise ValueError(f"not a quantised rnnlab layer (no {CONFIG_KEY} or {DIGEST_KEY})")
        rest = {k: v for k, v in tensors.items() if k != DIGEST_KEY}
        stored = np.asarray(tensors[DIGEST_KEY])
        if stored.dtype != np.uint8 or not np.array_equal(stored, digest(rest)):
            raise ValueError("its SHA-256 does not match its contents (changed or damaged)")
        config = decode(rest.pop(CONFIG_KEY))
        return config, check_tensors(config, rest)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None
