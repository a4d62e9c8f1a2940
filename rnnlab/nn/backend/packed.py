"""A time step's product by a fixed weight matrix through oneDNN's matmul primitive, the weight
reordered once into the primitive's own blocked layout::

    int8   C (M, R) int32    = A (M, K) uint8 @ B (K, R) int8         exact
    bf16   C (M, R) float32 += A (M, K) bf16  @ B (K, R) bf16         (a "sum" post-op: C holds b_hh)

``dnnl_gemm_u8s8s32`` and ``dnnl_gemm_bf16bf16f32`` (``intgemm.py``, ``bf16gemm.py``) copy B into
that layout at every call. At a step's sizes (M = the batch) the copy was most of the product:
(32, 128) x (128, 512) int8 took 3.7 us here against 10.7, (7, 256) x (256, 1024) 3.5 against 11.8
(AMD EPYC, 2 threads; ``benchmarks/RESULTS.md``). The loops of ``int8_loops.py`` and
``bf16_loops.py`` call ``dnnl_primitive_execute`` at each step; the products over all
steps at once (M = T N) keep the GEMM, whose copy is paid once there.

``of(matrix)`` is a quantised matrix's ``Packed`` (made on first use, kept on the matrix), or
None where the primitive is not usable here: no oneDNN, ``RNNLAB_PACKED=0``, or its product
differs from the GEMM's (``usable``, checked once per process on operands that saturate 16-bit
sums, as ``intgemm.exact_here``). ``Packed.call(a, c)`` is a ``Call`` on fixed buffers; its
``.exec`` (primitive, stream, number of arguments, arguments: uint64) is what compiled code
passes to ``dnnl_primitive_execute`` (``execute_address``). One primitive per row count M and
OpenMP thread count (a primitive splits its work for the count it was made with), made on first
use (0.1-1 ms) and kept; all read the one packed copy (oneDNN's layout for B does not depend on
M; checked for each, and where a primitive would want another none is made: the GEMM runs).
oneDNN streams are not thread-safe: each thread has its own. The objects are destroyed with
their owners (``weakref.finalize``).
"""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from typing import Any

import numpy as np

from rnnlab.nn import backend
from rnnlab.nn.backend import bf16gemm, intgemm

_vp, _i64, _u64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64
_DIMS = _i64 * 12  # dnnl_dims_t
_CPU, _IN_ORDER, _ANY = 1, 1, 1  # dnnl_cpu, dnnl_stream_in_order, dnnl_format_tag_any
_F32, _S32, _S8, _U8, _BF16 = 3, 4, 5, 6, 2  # dnnl_data_type_t
_SRC, _DST, _WEIGHTS, _SCRATCHPAD = 1, 17, 33, 80  # DNNL_ARG_*
_Q_WEIGHTS, _Q_SCRATCHPAD, _SCRATCHPAD_USER = 131, 136, 1  # dnnl_query_*_md, dnnl_scratchpad_mode_user
KINDS = {"int8": (_U8, _S8, _S32), "bf16": (_BF16, _BF16, _F32)}  # src, weights, dst types
_NUMPY = {"int8": (np.uint8, np.int32), "bf16": (np.uint16, np.float32)}  # a's and c's arrays
# (primitive, stream, nargs, args): pointers as 64-bit integers
PROTO = ctypes.CFUNCTYPE(ctypes.c_int, _u64, _u64, ctypes.c_int, _u64)


def rows(M: int) -> int:
    """The row count a primitive is made for when a product has ``M`` rows: M up to 4, then the
    next of 6, 8, 12, 16, 24, 32, ... (the buffers have that many rows; the extra rows' products
    are not read). A new M cost ~0.15 ms a primitive: a server's batches and a beam search's
    shrinking rows made one for nearly every call."""
    if M <= 4:
        return max(M, 1)
    b = 4
    while b < M:
        b = b * 3 // 2 if b & (b - 1) == 0 else b * 4 // 3  # 4 -> 6 -> 8 -> 12 -> 16 ...
    return b


