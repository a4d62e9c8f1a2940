"""Optional GEMMs through Intel MKL (the ``mkl`` wheel), reached with ctypes.

The recurrent loop multiplies by the same weight matrix at every step. NumPy's OpenBLAS
re-packs that matrix into its kernel's layout on every call and is slow for the short,
wide products of a recurrence (N rows: the batch). MKL can pack the weights *once* per
sequence (``cblas_sgemm_pack``) and reuse them for all T steps (``cblas_sgemm_compute``);
measured on this project's 2-core AVX-512 machine, one thread, float32:

    (M, K, N)        NumPy/OpenBLAS   MKL packed
    (64, 256, 1024)      ~130 GF/s     ~190 GF/s
    (20, 650, 2600)       ~75 GF/s     ~140 GF/s
    (7, 256, 1024)        ~38 GF/s     ~140 GF/s

This module is only a faster road to the same products: every function falls back to
``np.matmul`` when MKL is not installed, ``RNNLAB_NO_MKL`` is set, ``ENABLED`` is False,
the dtype is not float32/float64 or an operand's memory layout is not a BLAS one. The
recurrent layers use it only on their fast path (float32 with the fused kernels of
``fused.py``); the pure-NumPy path, which the tests compare everything against, never
calls it.

Threads: MKL runs on its GNU OpenMP layer (the one PyTorch and most of the ecosystem use;
the Intel layer's spinning threads slow other libraries in the same process) with as many
threads as ``MKL_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` ask for,
else MKL's default (the physical cores); ``set_num_threads`` changes it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import site
import sys

import numpy as np

from rnnlab.nn import scratch

_ROW_MAJOR, _NO_TRANS, _TRANS, _PACKED = 101, 111, 112, 151
_B_MATRIX = 162
_LAYER_SEQUENTIAL, _LAYER_GNU = 1, 3
_THREAD_ENV = ("MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _candidates():
    dirs = [os.path.join(p, "lib") for p in (sys.prefix, sys.base_prefix, site.USER_BASE) if p]
    for d in dirs:
        for name in ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so"):
            yield os.path.join(d, name)
    found = ctypes.util.find_library("mkl_rt")
    if found:
        yield found


def _gnu_layer_loads(mkl_path) -> bool:
    """Whether MKL's GNU OpenMP layer is installed and libgomp loads (MKL exits if not)."""
    folder, ext = os.path.dirname(mkl_path), mkl_path.rsplit(".so", 1)[-1]
    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        return False
    return os.path.exists(os.path.join(folder, "libmkl_gnu_thread.so" + ext))


def _load():
    if os.environ.get("RNNLAB_NO_MKL") or sys.platform != "linux":
        return None
    for path in _candidates():
        if not os.path.exists(path) and os.sep in path:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        layer = _LAYER_GNU if _gnu_layer_loads(path) else _LAYER_SEQUENTIAL
        lib.MKL_Set_Interface_Layer(ctypes.c_int(0))          # LP64: 32-bit integers
        lib.MKL_Set_Threading_Layer(ctypes.c_int(layer))
        vp, i = ctypes.c_void_p, ctypes.c_int
        for p, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            f = getattr(lib, f"cblas_{p}gemm")
            f.argtypes, f.restype = [i, i, i, i, i, i, real, vp, i, vp, i, real, vp, i], None
            f = getattr(lib, f"cblas_{p}gemm_pack_get_size")
            f.argtypes, f.restype = [i, i, i, i], ctypes.c_size_t
            f = getattr(lib, f"cblas_{p}gemm_pack")
            f.argtypes, f.restype = [i, i, i, i, i, i, real, vp, i, vp], None
            f = getattr(lib, f"cblas_{p}gemm_compute")
            f.argtypes, f.restype = [i, i, i, i, i, i, vp, i, vp, i, real, vp, i], None
        for name in _THREAD_ENV:
            if os.environ.get(name, "").strip().isdigit():
                lib.MKL_Set_Num_Threads(ctypes.c_int(max(1, int(os.environ[name]))))
                break
        return lib
    return None


_lib = _load()
AVAILABLE = _lib is not None
# cblas_sgemm_compute with its pointers typed as 64-bit integers, callable from Numba code
# (fused.py's whole-sequence kernels): ``compute_fn()``
_COMPUTE_PROTO = ctypes.CFUNCTYPE(None, *[ctypes.c_int] * 6, ctypes.c_uint64, ctypes.c_int,
                                  ctypes.c_uint64, ctypes.c_int, ctypes.c_float,
                                  ctypes.c_uint64, ctypes.c_int)
ENABLED = AVAILABLE                     # set False to force NumPy's matmul everywhere
_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


def use(dtype) -> bool:
    """Whether products of this dtype go through MKL."""
    return ENABLED and np.dtype(dtype) in _PREFIX


_LOCAL_PROTO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)
_c_functions: dict = {}


def _c_function(name, proto):
    """MKL's function ``name`` as a ctypes function of type ``proto`` (made once), whose
    address compiled code can call; None without MKL."""
    if name not in _c_functions and AVAILABLE:
        _c_functions[name] = proto(ctypes.cast(getattr(_lib, name), ctypes.c_void_p).value)
    return _c_functions.get(name)


def compute_fn():
    """MKL's ``cblas_sgemm_compute`` with integer pointers, for compiled callers
    (``fused.*_seq``); None without MKL."""
    return _c_function("cblas_sgemm_compute", _COMPUTE_PROTO)


def local_threads_fn():
    """MKL's ``MKL_Set_Num_Threads_Local`` for compiled callers (the row-block kernels of
    fused.py set one MKL thread on each of their threads: where OpenMP allows nesting, MKL may
    otherwise start a nested team inside theirs, e.g. once PyTorch has called
    ``mkl_set_dynamic(0)`` in ``torch.set_num_threads``; measured 5x slower); None without
    MKL."""
    return _c_function("MKL_Set_Num_Threads_Local", _LOCAL_PROTO)


