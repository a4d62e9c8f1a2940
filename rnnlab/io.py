"""Files, all or nothing: every model, checkpoint, report and plot rnnlab writes goes through here.

    atomic_write(path, write)     write(tmp) into a fresh temporary file beside ``path``, fsync,
                                  rename over ``path``, fsync the folder: a crash leaves the old
                                  file or the new one, never half of either
    write_json / write_tensors    JSON (strict: no NaN) and safetensors, atomically
    read_tensors                  safetensors (no pickle: safe on a file from anyone)
    check_output_path             fail BEFORE a long run if an output cannot be written there
    write_dir(dir, fill, keep, owned)
                                  a directory as a whole: fill a fresh one beside ``dir``, carry
                                  over every entry rnnlab did not write, swap it in (one
                                  ``renameat2`` exchange on Linux), remove the old; first remove
                                  the temporaries of killed writes beside it (``clean_stale``)
    check_target_dir              refuse a non-empty directory without our format marker (no --overwrite)
    read_json_object / check_schema / check_finite
                                  reading back: JSON objects only, typed keys, finite tensors
    write_report                  a report as strict JSON, non-finite numbers as null + reason;
                                  the path ``-``: standard output (``report_to_stdout``)

Temporary names are unique per call (``tempfile.mkstemp``/``mkdtemp``), so two runs writing
the same target never collide; files and folders get the usual modes (0666/0777 less the umask).
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import re
import shutil
import stat
import sys
import tempfile
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np

from rnnlab.errors import UserError
from rnnlab.stale import clean_stale, hold


def _fsync_dir(folder) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write) -> str:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = os.path.abspath(str(path))
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".rnnlab-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual mode
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)
    return path


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path, obj, indent=1) -> str:
    """Strict JSON (NaN and inf refused), atomically."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=False)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return atomic_write(path, write)


def write_tensors(path, tensors) -> str:
    """A dict of arrays as safetensors, atomically (0-d arrays stay 0-d). A failed write (a full
    disk) is the ``OSError`` safetensors wraps in its own error (``IoError(Os { code: 28 ..``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}

    def write(tmp):
        try:
            save_file(arrays, tmp)
        except SafetensorError as e:
            code = re.search(r"code: (\d+)", str(e))
            err = int(code.group(1)) if code else errno.EIO
            raise OSError(err, os.strerror(err), str(path)) from None

    return atomic_write(path, write)


def read_tensors(path) -> dict:
    """A safetensors file as arrays. It must be a regular file (``ValueError`` otherwise, at
    once): safetensors' own open of a FIFO, or of a link to one, blocked for ever (issue 34)."""
    from safetensors.numpy import load_file

    fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{os.path.basename(str(path))} is not a regular file")
    finally:
        os.close(fd)
    return load_file(str(path))


def can_write_into(folder) -> bool:
    """Whether a file can be created in ``folder`` now: tried, not guessed from the mode bits
    (which say yes to root everywhere, even on /proc or a read-only mount)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".rnnlab-probe-", dir=str(folder))
    except OSError:
        return False
    os.close(fd)
    os.remove(probe)
    return True


def output_file_problem(path, suffix: str) -> str | None:
    """Why an output file could not be written at ``path`` (None: it can; ``-``, standard output,
    always can for a JSON report)."""
    if path == STDOUT and suffix == ".json":
        return None
    path = os.path.abspath(str(path))
    folder = os.path.dirname(path)
    if not path.lower().endswith(suffix):
        return f"must name a {suffix} file, got {path}"
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist"
    if os.path.isdir(path):
        return f"{path} is a directory"
    if not can_write_into(folder):
        return f"cannot write into {folder}"
    return None


def check_output_path(path, suffix: str, option: str) -> str:
    """Fail before training if an output file cannot be written where asked."""
    problem = output_file_problem(path, suffix)
    if problem:
        raise UserError(f"{option}: {problem}")
    return path if path == STDOUT else os.path.abspath(str(path))


# ----------------------------------------------------------------------------- directories


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _exchange(a: str, b: str) -> bool:
    """Swap the paths ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``);
    False where the system cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def _swap_in(new: str, target: str) -> None:
    """Put the directory ``new`` at ``target``; the old ``target`` (if any) ends up at ``new``.

    With an exchange the target is never missing; elsewhere it is missing between two renames
    (the old one is then at a ``.rnnlab-old-*`` name beside it)."""
    for _ in range(20):  # another writer may create or swap target between the checks
        if not os.path.lexists(target):
            try:
                os.rename(new, target)
                return
            except FileNotFoundError:
                raise
            except OSError:
                continue  # it appeared meanwhile: swap with it
        try:
            if _exchange(new, target):
                return
        except FileNotFoundError:
            continue  # it vanished meanwhile: rename into place
        old = tempfile.mkdtemp(prefix=".rnnlab-old-", dir=os.path.dirname(target))
        os.rename(target, old)  # replaces the empty ``old``
        os.rename(new, target)
        os.rename(old, new)
        return
    raise OSError(f"cannot replace {target}: other writers keep changing it")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # rnnlab's files are never changed in place, only replaced
    except OSError:
        shutil.copy2(src, dst)