class _DNNL:
    """The C calls used here, on ``library`` (``backend.library("onednn")``), one engine and a
    stream per thread."""

    def __init__(self, library: Any):
        self.lib = lib = library.lib
        self.threads = library.get_threads  # this thread's OpenMP count
        lib.dnnl_primitive_desc_query_md.restype = _vp
        lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        lib.dnnl_memory_desc_equal.restype = ctypes.c_int
        self.engine = self.out(lib.dnnl_engine_create, _CPU, ctypes.c_size_t(0))
        self._local = threading.local()
        self._blocks: list[int] = []  # row blocks' streams
        self._streams_lock = threading.Lock()
        self.execute = PROTO(int(ctypes.cast(lib.dnnl_primitive_execute, _vp).value or 0))

    def out(self, f: Any, *args: Any) -> int:
        """``f(&handle, *args)``: the handle, or RuntimeError on a status other than 0."""
        h = _vp()
        status = f(ctypes.byref(h), *args)
        if status != 0:
            raise RuntimeError(f"oneDNN's {f.__name__} failed (status {status})")
        return int(h.value or 0)

    def stream(self) -> int:
        s = getattr(self._local, "stream", None)
        if s is None:
            s = self._local.stream = self.out(
                self.lib.dnnl_stream_create, _vp(self.engine), ctypes.c_uint(_IN_ORDER)
            )
        return s

    def block_stream(self, k: int) -> int:
        """A stream for row block ``k`` (kept: the blocks of every call reuse them)."""
        with self._streams_lock:
            while len(self._blocks) <= k:
                self._blocks.append(
                    self.out(self.lib.dnnl_stream_create, _vp(self.engine), ctypes.c_uint(_IN_ORDER))
                )
            return self._blocks[k]

    def md(self, dims: tuple, dtype: int, strides: tuple | None = None) -> int:
        """A row-major memory descriptor, or with ``strides=None`` format ``any``."""
        d = _DIMS(*dims)
        if strides is None:
            return self.out(self.lib.dnnl_memory_desc_create_with_tag, len(dims), d, dtype, _ANY)
        return self.out(self.lib.dnnl_memory_desc_create_with_strides, len(dims), d, dtype, _DIMS(*strides))

    def memory(self, md: int, data: np.ndarray) -> int:
        return self.out(self.lib.dnnl_memory_create, _vp(md), _vp(self.engine), _vp(data.ctypes.data))

    def run(self, prim: int, args: list[tuple[int, int]]) -> None:
        """Execute ``prim`` on ``(DNNL_ARG_*, memory)`` pairs and wait."""
        a = np.array(args, np.int64)  # dnnl_exec_arg_t: int arg (padded to 8), memory pointer
        status = self.execute(prim, self.stream(), len(args), a.ctypes.data)
        self.lib.dnnl_stream_wait(_vp(self.stream()))
        if status != 0:
            raise RuntimeError(f"oneDNN's matmul failed (status {status})")


def _release(lib: Any, prims: dict | None = None, mems=(), mds=(), attrs=()) -> None:
    """Destroy oneDNN's objects (``weakref.finalize``: when their owner goes, or at exit)."""
    for p in (prims or {}).values():
        if p is not None:
            lib.dnnl_primitive_destroy(_vp(p[0]))
            mds = [*mds, *p[1:]]
    for f, handles in (
        (lib.dnnl_memory_destroy, mems),
        (lib.dnnl_memory_desc_destroy, mds),
        (lib.dnnl_primitive_attr_destroy, attrs),
    ):
        for h in handles:
            f(_vp(h))


