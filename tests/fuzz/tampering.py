"""Hypothesis strategies that tamper with a saved model directory the way a careless hand or a
hostile sender would: edited JSON values (of the same type and of another), truncated or
re-headed safetensors, files swapped in from a second model of the same kind, and symbolic links
that point out of the directory (to a twin's file, a FIFO, a directory, ``/dev/zero``, nowhere,
themselves). Used by test_fuzz_model_dirs.py; a plain module (not a conftest.py)."""

import json
import os
import shutil
import struct

from hypothesis import strategies as st

ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(10**12), 10**400]),
    st.sampled_from([0.0, -0.0, 0.5, -1.5, 1e-320, 1e308, -1e308]),
    st.text(max_size=6),
    st.sampled_from(["", "\x00", "../../etc/passwd", "/dev/zero", "\u202eabc", "\ud800", "x" * 5000]),
    st.lists(st.integers(-3, 3), max_size=3),
    st.just({}),
    st.just({"format": "rnnlab-forecaster"}),
)


def _same_type(data, value):
    """A value of ``value``'s own JSON type, near it or at an edge (what a type check passes)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return data.draw(st.sampled_from([0, -value, value + 1, value * 1000, -1, 10**9]))
    if isinstance(value, float):
        return data.draw(st.sampled_from([0.0, -value, value * 1e6, value / 1e6, 1e300, 5e-324]))
    if isinstance(value, str):
        return data.draw(st.sampled_from(["", value[::-1], value + "x", value.upper(), "2021-13-45"]))
    if isinstance(value, list):
        return data.draw(st.sampled_from([[], value[:1], value[1:], value + value, value[::-1]]))
    return value


def _edit_node(data, obj):
    """Walk down from ``obj`` (a dict or list) and replace, retype, delete or add one entry."""
    node = obj
    while True:
        keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        how = data.draw(st.sampled_from(["same", "other", "delete", "add"]))
        if how == "same":
            node[key] = _same_type(data, child)
        elif how == "other":
            node[key] = data.draw(ODD)
        elif how == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[data.draw(st.sampled_from(["extra", "__class__", "format"]))] = data.draw(ODD)
        else:
            node.append(data.draw(ODD))
        return


def edit_json(data, path):
    """Edit one entry of the JSON file ``path``; now and then wrap it a few thousand deep."""
    try:
        obj = json.loads(open(path, "rb").read())
    except (ValueError, RecursionError):  # not JSON (truncated), or nested deep already
        return
    if isinstance(obj, (dict, list)):
        _edit_node(data, obj)
    text = json.dumps(obj, ensure_ascii=data.draw(st.booleans()))
    if data.draw(st.integers(0, 9)) == 0:
        depth = data.draw(st.sampled_from([50, 5000]))
        text = '{"params": ' * depth + text + "}" * depth
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
        fh.write(text)


def edit_tensors(data, path):
    """Truncate ``path`` (a safetensors file), append to it, or rewrite one tensor's entry in
    its header (dtype, shape, offsets, name) with the header's length fixed up."""
    raw = open(path, "rb").read()
    how = data.draw(st.sampled_from(["truncate", "append", "header"]))
    header = None
    if how == "header" and len(raw) >= 8:
        n = struct.unpack("<Q", raw[:8])[0]
        try:
            header = json.loads(raw[8 : 8 + n])
        except ValueError:  # truncated or edited before: truncate it further
            header = None
    if how == "append":
        raw += data.draw(st.binary(min_size=1, max_size=64))
    elif not isinstance(header, dict):
        raw = raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))]
    else:
        names = sorted(k for k in header if k != "__metadata__")
        if names:
            entry = header[data.draw(st.sampled_from(names))]
            field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "name"]))
            if field == "dtype":
                entry["dtype"] = data.draw(st.sampled_from(["F64", "F16", "I64", "BOOL", "U8", "X"]))
            elif field == "shape":
                entry["shape"] = data.draw(st.sampled_from([[], [0], [1, 1], entry["shape"][::-1], [2**40]]))
            elif field == "data_offsets":
                a, b = entry["data_offsets"]
                entry["data_offsets"] = data.draw(st.sampled_from([[b, a], [a, b + 4], [0, 4], [a, a]]))
            else:
                header["net9." + names[0]] = header.pop(names[0])
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        raw = struct.pack("<Q", len(text)) + text + raw[8 + n :]
    open(path, "wb").write(raw)


def files_of(d) -> list:
    """Every file under ``d``, relative (links not followed)."""
    return sorted(os.path.relpath(os.path.join(r, n), d) for r, _, ns in os.walk(d) for n in ns)


def symlink_out(data, d, name, twin, outside):
    """Replace ``d/name`` (a file or a folder) by a link out of ``d``: to the twin model's entry
    of that name, to a FIFO or a folder or a file in ``outside``, to ``/dev/zero``, to a path
    that does not exist, to itself, or to a copy of itself in ``outside`` (a model that loads:
    nothing may be written through the link)."""
    kinds = ["twin", "fifo", "folder", "file", "zero", "nowhere", "loop", "copy"]
    target = data.draw(st.sampled_from(kinds))
    path = os.path.join(d, name)
    copy = os.path.join(outside, "copy-" + name.replace(os.sep, "-"))
    if target == "copy" and not os.path.islink(path) and not os.path.lexists(copy):  # the entry
        (shutil.copytree if os.path.isdir(path) else shutil.copyfile)(path, copy)
    where = {
        "twin": os.path.join(twin, name),
        "fifo": os.path.join(outside, "fifo"),
        "folder": outside,
        "file": os.path.join(outside, "notes.txt"),
        "zero": "/dev/zero",
        "nowhere": os.path.join(outside, "no-such-file"),
        "loop": os.path.join(d, name),
        "copy": copy,
    }[target]
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)
    os.symlink(where, path)


def swap_in(data, d, name, twin):
    """Copy the twin model's file ``name`` over this one's (a model of the same kind: other
    sizes, another target, another cell)."""
    src = os.path.join(twin, name)
    if os.path.isfile(src):
        with open(src, "rb") as fh:
            raw = fh.read()
        os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
        with open(os.path.join(d, name), "wb") as fh:
            fh.write(raw)


def tamper(data, d, twin, outside) -> list:
    """One to three tamperings of the model directory ``d``; returns what was done (for the
    failure message)."""
    done = []
    for _ in range(data.draw(st.integers(1, 3))):
        entries = files_of(d) + sorted(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))
        if not entries:
            break
        name = data.draw(st.sampled_from(entries))
        path = os.path.join(d, name)
        how = data.draw(st.sampled_from(["json", "tensors", "swap", "link"]))
        if how == "link" or os.path.islink(path) or os.path.isdir(path):
            symlink_out(data, d, name, twin, outside)
            how = "link"
        elif how == "json" and name.endswith(".json"):
            edit_json(data, path)
        elif how == "tensors" and name.endswith(".safetensors"):
            edit_tensors(data, path)
        else:
            swap_in(data, d, name, twin)
            how = "swap"
        done.append((how, name))
    return done
