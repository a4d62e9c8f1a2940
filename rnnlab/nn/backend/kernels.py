"""Compiled (Numba) gate math of one LSTM / GRU step: the arithmetic of ``lstm.py`` and ``gru.py``.

The readable code is ``lstm.py`` and ``gru.py``: their step functions are the reference and
what the tests compare against. These kernels do the same arithmetic, but the ~14 NumPy passes
of a step (each a ufunc call over a strided (N, H) slice) become ONE pass over the rows with an
inner loop over H that LLVM vectorises. A kernel finds the step's GEMM product ``W h_{t-1}``
already written in the gate buffer and overwrites it with the activated gates. What the time
loop did around a step is folded in too: the biases in forward; ``dh += dout_t``, ``||dh||^2``
and (GRU) the direct path ``z dh`` in backward::

    LSTM forward   a = W h + U x + b_ih + b_hh;  i, f, o = sigma(a_{i,f,o});  g = tanh(a_g)
                   c = f c_{t-1} + i g;  h = o tanh(c)                       (lstm.py)
    LSTM backward  dc_t = dc + dh o (1 - tanh(c)^2);  da_o = dh tanh(c) o (1 - o)
                   da_i = dc_t g i (1 - i);  da_f = dc_t c_{t-1} f (1 - f)
                   da_g = dc_t i (1 - g^2);  dc_{t-1} = dc_t f                (lstm.py)
    GRU            r, z = sigma(xg_{r,z} + hg_{r,z});  n = tanh(xg_n + r hg_n)   (after)
                   r, z = sigma(...);  n = tanh(xg_n + W_n (r h) + b_hn)        (before)
                   h = n + z (h_{t-1} - n), and the backward of gru.py

Rows past a sequence's length (``active[n]`` False) get zero gate gradients and pass their
state gradient through, as in ``recurrent.direction_backward``. A kernel runs on one thread (a
``prange`` over the rows of one step made the whole layer several times slower on a 2-core
machine: a fork/join per step); the time loops (``loops.py``) may run in row blocks instead.

``tanh`` is a float32 rational approximation (Eigen's ``ptanh_float``: odd degree-13
numerator over even degree-6 denominator, input clamped to +-7.9053), because libm's
``tanhf`` is a scalar call that LLVM cannot vectorise. It stays within 5 ulp (2.9e-7
absolute) of the correctly rounded tanh, always finite and in [-1, 1]; NaN stays NaN
(docs/MEASUREMENTS.md, "Where the speed rules come from", says how that was checked).
``sigma(x) = 0.5 tanh(x / 2) + 0.5`` as in ``functional.sigmoid``.

Compiler flags: fast-math without nnan/ninf: FMA contraction, but NaN and inf keep their
meaning (the clamps must propagate NaN). error_model="numpy": a float division is a plain
vdivps, not a Python ZeroDivisionError check that stops vectorising. Reassociation only where
a kernel sums (``reducing``: their loops vectorise only with it): elsewhere it let LLVM regroup
the same lines differently in two functions (the LSTM cell with and without its stores gave
results a last bit apart), and the elementwise loops are as fast without.
This module imports numba: ``backend/__init__.py`` loads the compiled backend on first use only.
Shapes: N batch, H hidden; gate buffers are (N, G*H) with the gates side by side.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from rnnlab.nn.backend import numba_cache

numba_cache.drop_if_stale(Path(__file__).parent)  # before any compiled function is defined

_FLAGS = {"contract", "nsz", "arcp", "afn"}
_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_FLAGS)
jit = numba.njit(**_OPTIONS)
reducing = numba.njit(**{**_OPTIONS, "fastmath": _FLAGS | {"reassoc"}})  # kernels that sum
parallel = numba.njit(parallel=True, **_OPTIONS)  # prange loops
# inlined into the caller in numba's IR: a compiled call costs ~30 ns, and a row view ~25 more
inline = numba.njit(inline="always", **_OPTIONS)

_f = np.float32
_ZERO, _HALF, _ONE = _f(0.0), _f(0.5), _f(1.0)
_CLAMP = _f(7.90531110763549805)  # tanh = 1 - 2.7e-7 here, the rational 1 - 2.4e-7
# Eigen's ptanh_float: tanh(x) ~ x P(x^2) / Q(x^2)
_A1, _A3, _A5 = _f(4.89352455891786e-03), _f(6.37261928875436e-04), _f(1.48572235717979e-05)
_A7, _A9 = _f(5.12229709037114e-08), _f(-8.60467152213735e-11)
_A11, _A13 = _f(2.00018790482477e-13), _f(-2.76076847742355e-16)
_B0, _B2 = _f(4.89352518554385e-03), _f(2.26843463243900e-03)
_B4, _B6 = _f(1.18534705686654e-04), _f(1.19825839466702e-06)


@jit
def _tanh(v):
    """float32 tanh as a clamped rational function (vectorisable: no libm call, no branch)."""
    x = _CLAMP if v > _CLAMP else v  # NaN fails both tests and stays NaN
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return x * p / q


_TINY = _f(1e-30)


@jit
def _ftz(v):
    """v, or 0 where |v| < 1e-30: far below any float32 gradient that can still move a weight,
    and it keeps the backward out of subnormal numbers, on which the CPU's arithmetic and the
    GEMMs run about ten times slower (tests/nn/test_subnormal.py). NaN stays."""
    return _ZERO if abs(v) < _TINY else v


@jit
def _sigmoid(v):
    """sigma(v) = 0.5 tanh(v / 2) + 0.5 (saturates, never overflows)."""
    return _HALF * _tanh(_HALF * v) + _HALF


@jit
def _tanh_1d(x, out):
    for k in range(x.shape[0]):
        out[k] = _tanh(x[k])


def tanh(x: np.ndarray) -> np.ndarray:
    """The kernels' float32 tanh applied to an array (for tests and error measurements)."""
    x = np.ascontiguousarray(x, np.float32)
    out = np.empty_like(x)
    _tanh_1d(x.reshape(-1), out.reshape(-1))
    return out