class Packed:
    """``B (K, R)`` (int8 or bf16 bits as uint16) in the matmul primitive's layout, and the
    primitives that multiply by it, one per row count."""

    def __init__(self, dnnl: _DNNL, b: np.ndarray, kind: str):
        self.dnnl, self.kind, (self.K, self.R) = dnnl, kind, b.shape
        self._lock = threading.Lock()
        self._prims: dict[tuple, tuple | None] = {}  # (M, threads) -> (primitive, src md, dst md) or None
        self.plans: dict[tuple, tuple] = {}  # the loops' kept buffers and calls (infer_cells.loop_plan)
        self._attr = self._attributes(kind)
        lib, (_, wt, _) = dnnl.lib, KINDS[kind]
        pd = self._pd(1)
        self._wmd = dnnl.out(
            lib.dnnl_memory_desc_clone, _vp(lib.dnnl_primitive_desc_query_md(_vp(pd), _Q_WEIGHTS, 0))
        )
        lib.dnnl_primitive_desc_destroy(_vp(pd))
        self._wbuf = np.zeros(int(lib.dnnl_memory_desc_get_size(_vp(self._wmd))) + 64, np.uint8)
        self._wmem = dnnl.memory(self._wmd, self._wbuf)
        weakref.finalize(
            self, _release, lib, self._prims, [self._wmem], [self._wmd], [self._attr]
        )  # at exit too
        plain = dnnl.md((self.K, self.R), wt, (self.R, 1))
        b = np.ascontiguousarray(b)
        src = dnnl.memory(plain, b)
        rpd = dnnl.out(
            lib.dnnl_reorder_primitive_desc_create,
            _vp(plain),
            _vp(dnnl.engine),
            _vp(self._wmd),
            _vp(dnnl.engine),
            None,
        )
        reorder = dnnl.out(lib.dnnl_primitive_create, _vp(rpd))
        try:
            dnnl.run(reorder, [(_SRC, src), (_DST, self._wmem)])
        finally:
            for f, h in (
                (lib.dnnl_primitive_destroy, reorder),
                (lib.dnnl_primitive_desc_destroy, rpd),
                (lib.dnnl_memory_destroy, src),
                (lib.dnnl_memory_desc_destroy, plain),
            ):
                f(_vp(h))

    def _attributes(self, kind: str) -> int:
        """The primitives' attributes: a scratchpad each ``Call`` brings (``Call``s on several
        threads at once share no buffer: with the library's own, two row blocks running one
        primitive gave wrong sums) and for bf16 a "sum" post-op (``C += A @ B``)."""
        lib = self.dnnl.lib
        attr = self.dnnl.out(lib.dnnl_primitive_attr_create)
        lib.dnnl_primitive_attr_set_scratchpad_mode(_vp(attr), _SCRATCHPAD_USER)
        if kind == "bf16":
            ops = self.dnnl.out(lib.dnnl_post_ops_create)
            lib.dnnl_post_ops_append_sum(_vp(ops), ctypes.c_float(1.0), ctypes.c_int32(0), 0)  # 0: C's type
            lib.dnnl_primitive_attr_set_post_ops(_vp(attr), _vp(ops))
            lib.dnnl_post_ops_destroy(_vp(ops))
        return attr

    def _pd(self, M: int, mds: tuple = ()) -> int:
        st, wt, dt = KINDS[self.kind]
        src, dst = mds or (
            self.dnnl.md((M, self.K), st, (self.K, 1)),
            self.dnnl.md((M, self.R), dt, (self.R, 1)),
        )
        w = self.dnnl.md((self.K, self.R), wt)
        try:
            return self.dnnl.out(
                self.dnnl.lib.dnnl_matmul_primitive_desc_create,
                _vp(self.dnnl.engine),
                _vp(src),
                _vp(w),
                None,
                _vp(dst),
                _vp(self._attr),
            )
        finally:
            self.dnnl.lib.dnnl_memory_desc_destroy(_vp(w))
            if not mds:
                for md in (src, dst):
                    self.dnnl.lib.dnnl_memory_desc_destroy(_vp(md))

    def primitive(self, M: int) -> tuple | None:
        """``(primitive, src md, dst md)`` for ``M`` rows and the calling thread's OpenMP count
        (a primitive splits its work for the count it was made with), or None where it wants
        another layout."""
        key = (M, self.dnnl.threads())
        with self._lock:
            if key not in self._prims:
                self._prims[key] = self._make(M)
            return self._prims[key]

    def _make(self, M: int) -> tuple | None:
        lib, (st, _, dt) = self.dnnl.lib, KINDS[self.kind]
        mds = (self.dnnl.md((M, self.K), st, (self.K, 1)), self.dnnl.md((M, self.R), dt, (self.R, 1)))
        pd = self._pd(M, mds)
        same = lib.dnnl_memory_desc_equal(
            _vp(lib.dnnl_primitive_desc_query_md(_vp(pd), _Q_WEIGHTS, 0)), _vp(self._wmd)
        )
        prim = self.dnnl.out(lib.dnnl_primitive_create, _vp(pd)) if same else 0
        scratch = self.dnnl.out(
            lib.dnnl_memory_desc_clone, _vp(lib.dnnl_primitive_desc_query_md(_vp(pd), _Q_SCRATCHPAD, 0))
        )
        lib.dnnl_primitive_desc_destroy(_vp(pd))
        return (prim, *mds, scratch) if same else None

    def call(self, a: np.ndarray, c: np.ndarray, stream: int = 0) -> Call | None:
        """A ``Call`` of ``c = a @ B`` (``c += a @ B`` for bf16) on these buffers, or None; on
        ``stream`` (0: this thread's)."""
        M, (at, ct) = a.shape[0], _NUMPY[self.kind]
        ok = (
            a.shape == (M, self.K)
            and c.shape == (M, self.R)
            and a.flags.c_contiguous
            and c.flags.c_contiguous
        )
        if not ok or a.dtype != at or c.dtype != ct:
            raise ValueError(
                f"Packed.call: a {a.dtype} {a.shape}, c {c.dtype} {c.shape} for B {(self.K, self.R)}"
            )
        p = self.primitive(M)
        return None if p is None else Call(self, p, a, c, stream or self.dnnl.stream())