def write_dir(target, fill, keep=(), owned=None) -> str:
    """A directory written as a whole: ``fill(tmp)`` writes a fresh temporary directory beside
    ``target``, entries of the old ``target`` are carried over (hard links where possible), then
    one swap puts it in place and the old one is removed.

    What is carried over: the entries named in ``keep``, and every entry that ``owned`` (a
    collection of names, or a predicate on a name) does not claim: only files this kind of
    directory writes are ever dropped, never a file rnnlab did not write. ``owned=None``
    claims every entry (for a directory that only rnnlab writes into, e.g. a checkpoint)."""
    target = os.path.abspath(str(target))
    parent = os.path.dirname(target)
    claims = (lambda name: True) if owned is None else owned if callable(owned) else set(owned).__contains__
    os.makedirs(parent, exist_ok=True)  # ``--out runs/fr`` on a fresh clone: runs/ is made
    clean_stale(parent)
    tmp = tempfile.mkdtemp(prefix=".rnnlab-", suffix=".tmp", dir=parent)
    lock = hold(tmp)  # tells clean_stale that a live writer is at work in it
    try:
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; use the usual mode
            fill(tmp)
            old = os.listdir(target) if os.path.isdir(target) and not os.path.islink(target) else []
            for name in old:
                src, dst = os.path.join(target, name), os.path.join(tmp, name)
                if os.path.lexists(dst) or (claims(name) and name not in keep):
                    continue
                if os.path.islink(src):
                    os.symlink(os.readlink(src), dst)  # a link stays a link, never followed
                elif os.path.isdir(src):
                    shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
                else:
                    _link_or_copy(src, dst)
            _fsync_dir(tmp)
        except OSError as e:  # a full disk: say which directory, and that it was not touched
            was = "it is unchanged" if os.path.lexists(target) else "nothing was written"
            raise OSError(e.errno, f"cannot write {target}: {e.strerror or e}; {was}") from None
        _swap_in(tmp, target)
    finally:  # the new one on failure, else the old one; an old link (to a folder
        if os.path.islink(tmp):  # elsewhere) is dropped as a link, what it points to never touched
            os.unlink(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            os.close(lock)
    _fsync_dir(parent)
    return target


def owned_names(directory, is_ours, names):
    """The entries of ``directory`` a writer may drop: ``names`` (a collection or a predicate)
    where ``is_ours(directory)`` (a format marker of this kind was found), nothing otherwise
    (a directory taken over with --overwrite keeps every file rnnlab did not write)."""
    return names if os.path.isdir(str(directory)) and is_ours(directory) else ()


def existing_folder_above(path) -> str:
    """The nearest existing folder above ``path`` (``write_dir`` makes the missing ones);
    ``NotADirectoryError`` where a file stands in the way."""
    parent = os.path.dirname(os.path.abspath(str(path)))
    while not os.path.isdir(parent):
        if os.path.lexists(parent):
            raise NotADirectoryError(f"{parent} exists and is not a directory")
        parent = os.path.dirname(parent)
    return parent


def check_target_dir(directory, is_ours, option: str, what: str, overwrite: bool = False) -> str:
    """Fail before any work unless ``directory`` can be (re)written: the nearest existing folder
    above it is writable, and it is missing, empty, ``is_ours(directory)`` (a model of the same kind) or
    ``overwrite`` is set. Returns the absolute path."""
    directory = os.path.abspath(str(directory))
    try:
        parent = existing_folder_above(directory)
    except NotADirectoryError as e:
        raise UserError(f"{option}: {e}") from None
    if not can_write_into(parent):
        raise UserError(f"{option}: cannot write into {parent}")
    if os.path.lexists(directory):
        if not os.path.isdir(directory) or os.path.islink(directory):
            raise UserError(f"{option}: {directory} exists and is not a directory")
        if os.listdir(directory) and not overwrite and not is_ours(directory):
            raise UserError(
                f"{option}: {directory} exists and holds other files than an rnnlab {what}; "
                "choose a new directory, or pass --overwrite to write rnnlab's files into it "
                "(the others are kept)"
            )
    return directory


# ----------------------------------------------------------------------------- reading back


MAX_JSON_BYTES = 256 * 2**20  # the largest JSON file rnnlab reads (a model's config.json is ~1 MiB)


def read_regular_file(path, limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes: a FIFO,
    a device (``/dev/zero``) or a directory raises ``ValueError`` at once instead of hanging
    or filling the memory. The file is opened non-blocking, so a FIFO never blocks the open."""
    fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        name = os.path.basename(str(path))
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{name} is not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{name} is {st.st_size} bytes, more than the {limit} allowed")
        data = fh.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise ValueError(f"{name} is more than the {limit} bytes allowed")
    return data


def read_json_object(path) -> dict:
    """A JSON file that must hold an object (``ValueError`` otherwise; NaN and inf refused, a
    file that is not a regular one or too large refused before it is read, nesting too deep
    for the parser refused)."""
    name = os.path.basename(str(path))

    def refuse(constant):
        raise ValueError(f"{name} holds {constant}, not a number")

    try:
        obj = json.loads(read_regular_file(path).decode("utf-8"), parse_constant=refuse)
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply to be a file rnnlab wrote") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{name} holds a JSON {type(obj).__name__}, not an object")
    return obj


def json_format(path) -> str | None:
    """The ``"format"`` of a JSON object file, "" for an object without one, None if unreadable."""
    try:
        obj = read_json_object(path)
    except (OSError, ValueError):
        return None
    fmt = obj.get("format", "")
    return fmt if isinstance(fmt, str) else None


_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "number": (int, float), "str": (str,)}
_TYPES.update({"bool": (bool,), "list": (list,)})
_TYPES.update({"dict": (dict,), "null": (type(None),)})


def check_schema(obj, schema: dict, where: str) -> None:
    """``schema`` maps keys to type names ("int", "number", "str", "bool", "list", "dict", "null",
    or several: "number|null"); ``ValueError`` names the first key missing or of another type
    (a bool is not a number, and numbers must be finite)."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(obj).__name__}")
    for key, spec in schema.items():
        if key not in obj:
            raise ValueError(f"{where} has no {key!r}")
        v, kinds = obj[key], spec.split("|")
        ok = any(isinstance(v, _TYPES[k]) and (k == "bool" or not isinstance(v, bool)) for k in kinds)
        if not ok or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"{where}[{key!r}] must be {' or '.join(kinds)}, got {v!r:.40}")


