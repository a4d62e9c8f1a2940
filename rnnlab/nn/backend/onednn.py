"""oneDNN's ``dnnl_sgemm`` as a GEMM library of the compiled loops (``gemm.py`` has the others
and the interface).

The ``onednn-cpu-gomp`` wheel (``rnnlab[fast]``) is oneDNN on GNU OpenMP, the library PyTorch's
own LSTM runs on. It runs its AVX-512 kernels on any CPU that has them, which MKL does not on
AMD processors (benchmarks/RESULTS.md has the rates). Row-major, 64-bit sizes; no packed format
in its C API, so a weight operand is a C-contiguous copy.
"""

from __future__ import annotations

import contextlib
import ctypes

import numpy as np

from rnnlab.nn.backend.gemm import NO_TRANS, TRANS, Library, Operand, blas_operand, cfunction, contiguous

_vp, _i32, _i64, _u64, _f32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_float


class OneDNN(Library):
    """oneDNN's ``dnnl_sgemm``. Its threads are the calling thread's OpenMP count
    (``omp_set_num_threads`` sets a per-thread value: ``set_local`` is that; the row blocks'
    compiled setter is made from ``omp`` by ``compiled.Compiled.local_threads``)."""

    name = "onednn"
    pool = "gomp"

    def __init__(self, path):
        lib = self.lib = ctypes.CDLL(path)
        f = lib.dnnl_sgemm
        f.argtypes, f.restype = (
            [ctypes.c_char] * 2 + [_i64] * 3 + [_f32, _vp, _i64, _vp, _i64, _f32, _vp, _i64],
            _i32,
        )
        self._sgemm = f
        proto = ctypes.CFUNCTYPE(
            _i32, ctypes.c_int8, ctypes.c_int8, *[_i64] * 3, _f32, _u64, _i64, _u64, _i64, _f32, _u64, _i64
        )
        self.compiled = (None, None, cfunction(lib, "dnnl_sgemm", proto))
        self.omp = ctypes.CDLL("libgomp.so.1")  # the OpenMP runtime it links
        self.omp.omp_set_num_threads.argtypes, self.omp.omp_set_num_threads.restype = [_i32], None
        self.omp.omp_get_max_threads.argtypes, self.omp.omp_get_max_threads.restype = [], _i32
        chars = {NO_TRANS: b"N", TRANS: b"T"}

        def sgemm(order, ta, tb, *rest):  # the cblas call of Library.matmul, row-major only
            f(chars[ta], chars[tb], *rest)

        self._gemm = {np.dtype(np.float32): sgemm}

    def version(self) -> str:
        class _Version(ctypes.Structure):
            _fields_ = [
                ("major", _i32),
                ("minor", _i32),
                ("patch", _i32),
                ("hash", ctypes.c_char_p),
                ("cpu_runtime", ctypes.c_uint),
                ("gpu_runtime", ctypes.c_uint),
            ]

        self.lib.dnnl_version.restype = ctypes.POINTER(_Version)
        v = self.lib.dnnl_version().contents
        return f"oneDNN {v.major}.{v.minor}.{v.patch}"

    def set_threads(self, n: int) -> None:
        self.omp.omp_set_num_threads(int(n))

    def get_threads(self) -> int:
        return int(self.omp.omp_get_max_threads())

    def set_local(self, n: int) -> None:
        self.omp.omp_set_num_threads(int(n))

    @contextlib.contextmanager
    def threads_per_caller(self, n: int):
        """Nothing to do: an OpenMP count is per thread, and each caller sets its own."""
        yield

    def operand(self, b, M, uses=1 << 30):
        """A C-contiguous B: dnnl_sgemm runs its NN products faster than NT, and a transposing
        copy costs 1-10 products; used in place when there are fewer ``uses`` than that."""
        if uses >= 8 or blas_operand(b) is None:
            b = contiguous(b)
        return Operand(b, b.ctypes.data, *blas_operand(b))
