"""GEMM libraries the compiled loops can call from compiled code: Intel MKL, OpenBLAS (and
oneDNN, in onednn.py).

The recurrent loop multiplies by the same weight matrix at every step, in short, wide products
(N rows: the batch). Each library here is reached with ctypes and offers the compiled loops
(``loops.py``) the same two things:

    compiled   (compute, sgemm, dnnl): MKL's ``cblas_sgemm_compute`` (packed or plain B), a
               plain ``cblas_sgemm``, oneDNN's ``dnnl_sgemm``: one is set, the others None;
               ``loops._gemm`` calls whichever is there
    operand(b, M, uses)    the right operand ``b (K, Nc)`` of ``uses`` products with M rows,
               as ``(pointer, transb, ldb)``: MKL packs b once into its own layout when that
               pays (``cblas_sgemm_pack``); OpenBLAS gets a C-contiguous copy of b (it runs
               a transposed view slower)

and ``matmul(a, b, out)`` for the hoisted 2-D products, ``set_threads`` / ``get_threads`` and a
thread-local count for the row blocks (``local_threads``: MKL_Set_Num_Threads_Local,
openblas_set_num_threads_local). Packing costs a few products at M >= 20 but many more at
small M (benchmarks/RESULTS.md), so MKL packs when ``uses >= max(4, 96 / M)``.

``mkl``: the ``mkl`` wheel (``rnnlab[fast]``), on its GNU OpenMP layer (the one PyTorch and
most of the ecosystem use). ``openblas``: the OpenBLAS that NumPy itself loaded (its wheels
bundle one). A library that does not load is simply not offered.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Any

import numpy as np

from rnnlab.nn.backend import scratch

ROW_MAJOR, NO_TRANS, TRANS, PACKED = 101, 111, 112, 151
_B_MATRIX = 162
_LAYER_SEQUENTIAL, _LAYER_GNU = 1, 3
_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
_vp, _i32, _i64, _u64, _f32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_float
# the prototypes compiled code calls (pointers as 64-bit integers)
_COMPUTE = ctypes.CFUNCTYPE(None, *[_i32] * 6, _u64, _i32, _u64, _i32, _f32, _u64, _i32)
_LOCAL = ctypes.CFUNCTYPE(_i32, _i32)


def blas_operand(m):
    """``(trans, ld)`` for a 2-D array BLAS can read in place (rows or columns unit-stride)."""
    (r, c), (s0, s1), it = m.shape, m.strides, m.itemsize
    if (s1 == it or c == 1) and (r == 1 or (s0 % it == 0 and s0 // it >= c)):
        return NO_TRANS, c if r == 1 else s0 // it
    if (s0 == it or r == 1) and (c == 1 or (s1 % it == 0 and s1 // it >= r)):
        return TRANS, r if c == 1 else s1 // it
    return None


def _out_ok(out, M, N, dtype):
    return (
        out.shape == (M, N)
        and out.dtype == dtype
        and out.strides[1] == out.itemsize
        and out.strides[0] >= N * out.itemsize
        and out.strides[0] % out.itemsize == 0
    )


def cfunction(lib, name, proto):
    """``lib.name`` as a ctypes function of type ``proto`` that compiled code can call."""
    return proto(ctypes.cast(getattr(lib, name), _vp).value)


class Operand:
    """The right operand of a run of products: ``.operand = (pointer, transb, ldb)`` for the
    compiled loops; it keeps the memory it points into alive."""

    def __init__(self, keep, pointer, transb, ldb):
        self._keep, self.operand = keep, (int(pointer), int(transb), int(ldb))


class Library:
    name = "?"
    compiled: tuple = (None, None, None)  # (MKL compute, cblas sgemm, dnnl_sgemm): one is set
    local_threads: Any = None  # compiled-callable int(int): this thread's count, or None
    omp: Any = None  # the libgomp it runs on, where its thread count is OpenMP's (oneDNN)
    pool = "?"  # the threads it runs on (tuning.choose never mixes two pools in one loop)
    default_threads = 1  # the count before rnnlab changed it (set when loaded)
    _gemm: dict

    def get_threads(self) -> int:
        raise NotImplementedError

    def set_threads(self, n: int) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def operand(self, b, M, uses=1 << 30) -> Operand:
        raise NotImplementedError

    def set_local(self, n: int) -> None:
        """Threads for calls from this thread only (no-op where the library has no such count)."""
        if self.local_threads is not None:
            self.local_threads(n)

    @contextlib.contextmanager
    def threads_per_caller(self, n: int):
        """Inside: calls from several threads at once, each to use ``n`` threads. A library
        with thread-local counts needs nothing here (each caller sets its own); one without
        gets its global count set to ``n`` for the duration."""
        if self.local_threads is not None:
            yield
            return
        before = self.get_threads()
        self.set_threads(n)
        try:
            yield
        finally:
            self.set_threads(before)

    @contextlib.contextmanager
    def on_this_thread(self, n: int):
        """Inside: this thread's calls use ``n`` threads, where the library keeps a count per
        thread (MKL's local count; oneDNN's, OpenMP's); else nothing changes: a global count
        set here would also change the calls of other threads running at the same time."""
        if self.local_threads is not None:  # MKL: 0 given back means "the global count" again
            before = self.local_threads(n)
            try:
                yield
            finally:
                self.local_threads(before)
            return
        if self.omp is None:
            yield
            return
        before = self.get_threads()
        self.set_local(n)
        try:
            yield
        finally:
            self.set_local(before)

    def matmul(self, a, b, out=None):
        """``a @ b`` for 2-D ``a (M, K)``, ``b (K, N)`` (either may be a transposed view)."""
        M, K = a.shape
        N = b.shape[1]
        if out is None:
            out = np.empty((M, N), np.result_type(a, b))
        gemm = self._gemm.get(a.dtype) if a.dtype == b.dtype else None
        la, lb = blas_operand(a), blas_operand(b)
        if gemm is None or not (M and N and K) or la is None or lb is None or not _out_ok(out, M, N, a.dtype):
            return np.matmul(a, b, out=out)
        gemm(
            ROW_MAJOR,
            la[0],
            lb[0],
            M,
            N,
            K,
            1.0,
            a.ctypes.data,
            la[1],
            b.ctypes.data,
            lb[1],
            0.0,
            out.ctypes.data,
            out.strides[0] // out.itemsize,
        )
        return out


class MKL(Library):
    """Intel MKL from the ``mkl`` wheel, LP64 (32-bit integers)."""

    name = "mkl"

    def __init__(self, path):
        lib = self.lib = ctypes.CDLL(path)
        layer = _LAYER_GNU if _gnu_layer_loads(path) else _LAYER_SEQUENTIAL
        lib.MKL_Set_Interface_Layer(_i32(0))  # LP64: 32-bit integers
        lib.MKL_Set_Threading_Layer(_i32(layer))
        self.threading_layer = "gnu" if layer == _LAYER_GNU else "sequential"
        self.pool = "gomp" if layer == _LAYER_GNU else "mkl-sequential"
        self._gemm = {}
        for dtype, p in _PREFIX.items():
            real = _f32 if p == "s" else ctypes.c_double
            f = getattr(lib, f"cblas_{p}gemm")
            f.argtypes, f.restype = [_i32] * 6 + [real, _vp, _i32, _vp, _i32, real, _vp, _i32], None
            self._gemm[dtype] = f
        self._size = lib.cblas_sgemm_pack_get_size
        self._size.argtypes, self._size.restype = [_i32] * 4, ctypes.c_size_t
        self._pack = lib.cblas_sgemm_pack
        self._pack.argtypes, self._pack.restype = [_i32] * 6 + [_f32, _vp, _i32, _vp], None
        self.compiled = (cfunction(lib, "cblas_sgemm_compute", _COMPUTE), None, None)
        self.local_threads = cfunction(lib, "MKL_Set_Num_Threads_Local", _LOCAL)

    def version(self) -> str:
        buf = ctypes.create_string_buffer(256)
        self.lib.MKL_Get_Version_String(buf, 256)
        return buf.value.decode(errors="replace").strip()

    def set_threads(self, n: int) -> None:
        """MKL's thread count; also clears the calling thread's local count, which would
        otherwise override it there (``torch.set_num_threads`` can leave one)."""
        self.lib.MKL_Set_Num_Threads(_i32(int(n)))
        self.lib.MKL_Set_Num_Threads_Local(_i32(0))

    def get_threads(self) -> int:
        return int(self.lib.MKL_Get_Max_Threads())

    def operand(self, b, M, uses=1 << 30):
        K, N = b.shape
        lb = blas_operand(b)
        if lb is None:
            b = np.ascontiguousarray(b)
            lb = blas_operand(b)
        if uses < max(4, 96 / max(M, 1)) or not (M and K and N):
            return Operand(b, b.ctypes.data, *lb)
        size = self._size(_B_MATRIX, M, N, K)
        buf = scratch.aligned((size // b.itemsize + 1,), b.dtype)
        self._pack(ROW_MAJOR, _B_MATRIX, lb[0], M, N, K, 1.0, b.ctypes.data, lb[1], buf.ctypes.data)
        return Operand(buf, buf.ctypes.data, PACKED, N)


class OpenBLAS(Library):
    """The OpenBLAS NumPy loaded (its wheels bundle ``scipy_openblas``, ILP64)."""

    name = "openblas"
    # (prefix, suffix, integer type) of the builds we know: NumPy's ILP64 one, a plain LP64 one
    _ABIS = (("scipy_", "64_", _i64), ("", "64_", _i64), ("", "", _i32))

    def __init__(self, path):
        lib = self.lib = ctypes.CDLL(path)
        abi = next((a for a in self._ABIS if hasattr(lib, f"{a[0]}cblas_sgemm{a[1]}")), None)
        if abi is None:
            raise OSError(f"{path} has no cblas_sgemm")
        pre, suf, it = abi
        self._gemm = {}
        for dtype, p in _PREFIX.items():
            real = _f32 if p == "s" else ctypes.c_double
            f = getattr(lib, f"{pre}cblas_{p}gemm{suf}")
            f.argtypes, f.restype = [_i32] * 3 + [it] * 3 + [real, _vp, it, _vp, it, real, _vp, it], None
            self._gemm[dtype] = f
        sgemm = ctypes.CFUNCTYPE(None, *[_i32] * 3, *[it] * 3, _f32, _u64, it, _u64, it, _f32, _u64, it)
        self.compiled = (None, cfunction(lib, f"{pre}cblas_sgemm{suf}", sgemm), None)
        self._set = getattr(lib, f"{pre}openblas_set_num_threads{suf}")
        self._get = getattr(lib, f"{pre}openblas_get_num_threads{suf}")
        self._set.argtypes, self._get.restype = [_i32], _i32
        # (no thread-local count: OpenBLAS 0.3.31's openblas_set_num_threads_local sets the
        # global count; called from two threads at once it left the count at 1)
        self._config = getattr(lib, f"{pre}openblas_get_config{suf}", None)
        if self._config is not None:
            self._config.restype = ctypes.c_char_p

    def version(self) -> str:
        return self._config().decode(errors="replace") if self._config is not None else "OpenBLAS"

    def set_threads(self, n: int) -> None:
        self._set(int(n))

    def get_threads(self) -> int:
        return int(self._get())

    def operand(self, b, M, uses=1 << 30):
        b = contiguous(b)
        return Operand(b, b.ctypes.data, NO_TRANS, b.shape[1])

    def omatcopy_fn(self):
        """``cblas_somatcopy`` (out-of-place transpose), or None."""
        for pre, suf in (("scipy_", "64_"), ("", "64_"), ("", "")):
            f = getattr(self.lib, f"{pre}cblas_somatcopy{suf}", None)
            if f is not None:
                f.argtypes = [_i32, _i32, _i64, _i64, _f32, _vp, _i64, _vp, _i64]
                return f
        return None


def contiguous(b):
    """A C-contiguous copy of ``b`` (or ``b``): a transposed view is copied by OpenBLAS's
    ``cblas_somatcopy``, several times faster than NumPy's copy (benchmarks/RESULTS.md)."""
    if b.flags.c_contiguous:
        return b
    if b.dtype == np.float32 and b.T.flags.c_contiguous and _omatcopy():
        R, C = b.T.shape  # b = W^T, W (R, C) row-major
        out = scratch.aligned((C, R), b.dtype)
        _omatcopy()[0](ROW_MAJOR, TRANS, R, C, 1.0, b.T.ctypes.data, C, out.ctypes.data, R)
        return out
    return np.ascontiguousarray(b)


_omatcopy_cache: list = []


def _omatcopy():
    if not _omatcopy_cache:
        path = numpy_openblas_path()
        lib = None
        try:
            lib = OpenBLAS(path) if path else None
        except (OSError, AttributeError):
            pass
        f = lib.omatcopy_fn() if lib is not None else None
        _omatcopy_cache.append([f] if f is not None else None)
    return _omatcopy_cache[0]


# ----------------------------------------------------------------------------- finding them
# (libraries.load finds the libraries; these two are what MKL and contiguous need of that)


def _gnu_layer_loads(mkl_path) -> bool:
    """Whether MKL's GNU OpenMP layer is installed and libgomp loads (MKL exits if not)."""
    folder, ext = os.path.dirname(mkl_path), mkl_path.rsplit(".so", 1)[-1]
    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        return False
    return os.path.exists(os.path.join(folder, "libmkl_gnu_thread.so" + ext))


def numpy_openblas_path():
    """The OpenBLAS shared library this process's NumPy loaded, or None: the one in NumPy's own
    folder (``numpy.libs``, ``numpy/.libs``) when there are several (SciPy's wheels bundle
    another, with other symbol names), else the first."""
    found: list[str] = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in os.path.basename(path).lower() and ".so" in path and path not in found:
                    found.append(path)
    except OSError:
        pass
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    own = [p for p in found if p.startswith(os.path.join(numpy_dir, "numpy"))]
    return (own or found)[0] if found else None
