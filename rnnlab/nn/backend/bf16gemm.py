"""The bf16 product of the bf16 layers (``rnnlab/nn/quantize.py``, ``dtype="bf16"``).

    C (M, R) float32 = A (M, K) bf16 @ B (K, R) bf16, float32 accumulation, all row-major

bf16 ("brain float") is float32's upper half: the same sign and 8-bit exponent, 7 mantissa bits.
``to_bf16`` rounds float32 to it to nearest, ties to even (NaN stays NaN, inf stays inf, a
float32 past bf16's largest value rounds to inf); ``from_bf16`` is exact. Arrays of bf16 are
``uint16`` here (NumPy has no bf16 type; the file format calls them so).

The product runs through oneDNN's ``dnnl_gemm_bf16bf16f32`` (the ``onednn-cpu-gomp`` wheel of
``rnnlab[fast]``; exported by the library, declared outside its public header), which uses the
CPU's bf16 dot products (``vdpbf16ps``, AVX512_BF16; AMX on recent Intel parts) and emulates
them on other AVX-512 CPUs, slower. ``gemm()`` checks it once per process against NumPy's
float32 product of the same bf16 values (a tolerance of float32 summation, not bf16's) and
falls back to that NumPy product, saying why (``describe()``), when it is missing, fails or
differs; ``RNNLAB_BF16_GEMM=numpy`` forces NumPy's. Whether bf16 is then *offered* is decided by
timing it against float32 (``translate`` / ``forecast predict --precision bf16``,
``rnnlab bench --precision``), never by the CPU's name: NumPy's product is never faster.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from rnnlab.nn.backend import intgemm

_vp, _i64, _f32, _ch = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_char
_U16, _U32 = np.dtype(np.uint16), np.dtype(np.uint32)


def to_bf16(a: np.ndarray) -> np.ndarray:
    """float32 -> bf16 (as uint16), rounded to nearest, ties to even; NaN stays a (quiet) NaN."""
    u = np.ascontiguousarray(a, np.float32).view(_U32)
    rounded = (u + (np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1)))) >> 16
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.where(nan, (u >> 16) | np.uint32(0x40), rounded).astype(_U16)


def from_bf16(b: np.ndarray) -> np.ndarray:
    """bf16 (uint16) -> float32, exact."""
    return (np.asarray(b, _U16).astype(_U32) << 16).view(np.float32)


class BF16Gemm:
    """``C = A @ B`` on bf16 operands with float32 accumulation: oneDNN's (``lib``: a loaded
    ``libdnnl`` as ``ctypes.CDLL``), or without one NumPy's float32 matmul of the same values.
    ``name`` says which."""

    def __init__(self, lib: Any = None):
        self.name, self.lib, self._f = "numpy-float32", lib, None
        if lib is None:
            return
        f = lib.dnnl_gemm_bf16bf16f32  # AttributeError where the library lacks it
        f.argtypes = [_ch, _ch, _i64, _i64, _i64, _f32, _vp, _i64, _vp, _i64, _f32, _vp, _i64]
        f.restype = ctypes.c_int
        self._f, self.name = f, "onednn"

    def address(self) -> np.uint64:
        """``dnnl_gemm_bf16bf16f32``'s address, for compiled code (``infer_cells.call``); 0
        without oneDNN."""
        return np.uint64(
            0 if self.lib is None else ctypes.cast(self.lib.dnnl_gemm_bf16bf16f32, _vp).value or 0
        )

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, beta: float = 0.0):
        """``out = a @ b + beta out`` (``out`` float32 (M, R), made when None)."""
        (M, K), R = a.shape, b.shape[1]
        if b.shape[0] != K or a.dtype != _U16 or b.dtype != _U16:
            raise ValueError(f"BF16Gemm: ({a.dtype} {a.shape}) @ ({b.dtype} {b.shape}) is not bf16 @ bf16")
        c = np.zeros((M, R), np.float32) if out is None else out
        if c.shape != (M, R) or c.dtype != np.float32 or not c.flags.c_contiguous:
            raise ValueError(f"BF16Gemm: out must be C-contiguous float32 {(M, R)}")
        if self._f is None:
            product = from_bf16(a) @ from_bf16(b)
            c[...] = product if beta == 0 else product + np.float32(beta) * c
            return c
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        status = self._f(b"N", b"N", M, R, K, 1.0, a.ctypes.data, K, b.ctypes.data, R, beta, c.ctypes.data, R)
        if status != 0:
            raise RuntimeError(f"{self.name}: bf16 GEMM ({M}x{K} by {K}x{R}) failed, status {status}")
        return c


def agrees_here(g: BF16Gemm) -> bool:
    """Whether ``g`` gives NumPy's float32 product of the same bf16 values (within float32
    summation error) on random shapes, K not a multiple of any vector width, beta 0 and 1."""
    rng, exact = np.random.default_rng(0), BF16Gemm()
    for M, K, R in [(1, 7, 3), (5, 130, 17), (33, 301, 64), (64, 256, 1024)]:
        a = to_bf16(rng.standard_normal((M, K)))
        b = to_bf16(rng.standard_normal((K, R)))
        c0 = rng.standard_normal((M, R)).astype(np.float32)
        for beta in (0.0, 1.0):
            got, want = g(a, b, c0.copy(), beta), exact(a, b, c0.copy(), beta)
            scale = np.abs(from_bf16(a)) @ np.abs(from_bf16(b)) + np.abs(c0) * beta
            if not np.all(np.abs(got - want) <= 1e-5 * scale + 1e-6):
                return False
    return True


_STATE: dict[str, Any] = {}


def gemm() -> BF16Gemm:
    """The bf16 GEMM this process uses: oneDNN's where it loads, runs and agrees here, else
    NumPy's (slower); ``describe()`` says which and why."""
    if "gemm" not in _STATE:
        why = "oneDNN's bf16 GEMM disagrees with NumPy's product on this CPU"
        _STATE["gemm"], _STATE["why"] = intgemm.choose(BF16Gemm, "RNNLAB_BF16_GEMM", agrees_here, why, "bf16")
    return _STATE["gemm"]


def native_bf16() -> bool | None:
    """Whether the CPU reports bf16 dot products (Linux's ``avx512_bf16`` or ``amx_bf16`` flag);
    None where that cannot be read. Reported only: what runs is decided by timing."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def describe() -> dict:
    """``{"bf16_gemm": "onednn" or "numpy-float32", "fallback_reason": None or why,
    "native_bf16": the CPU flag}``."""
    g = gemm()
    return {"bf16_gemm": g.name, "fallback_reason": _STATE["why"] or None, "native_bf16": native_bf16()}


def reset() -> None:
    """Choose again at the next ``gemm()`` (tests)."""
    _STATE.clear()