def check_finite(tensors: dict, where: str) -> None:
    """``ValueError`` naming the first tensor that holds NaN or inf."""
    for name, v in tensors.items():
        if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all():
            raise ValueError(f"{where}: tensor {name!r} holds NaN or infinite values")


# ----------------------------------------------------------------------------- reports


def json_safe(obj, path="", nulls=None):
    """``obj`` with every non-finite float replaced by None; ``nulls`` (a dict, filled in) maps
    the dotted path of each replaced value to the reason."""
    if isinstance(obj, dict):
        return {k: json_safe(v, f"{path}.{k}" if path else str(k), nulls) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{path}[{i}]", nulls) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), path, nulls)
    if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
        if nulls is not None:
            nulls[path] = f"not a finite number ({float(obj)})"
        return None
    return obj


STDOUT = "-"  # the report path that means standard output
_report_streams: list = []  # where a "-" report goes while report_to_stdout() is active


@contextmanager
def report_to_stdout():
    """Inside: ``write_report("-", ...)`` writes to the standard output of the moment of entry,
    and everything else printed goes to standard error, so that the JSON is all stdout holds."""
    _report_streams.append(sys.stdout)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _report_streams.pop()


def write_report(path, obj, indent=2) -> str:
    """A report as strict JSON: a value that is not a finite number is written as null, and
    the report's ``"nulls"`` says which and why. ``path`` ``-``: standard output."""
    nulls: dict = {}
    safe = json_safe(obj, nulls=nulls)
    if nulls and isinstance(safe, dict):
        safe["nulls"] = nulls
    if path != STDOUT:
        return write_json(path, safe, indent=indent)
    out = _report_streams[-1] if _report_streams else sys.stdout
    text = json.dumps(safe, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=False)
    out.write(text + "\n")
    out.flush()
    return path
