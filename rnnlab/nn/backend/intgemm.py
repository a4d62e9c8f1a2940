"""The exact 8-bit integer product of the quantised layers (``rnnlab/nn/quantize.py``).

    C (M, R) int32 = A (M, K) @ B (K, R),   A uint8 or int8, B int8, all row-major

through oneDNN's ``dnnl_gemm_u8s8s32`` / ``dnnl_gemm_s8s8s32`` (the ``onednn-cpu-gomp`` wheel of
``rnnlab[fast]``, loaded once by ``backend.library("onednn")``, the same object the float loops
use), or NumPy's matmul on int32 where oneDNN does not load. Both are exact: a product of two
8-bit values is below 2^15, so a sum of K of them fits int32 for K < 65,000.

oneDNN documents that its u8 x s8 kernels may saturate intermediate 16-bit sums on CPUs without
VNNI (``vpmaddubsw``); ``gemm()`` therefore checks the library against NumPy's product on
operands that saturate such sums (255 * 127 * 2 > 32767) once per process, and falls back to
NumPy, saying why (``describe()``), when they differ. ``RNNLAB_INT8_GEMM=numpy`` forces NumPy's.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from rnnlab.nn import backend

_vp, _i64, _f32, _ch = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_char
_U8, _S8 = np.dtype(np.uint8), np.dtype(np.int8)
_SYMBOLS = ((_U8, "dnnl_gemm_u8s8s32", ctypes.c_uint8), (_S8, "dnnl_gemm_s8s8s32", ctypes.c_int8))


class IntGemm:
    """``C = A @ B`` exactly in int32: oneDNN's integer GEMM (``lib``: a loaded ``libdnnl``
    as ``ctypes.CDLL``), or, without one, NumPy's int32 matmul. ``name`` says which."""

    def __init__(self, lib: Any = None):
        self.name, self.lib = "numpy-int32", lib
        self._f: dict[np.dtype, Any] = {}
        self._co = np.zeros(1, np.int32)  # the C offset oneDNN reads (fixed: 0)
        if lib is None:
            return
        for dtype, symbol, a_offset in _SYMBOLS:
            f = getattr(lib, symbol)
            # (transa, transb, offsetc, M, N, K, alpha, A, lda, ao, B, ldb, bo, beta, C, ldc, co)
            f.argtypes = [_ch] * 3 + [_i64] * 3 + [_f32, _vp, _i64, a_offset, _vp, _i64, ctypes.c_int8]
            f.argtypes += [_f32, _vp, _i64, _vp]
            f.restype = ctypes.c_int
            self._f[dtype] = f
        self.name = "onednn"

    def address(self) -> np.uint64:
        """``dnnl_gemm_u8s8s32``'s address, for compiled code (``infer_cells.call``); 0 without
        oneDNN."""
        return np.uint64(0 if self.lib is None else ctypes.cast(self.lib.dnnl_gemm_u8s8s32, _vp).value or 0)

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        (M, K), R = a.shape, b.shape[1]
        if b.shape[0] != K or b.dtype != _S8 or a.dtype not in (_U8, _S8):
            raise ValueError(f"IntGemm: ({a.dtype} {a.shape}) @ ({b.dtype} {b.shape}) is not u8/s8 @ s8")
        f = self._f.get(a.dtype)
        if f is None:
            return np.matmul(a.astype(np.int32), b.astype(np.int32), out=out)
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        c = np.empty((M, R), np.int32) if out is None else out
        if c.shape != (M, R) or c.dtype != np.int32 or not c.flags.c_contiguous:
            raise ValueError(f"IntGemm: out must be C-contiguous int32 {(M, R)}")
        A, B, C, co = a.ctypes.data, b.ctypes.data, c.ctypes.data, self._co.ctypes.data
        status = f(b"N", b"N", b"F", M, R, K, 1.0, A, K, 0, B, R, 0, 0.0, C, R, co)
        if status != 0:
            raise RuntimeError(f"{self.name}: integer GEMM ({M}x{K} by {K}x{R}) failed, status {status}")
        return c


def saturating_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Operand pairs whose 16-bit pair sums saturate (a CPU without VNNI may clip them), the
    extremes of both types, and random ones with K not a multiple of any vector width."""
    cases = [(np.full((3, 512), 255, np.uint8), np.full((512, 40), v, np.int8)) for v in (127, -128)]
    cases.append((np.full((5, 130), -128, np.int8), np.full((130, 17), -128, np.int8)))
    cases.append(
        (rng.integers(0, 256, (17, 300)).astype(np.uint8), rng.integers(-128, 128, (300, 33)).astype(np.int8))
    )
    cases.append(
        (
            rng.integers(-128, 128, (9, 201)).astype(np.int8),
            rng.integers(-128, 128, (201, 24)).astype(np.int8),
        )
    )
    return cases


def exact_here(g: IntGemm) -> bool:
    """Whether ``g`` gives NumPy's exact product on ``saturating_cases``."""
    exact = IntGemm()
    return all(np.array_equal(g(a, b), exact(a, b)) for a, b in saturating_cases(np.random.default_rng(0)))


_STATE: dict[str, Any] = {}


def choose(cls: Any, env: str, agrees: Any, disagrees: str, what: str) -> tuple[Any, str]:
    """``(gemm, why)``: ``cls`` over oneDNN where it loads, runs and ``agrees`` here, else
    ``cls()`` (NumPy's product) and why: ``env``=numpy set, no oneDNN, the check failed
    (``disagrees``) or the call raised. The int8 and bf16 GEMMs are chosen so."""
    if os.environ.get(env) == "numpy":
        return cls(), f"{env}=numpy"
    lib = backend.library("onednn")
    if lib is None:
        return cls(), "oneDNN does not load here"
    try:
        g = cls(lib.lib)
        return (g, "") if agrees(g) else (cls(), disagrees)
    except (AttributeError, RuntimeError) as e:
        return cls(), f"oneDNN's {what} GEMM is unusable: {e}"


def gemm() -> IntGemm:
    """The integer GEMM this process uses: oneDNN's where it loads and is exact here, else
    NumPy's (exact, slower); ``describe()`` says which and why."""
    if "gemm" not in _STATE:
        why = "oneDNN's int8 GEMM is not exact on this CPU (16-bit saturation)"
        _STATE["gemm"], _STATE["why"] = choose(IntGemm, "RNNLAB_INT8_GEMM", exact_here, why, "int8")
    return _STATE["gemm"]


def describe() -> dict:
    """``{"int8_gemm": "onednn" or "numpy-int32", "fallback_reason": None or why}``."""
    g = gemm()
    return {"int8_gemm": g.name, "fallback_reason": _STATE["why"] or None}


def reset() -> None:
    """Choose again at the next ``gemm()`` (tests)."""
    _STATE.clear()