def set_num_threads(n: int) -> None:
    """Number of MKL threads (no effect without MKL). Also clears the calling thread's local
    count, which would otherwise override it there: ``torch.set_num_threads`` can leave one
    on the main thread (seen after ``rnnlab.bench.blas_info()``: a local count of 2 that made
    a later ``set_num_threads(1)`` a no-op)."""
    if AVAILABLE:
        _lib.MKL_Set_Num_Threads(ctypes.c_int(int(n)))
        _lib.MKL_Set_Num_Threads_Local(ctypes.c_int(0))


def set_num_threads_local(n: int) -> int:
    """MKL threads for the calling thread only (0: back to the global count); returns the
    previous local setting (0 without MKL)."""
    if AVAILABLE:
        return int(_lib.MKL_Set_Num_Threads_Local(ctypes.c_int(int(n))))
    return 0


def get_num_threads() -> int | None:
    """MKL's thread count, or None without MKL."""
    return int(_lib.MKL_Get_Max_Threads()) if AVAILABLE else None


def _operand(m):
    """``(trans, ld)`` for a 2-D array BLAS can read in place (rows or columns unit-stride)."""
    (r, c), (s0, s1), it = m.shape, m.strides, m.itemsize
    if (s1 == it or c == 1) and (r == 1 or (s0 % it == 0 and s0 // it >= c)):
        return _NO_TRANS, c if r == 1 else s0 // it
    if (s0 == it or r == 1) and (c == 1 or (s1 % it == 0 and s1 // it >= r)):
        return _TRANS, r if c == 1 else s1 // it
    return None


def _out_ok(out, M, N, dtype):
    return (out.shape == (M, N) and out.dtype == dtype and out.strides[1] == out.itemsize
            and out.strides[0] >= N * out.itemsize and out.strides[0] % out.itemsize == 0)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D ``a (M, K)`` and ``b (K, N)`` (either may be a transposed view)."""
    M, K = a.shape
    N = b.shape[1]
    if out is None:
        out = np.empty((M, N), np.result_type(a, b))
    if not (use(a.dtype) and a.dtype == b.dtype and M and N and K
            and _out_ok(out, M, N, a.dtype)):
        return np.matmul(a, b, out=out)
    la, lb = _operand(a), _operand(b)
    if la is None or lb is None:
        return np.matmul(a, b, out=out)
    gemm = getattr(_lib, f"cblas_{_PREFIX[a.dtype]}gemm")
    gemm(_ROW_MAJOR, la[0], lb[0], M, N, K, 1.0, a.ctypes.data, la[1], b.ctypes.data, lb[1],
         0.0, out.ctypes.data, out.strides[0] // out.itemsize)
    return out


class Packed:
    """The right operand ``b (K, N)`` of ``uses`` products ``a (M, K) @ b`` with the same M.

    With MKL, ``b`` is packed once into MKL's internal layout when that pays for itself:
    packing costs about 2-4 products at M >= 20 but ~11 at M = 7 and ~50 at M = 1 (measured,
    float32), so it is packed when ``uses >= max(4, 96 / M)``; otherwise ``b`` is
    used in place (a transposed view costs ~15% per product at M = 7, less than the ~5
    products a transposing copy costs). Without MKL it just holds ``b`` for ``np.matmul``."""

    def __init__(self, b: np.ndarray, M: int, uses: int = 1 << 30):
        self.b, self.M = b, M
        K, N = b.shape
        self._buf = None                  # MKL's packed copy of b
        self._mkl = use(b.dtype) and M > 0 and K > 0 and N > 0 and _operand(b) is not None
        if not self._mkl:
            return
        if uses < max(4, 96 / M):
            return
        p, lb = _PREFIX[b.dtype], _operand(b)
        self._compute = getattr(_lib, f"cblas_{p}gemm_compute")
        size = getattr(_lib, f"cblas_{p}gemm_pack_get_size")(_B_MATRIX, M, N, K)
        self._buf = scratch.aligned((size // b.itemsize + 1,), b.dtype)
        getattr(_lib, f"cblas_{p}gemm_pack")(_ROW_MAJOR, _B_MATRIX, lb[0], M, N, K, 1.0,
                                             b.ctypes.data, lb[1], self._buf.ctypes.data)

    @property
    def operand(self) -> tuple[int, int, int] | None:
        """``(pointer, transb, ldb)`` of the float32 B operand for ``compute_fn()`` callers
        (fused.py's whole-sequence kernels), or None when MKL does not run these products.
        The pointer stays valid while this object lives."""
        if not self._mkl or self.b.dtype != np.float32:
            return None
        if self._buf is not None:
            return self._buf.ctypes.data, _PACKED, self.b.shape[1]
        trans, ld = _operand(self.b)
        return self.b.ctypes.data, trans, ld

    def matmul(self, a: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out[...] = a @ b``; ``a (M, K)``, ``out (M, N)``."""
        if self._buf is None:
            return matmul(a, self.b, out) if self._mkl else np.matmul(a, self.b, out=out)
        K, N = self.b.shape
        la = _operand(a)
        if (la is None or a.shape != (self.M, K) or a.dtype != self.b.dtype
                or not _out_ok(out, self.M, N, a.dtype)):
            return np.matmul(a, self.b, out=out)
        self._compute(_ROW_MAJOR, la[0], _PACKED, self.M, N, K, a.ctypes.data, la[1],
                      self._buf.ctypes.data, N, 0.0, out.ctypes.data,
                      out.strides[0] // out.itemsize)
        return out