class Call:
    """One product on fixed buffers: ``exec`` = (primitive, stream, number of arguments,
    arguments) for ``dnnl_primitive_execute``; its memory objects and scratchpad live as long as
    it does (and keep ``a``, ``c`` and the weight alive)."""

    def __init__(self, packed: Packed, prim: tuple, a: np.ndarray, c: np.ndarray, stream: int):
        d = packed.dnnl
        size = int(d.lib.dnnl_memory_desc_get_size(_vp(prim[3])))
        self._scratch = np.zeros(size + 64, np.uint8)  # 64: a size-0 scratchpad still has a pointer
        self._keep = (packed, a, c)
        self._mems = [d.memory(prim[1], a), d.memory(prim[2], c), d.memory(prim[3], self._scratch)]
        self.released = weakref.finalize(self, _release, d.lib, mems=list(self._mems))
        args = [(_SRC, self._mems[0]), (_WEIGHTS, packed._wmem), (_DST, self._mems[1])]
        self.args = np.array(args + [(_SCRATCHPAD, self._mems[2])] * (size > 0), np.int64)
        self.exec = np.array([prim[0], stream, len(self.args), self.args.ctypes.data], np.uint64)

    def __call__(self) -> None:
        status = self._keep[0].dnnl.execute(*(int(v) for v in self.exec))  # through ctypes
        if status != 0:
            raise RuntimeError(f"oneDNN's matmul failed (status {status})")


_STATE: dict[str, Any] = {}
_LOCK = threading.Lock()


def _dnnl() -> _DNNL | None:
    with _LOCK:
        if "dnnl" not in _STATE:
            lib = backend.library("onednn")
            try:
                _STATE["dnnl"] = None if lib is None else _DNNL(lib)
            except (AttributeError, RuntimeError, OSError):
                _STATE["dnnl"] = None
        return _STATE["dnnl"]


def _product(dnnl: _DNNL, a: np.ndarray, b: np.ndarray, kind: str, c: np.ndarray) -> np.ndarray:
    call = Packed(dnnl, b, kind).call(a, c)
    if call is None:
        raise RuntimeError("no primitive for the packed layout")
    call()
    return c


def _agrees(dnnl: _DNNL, kind: str) -> bool:
    """Whether the primitive gives the GEMM's product: exact for int8 on operands that saturate
    16-bit sums (``intgemm.saturating_cases``), within float32 summation for bf16."""
    rng = np.random.default_rng(0)
    if kind == "int8":
        cases = [(a, b) for a, b in intgemm.saturating_cases(rng) if a.dtype == np.uint8]
        exact = intgemm.IntGemm()
        return all(
            np.array_equal(_product(dnnl, a, b, kind, np.empty((len(a), b.shape[1]), np.int32)), exact(a, b))
            for a, b in cases
        )
    for M, K, R in [(1, 7, 3), (5, 130, 17), (33, 301, 64)]:
        a, b = bf16gemm.to_bf16(rng.standard_normal((M, K))), bf16gemm.to_bf16(rng.standard_normal((K, R)))
        c0 = rng.standard_normal((M, R)).astype(np.float32)
        got, want = _product(dnnl, a, b, kind, c0.copy()), bf16gemm.BF16Gemm()(a, b, c0.copy(), 1.0)
        scale = np.abs(bf16gemm.from_bf16(a)) @ np.abs(bf16gemm.from_bf16(b)) + np.abs(c0)
        if not np.all(np.abs(got - want) <= 1e-5 * scale + 1e-6):
            return False
    return True


def usable(kind: str) -> bool:
    """Whether ``kind``'s packed products run here (checked once per process); ``describe``."""
    key = f"usable-{kind}"
    if key not in _STATE:
        dnnl, why = _dnnl(), None
        if os.environ.get("RNNLAB_PACKED") == "0":
            why = "RNNLAB_PACKED=0"
        elif dnnl is None:
            why = "oneDNN does not load here"
        else:
            try:
                why = None if _agrees(dnnl, kind) else "its product differs from the GEMM's on this CPU"
            except RuntimeError as e:
                why = str(e)
        _STATE[key], _STATE[f"why-{kind}"] = why is None, why
    return bool(_STATE[key])


def of(matrix: Any) -> Packed | None:
    """``matrix``'s (a ``quantize.QMatrix`` or ``BMatrix``) packed weight, made on first use."""
    kind = matrix.kernels
    if getattr(matrix, "_packed", None) is None:
        dnnl, b = (_dnnl() if usable(kind) else None), (matrix.qT if kind == "int8" else matrix.bT)
        matrix._packed = False if dnnl is None else Packed(dnnl, b, kind)
    return matrix._packed or None


def execute_address() -> np.uint64:
    """``dnnl_primitive_execute``'s address for compiled code (``infer_cells.call``); 0 where
    oneDNN does not load (the loops then pass primitive 0 and run the GEMM)."""
    if "execute" not in _STATE:
        dnnl = _dnnl()
        _STATE["execute"] = np.uint64(0 if dnnl is None else ctypes.cast(dnnl.execute, _vp).value or 0)
    return _STATE["execute"]


def describe() -> dict:
    """``{"int8": True or why not, "bf16": ...}``: whether the step products use packed weights."""
    return {k: True if usable(k) else _STATE[f"why-{k}"] for k in KINDS}


def reset() -> None:
    """Check again at the next ``usable`` (tests)."""
    for kind in KINDS:
        _STATE.pop(f"usable-{kind}", None)