# ----------------------------------------------------------------------------- W^T
@jit
def _transpose(a, out):
    R, C = a.shape
    for r0 in range(0, R, 32):  # 32 x 8 tiles: 32 contiguous writes per column
        r1 = min(r0 + 32, R)
        for c0 in range(0, C, 8):
            for c in range(c0, min(c0 + 8, C)):
                for r in range(r0, r1):
                    out[c, r] = a[r, c]


def transpose(W: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``W.T`` (a weight operand in the layout the step GEMMs read).

    When a row of ``W`` is a multiple of 256 bytes (H a multiple of 64), NumPy's copy walks
    columns whose elements fall into the same cache sets and is slower than this tiled loop;
    otherwise NumPy's copy is as fast or faster.
    """
    if W.shape[1] % 64 or W.dtype != np.float32:
        return np.ascontiguousarray(W.T)
    out = np.empty(W.shape[::-1], W.dtype)
    _transpose(W, out)
    return out


# ----------------------------------------------------------------------------- LSTM
@jit
def _split4(row, H):
    """The four gate blocks i, f, g, o of a (4H,) row, as contiguous views."""
    return row[:H], row[H : 2 * H], row[2 * H : 3 * H], row[3 * H :]


def _lstm_cell_loop(KEEP):
    """The gate math of one step, compiled twice from these lines: with ``KEEP`` (training)
    it also stores the activated i, f, g, o over ``a`` and tanh c; without (inference) it
    stores only c and h. KEEP is a constant in each (numba prunes the branch), so the two
    loops compute the same bits (tests/nn/test_inference_mode.py); the stores are what costs:
    one loop testing a run-time flag, or storing always, ran the inference kernel slower."""

    def cell(a, b, c_prev, h, c, tanh_c):
        N, H = c_prev.shape
        b_i, b_f, b_g, b_o = _split4(b, H)
        for n in range(N):
            a_i, a_f, a_g, a_o = _split4(a[n], H)
            cp, hn, cn, tn = c_prev[n], h[n], c[n], tanh_c[n]
            for j in range(H):
                i = _sigmoid(a_i[j] + b_i[j])  # i, f = sigma(a_i), sigma(a_f)
                f = _sigmoid(a_f[j] + b_f[j])
                g = _tanh(a_g[j] + b_g[j])  # g = tanh(a_g)
                o = _sigmoid(a_o[j] + b_o[j])  # o = sigma(a_o)
                cc = f * cp[j] + i * g  # c = f c_{t-1} + i g
                tc = _tanh(cc)
                cn[j] = cc
                hn[j] = o * tc  # h = o tanh(c)
                if KEEP:
                    a_i[j], a_f[j], a_g[j], a_o[j] = i, f, g, o
                    tn[j] = tc

    cell.__name__ = cell.__qualname__ = "_lstm_cell_keep" if KEEP else "_lstm_cell_infer"
    return jit(cell)


_lstm_cell_keep, _lstm_cell_infer = _lstm_cell_loop(True), _lstm_cell_loop(False)


@jit
def lstm_cell(a, b, c_prev, h, c, tanh_c, keep):
    """One step's gate math when ``a`` (N, 4H) already holds ``W h_{t-1} + U x_t`` (the
    time loop lets the GEMM add ``W h_{t-1}`` onto ``U x_t``); b (4H,) =
    b_ih + b_hh. Writes c, h (N, H); with ``keep`` also the activated i, f, g, o over ``a``
    and tanh_c (N, H) for backward, without it (inference) nothing else."""
    if keep:
        _lstm_cell_keep(a, b, c_prev, h, c, tanh_c)
    else:
        _lstm_cell_infer(a, b, c_prev, h, c, tanh_c)


@reducing
def lstm_backward(dh, dout_t, dc, gates, c_prev, tanh_c, active, da, dh_sq):
    """One step back. In: dh = W^T da_{t+1} (N, H), dout_t, dc = dL/dc_t. Out, in place:
    dh = dL/dh_t = dh + dout_t, dc = dL/dc_{t-1}; da (N, 4H); dh_sq (N,) = ||dh||^2.

    Rows with ``active[n]`` False are past their length: da = 0, dc passes unchanged
    (the caller passes their dh through the GEMM).
    """
    N, H = dh.shape
    for n in range(N):
        dhn, don, dcn, cp, tn = dh[n], dout_t[n], dc[n], c_prev[n], tanh_c[n]
        i_, f_, g_, o_ = _split4(gates[n], H)
        d_i, d_f, d_g, d_o = _split4(da[n], H)
        s = 0.0  # float64: tiny norms must not underflow
        if not active[n]:
            for j in range(H):
                d = dhn[j] + don[j]
                dhn[j] = _ftz(d)
                s += np.float64(d) * np.float64(d)
                d_i[j], d_f[j], d_g[j], d_o[j] = _ZERO, _ZERO, _ZERO, _ZERO
            dh_sq[n] = s
            continue
        for j in range(H):  # (_ftz: no subnormal gradients, see there)
            d = dhn[j] + don[j]  # h_t feeds the output and step t+1
            dhn[j] = _ftz(d)
            s += np.float64(d) * np.float64(d)
            i, f, g, o, tc = i_[j], f_[j], g_[j], o_[j], tn[j]
            dct = dcn[j] + d * o * (_ONE - tc * tc)  # dc_t = dc + dh o (1 - tanh(c)^2)
            d_o[j] = _ftz(d * tc * o * (_ONE - o))  # da_o = dh tanh(c) o (1 - o)
            d_i[j] = _ftz(dct * g * i * (_ONE - i))  # da_i = dc_t g i (1 - i)
            d_f[j] = _ftz(dct * cp[j] * f * (_ONE - f))  # da_f = dc_t c_{t-1} f (1 - f)
            d_g[j] = _ftz(dct * i * (_ONE - g * g))  # da_g = dc_t i (1 - g^2)
            dcn[j] = _ftz(dct * f)  # dc_{t-1} = dc_t f
        dh_sq[n] = s


# ----------------------------------------------------------------------------- GRU
@jit
def gru_forward(gates, xg, b_ih, b_hh, h_prev, hn, h):
    """reset_after=True. gates (N, 3H) holds ``W h_{t-1}`` on entry, r, z, n on exit.

    xg (N, 3H) = U x_t; writes hn = W_n h_{t-1} + b_hn and h (N, H).
    """
    N, H = h_prev.shape
    bi_r, bi_z, bi_n = b_ih[:H], b_ih[H : 2 * H], b_ih[2 * H :]
    bh_r, bh_z, bh_n = b_hh[:H], b_hh[H : 2 * H], b_hh[2 * H :]
    for n in range(N):
        g_r, g_z, g_n = gates[n, :H], gates[n, H : 2 * H], gates[n, 2 * H :]
        x_r, x_z, x_n = xg[n, :H], xg[n, H : 2 * H], xg[n, 2 * H :]
        hp, hnn, ho = h_prev[n], hn[n], h[n]
        for j in range(H):
            r = _sigmoid(x_r[j] + bi_r[j] + g_r[j] + bh_r[j])  # r = sigma(xg_r + hg_r)
            z = _sigmoid(x_z[j] + bi_z[j] + g_z[j] + bh_z[j])  # z = sigma(xg_z + hg_z)
            hg_n = g_n[j] + bh_n[j]  # hg_n = W_n h + b_hn
            nn = _tanh(x_n[j] + bi_n[j] + r * hg_n)  # n = tanh(xg_n + r hg_n)
            g_r[j], g_z[j], g_n[j], hnn[j] = r, z, nn, hg_n
            ho[j] = nn + z * (hp[j] - nn)  # h = (1 - z) n + z h_{t-1}


@reducing
def _gru_inactive_row(dhn, cn, don):
    """Past a sequence's length h_t = h_{t-1}: all of dL/dh_t passes straight back (into
    ``cn``); returns ||dL/dh_t||^2 in float64."""
    s = 0.0
    for j in range(dhn.shape[0]):
        d = dhn[j] + cn[j] + don[j]
        s += np.float64(d) * np.float64(d)
        cn[j] = _ftz(d)
    return s


@reducing
def gru_backward(dh, carry, dout_t, gates, h_prev, hn, active, dxg, dhg, dh_sq):
    """reset_after=True, one step back.

    dL/dh_t = dh + carry + dout_t, where dh = W^T dhg_{t+1} and carry the direct path
    (z dh, or all of dh past a length). Writes dxg, dhg (N, 3H), dh_sq (N,) and, in
    place, carry = z dL/dh_t (dL/dh_t where ``active`` is False, with dxg = dhg = 0).
    """
    N, H = dh.shape
    for n in range(N):
        dhn, cn, don, hp, hnn = dh[n], carry[n], dout_t[n], h_prev[n], hn[n]
        r_, z_, n_ = gates[n, :H], gates[n, H : 2 * H], gates[n, 2 * H :]
        dx_r, dx_z, dx_n = dxg[n, :H], dxg[n, H : 2 * H], dxg[n, 2 * H :]
        dg_r, dg_z, dg_n = dhg[n, :H], dhg[n, H : 2 * H], dhg[n, 2 * H :]
        if not active[n]:
            dh_sq[n] = _gru_inactive_row(dhn, cn, don)
            dxg[n, :] = _ZERO
            dhg[n, :] = _ZERO
            continue
        s = 0.0  # float64: tiny norms must not underflow
        for j in range(H):
            d = dhn[j] + cn[j] + don[j]  # dL/dh_t
            s += np.float64(d) * np.float64(d)
            r, z, nn = r_[j], z_[j], n_[j]
            d_z = d * (hp[j] - nn) * z * (_ONE - z)  # da_z = dh (h_{t-1} - n) z (1 - z)
            d_n = d * (_ONE - z) * (_ONE - nn * nn)  # da_n = dh (1 - z)(1 - n^2)
            d_r = _ftz(d_n * hnn[j] * r * (_ONE - r))  # da_r = da_n hg_n r (1 - r)
            d_z, d_n = _ftz(d_z), _ftz(d_n)  # (no subnormal gradients: see _ftz)
            dx_r[j], dx_z[j], dx_n[j] = d_r, d_z, d_n
            dg_r[j], dg_z[j], dg_n[j] = d_r, d_z, _ftz(d_n * r)  # d(hg_n) = da_n r
            cn[j] = _ftz(d * z)  # direct path h_{t-1} -> h
        dh_sq[n] = s


@jit
def gru_forward_rz(gates, xg, b_ih, b_hh, h_prev, hn):
    """reset_after=False, before W_n: gates[:, :2H] holds ``W_rz h_{t-1}``.

    Writes r, z and hn = r h_{t-1}."""
    N, H = h_prev.shape
    bi_r, bi_z, bh_r, bh_z = b_ih[:H], b_ih[H : 2 * H], b_hh[:H], b_hh[H : 2 * H]
    for n in range(N):
        g_r, g_z = gates[n, :H], gates[n, H : 2 * H]
        x_r, x_z = xg[n, :H], xg[n, H : 2 * H]
        hp, hnn = h_prev[n], hn[n]
        for j in range(H):
            r = _sigmoid(x_r[j] + bi_r[j] + g_r[j] + bh_r[j])  # r = sigma(xg_r + W_r h + b_hr)
            g_z[j] = _sigmoid(x_z[j] + bi_z[j] + g_z[j] + bh_z[j])  # z = sigma(xg_z + W_z h + b_hz)
            g_r[j] = r
            hnn[j] = r * hp[j]  # r * h_{t-1}


@jit
def gru_forward_n(gates, xg, b_ih, b_hh, h_prev, h):
    """reset_after=False, after W_n: gates[:, 2H:] holds ``W_n (r h)``; writes n and h."""
    N, H = h_prev.shape
    bi_n, bh_n = b_ih[2 * H :], b_hh[2 * H :]
    for n in range(N):
        g_z, g_n, x_n = gates[n, H : 2 * H], gates[n, 2 * H :], xg[n, 2 * H :]
        hp, ho = h_prev[n], h[n]
        for j in range(H):
            nn = _tanh(x_n[j] + bi_n[j] + g_n[j] + bh_n[j])  # c = tanh(xg_n + W_n (r h) + b_hn)
            g_n[j] = nn
            ho[j] = nn + g_z[j] * (hp[j] - nn)  # h = z h_{t-1} + (1 - z) c


@reducing
def gru_backward_zn(dh, carry, dout_t, gates, h_prev, active, dxg, dh_sq):
    """reset_after=False, first half: as ``gru_backward`` for da_z, da_c (da_r follows)."""
    N, H = dh.shape
    for n in range(N):
        dhn, cn, don, hp = dh[n], carry[n], dout_t[n], h_prev[n]
        z_, n_ = gates[n, H : 2 * H], gates[n, 2 * H :]
        dx_z, dx_n = dxg[n, H : 2 * H], dxg[n, 2 * H :]
        if not active[n]:
            dh_sq[n] = _gru_inactive_row(dhn, cn, don)
            dxg[n, :] = _ZERO
            continue
        s = 0.0  # float64: tiny norms must not underflow
        for j in range(H):
            d = dhn[j] + cn[j] + don[j]  # dL/dh_t
            s += np.float64(d) * np.float64(d)
            z, nn = z_[j], n_[j]
            dx_z[j] = _ftz(d * (hp[j] - nn) * z * (_ONE - z))  # da_z = dh (h_{t-1} - c) z (1 - z)
            dx_n[j] = _ftz(d * (_ONE - z) * (_ONE - nn * nn))  # da_c = dh (1 - z)(1 - c^2)
            cn[j] = _ftz(d * z)  # direct path
        dh_sq[n] = s


@jit
def gru_backward_r(drh, gates, h_prev, dxg, carry):
    """reset_after=False, second half, given d(rh) = W_n^T da_c: da_r, and carry += d(rh) r."""
    N, H = drh.shape
    for n in range(N):
        r_, dx_r = gates[n, :H], dxg[n, :H]
        d_rh, hp, cn = drh[n], h_prev[n], carry[n]
        for j in range(H):
            r = r_[j]
            dx_r[j] = _ftz(d_rh[j] * hp[j] * r * (_ONE - r))  # da_r = d(rh) h_{t-1} r (1 - r)
            cn[j] = _ftz(cn[j] + d_rh[j] * r)  # dh_{t-1} += d(rh) r
