"""Attention: a score, a masked softmax and the context vector (docs/EQUATIONS.md section 7).

For a query ``q_t`` (a decoder state) and keys ``e_1 ... e_S`` (encoder states)::

    s_{t,i} = score(q_t, e_i)                     (N, Tq, S)
    a_{t,i} = softmax_i(s_{t,i})  over unmasked i (N, Tq, S)  attention weights
    c_t     = sum_i a_{t,i} e_i                   (N, Tq, Hk) context vector

The keys are also the values (the chapter's and Luong's formulation): ``c_t`` is a weighted
mean of the encoder states themselves.

Scores (``q`` is (Hq,), ``e`` is (Hk,))::

    none        s = 0                          uniform weights: c_t = mean of the unmasked e_i
                                               (the constant score; no parameters)
    dot         s = q . e                      the chapter; Luong et al. 2015, Eq. 8 "dot"
    scaled_dot  s = q . e / sqrt(Hk)           the chapter; Vaswani et al. 2017
    cosine      s = q . e / (|q| |e|)          the chapter; |x| = sqrt(x . x + eps), eps = 1e-12
    general     s = q . (W_a e)                Luong et al. 2015, Eq. 8 "general"; W_a = weight (Hq, Hk)
    additive    s = v . tanh(W_q q + W_k e + b) Bahdanau et al. 2015, Eq. 6 (Luong's "concat");
                                               weight_query (A, Hq), weight_key (A, Hk), bias (A,), v (A,)

Every score splits into a key side, computed once per source sentence, and a query side,
computed for every decoder step::

    key side    pk = project(e):  e (dot) | e / sqrt(Hk) | e / |e| | W_a e | W_k e + b    (N, S, P)
    query side  s  = q . pk   (dot, scaled_dot, general);  q / |q| . pk  (cosine);
                s  = v . tanh(W_q q + pk)  (additive)

Backward (``dc`` (N, Tq, Hk) given)::

    da = dc e^T                (N, Tq, S)       de  = a^T dc      (the value path)
    ds = a * (da - sum_i a da) (softmax; masked positions have a = 0, so ds = 0 there)
    dot-like:  dq = ds pk      dpk = ds^T q
    cosine:    dq_hat = ds pk,  dq = (dq_hat - q_hat (q_hat . dq_hat)) / |q|   (same for e)
    general:   dW_a = sum dpk^T e,  de += dpk W_a
    additive:  dE = ds v (1 - E^2),  dv = sum ds E,  dW_q = sum dE^T q,  dq = dE W_q,
               dpk = sum_t dE,  dW_k = sum dpk^T e,  db = sum dpk,  de += dpk W_k

Shapes: N batch, Tq query steps, S source steps, Hq query size, Hk key size, A attention size.
The pure functions below take the parameters explicitly; ``Attention`` holds them and their
gradients. A decoder that steps in time calls ``project`` once, ``step`` per decoder step,
then ``step_backward`` per step (in any order) and ``project_backward`` once, each with the
cache it was given.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnnlab.nn.module import Module

SCORES = ("none", "dot", "scaled_dot", "cosine", "general", "additive")
_EPS = 1e-12


def mm_last(x, M):
    """``x (..., K) @ M (K, P)`` as ONE 2-D GEMM (numpy would loop over the leading axes)."""
    return (x.reshape(-1, x.shape[-1]) @ M).reshape(x.shape[:-1] + (M.shape[-1],))


# ----------------------------------------------------------------------------- key side


class KeyCache(NamedTuple):
    keys: np.ndarray  # (N, S, Hk)
    pk: Any  # (N, S, P) projected keys, or None (score none)
    norm: Any  # (N, S, 1) |e| (cosine), else None


def project_forward(score, p, keys):
    """Key side of the score. keys (N, S, Hk) -> ``pk (N, S, P) or None, KeyCache``."""
    if score == "none":
        pk, norm = None, None
    elif score == "dot":
        pk, norm = keys, None  # pk = e
    elif score == "scaled_dot":
        pk, norm = keys * float(1.0 / np.sqrt(keys.shape[-1])), None  # pk = e / sqrt(Hk)
    elif score == "cosine":
        norm = np.sqrt(np.einsum("nsh,nsh->ns", keys, keys) + _EPS)[..., None]  # (N, S, 1) |e|
        pk = keys / norm  # pk = e / |e|
    elif score == "general":
        pk, norm = mm_last(keys, p["weight"].T), None  # (N, S, Hq)  W_a e
    elif score == "additive":
        pk, norm = mm_last(keys, p["weight_key"].T), None  # (N, S, A)  W_k e
        pk += p["bias"]  #   + b
    else:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    return pk, KeyCache(keys, pk, norm)


def project_backward(score, p, dpk, cache: KeyCache):
    """Invert ``project_forward``: returns ``dkeys (N, S, Hk), dparams``."""
    keys = cache.keys
    if score == "none" or dpk is None:
        return np.zeros_like(keys), {}
    if score == "dot":
        return dpk, {}  # pk = e
    if score == "scaled_dot":
        return dpk * float(1.0 / np.sqrt(keys.shape[-1])), {}
    if score == "cosine":  # pk = e / |e|
        proj = np.einsum("nsh,nsh->ns", cache.pk, dpk)[..., None]  # (N, S, 1) e_hat . dpk
        return (dpk - cache.pk * proj) / cache.norm, {}
    Hk = keys.shape[-1]
    k2, d2 = keys.reshape(-1, Hk), dpk.reshape(-1, dpk.shape[-1])
    if score == "general":  # pk = W_a e
        return mm_last(dpk, p["weight"]), {"weight": d2.T @ k2}
    # additive: pk = W_k e + b
    return mm_last(dpk, p["weight_key"]), {"weight_key": d2.T @ k2, "bias": d2.sum(0)}


# ----------------------------------------------------------------------------- query side


class StepCache(NamedTuple):
    query: np.ndarray  # (N, Tq, Hq)
    keys: np.ndarray  # (N, S, Hk)  (the values)
    pk: Any  # (N, S, P), or None (score none)
    q_hat: Any  # (N, Tq, Hq) cosine: q / |q|, else None
    q_norm: Any  # (N, Tq, 1)  cosine: |q|, else None
    E: Any  # (N, Tq, S, A) additive: tanh(W_q q + pk), else None
    weights: np.ndarray  # (N, Tq, S) a


def _masked_softmax(s, mask):
    """softmax over the last axis of s (N, Tq, S); positions with mask False get weight 0."""
    if mask is not None:
        s = np.where(mask[:, None, :], s, -np.inf)  # (N, Tq, S)
    s = s - s.max(axis=-1, keepdims=True)  # max shift
    a = np.exp(s)
    a /= a.sum(axis=-1, keepdims=True)
    return a


def step_forward(score, p, query, keys, pk, mask):
    """Scores, weights and context for queries (N, Tq, Hq) given ``pk`` from ``project_forward``.

    Returns ``context (N, Tq, Hk), weights (N, Tq, S), StepCache``.
    """
    N, Tq, Hq = query.shape
    S = keys.shape[1]
    q_hat = q_norm = E = None
    if score == "none":
        s = np.zeros((N, Tq, S), query.dtype)  # s = 0
    elif score in ("dot", "scaled_dot", "general"):
        s = query @ pk.transpose(0, 2, 1)  # (N, Tq, S)  s = q . pk
    elif score == "cosine":
        q_norm = np.sqrt(np.einsum("nth,nth->nt", query, query) + _EPS)[..., None]  # (N, Tq, 1)
        q_hat = query / q_norm  # q / |q|
        s = q_hat @ pk.transpose(0, 2, 1)  # (N, Tq, S)  q_hat . e_hat
    else:  # additive
        qp = mm_last(query, p["weight_query"].T)  # (N, Tq, A)  W_q q
        E = np.tanh(qp[:, :, None, :] + pk[:, None, :, :])  # (N, Tq, S, A)
        s = mm_last(E, p["v"][:, None])[..., 0]  # (N, Tq, S)  v . E
    a = _masked_softmax(s, mask)  # (N, Tq, S)
    context = a @ keys  # (N, Tq, Hk)  c = sum_i a_i e_i
    return context, a, StepCache(query, keys, pk, q_hat, q_norm, E, a)


def step_backward(score, p, dcontext, cache: StepCache, dweights=None):
    """Invert ``step_forward``: returns ``dquery, dkeys (value path), dpk, dparams``."""
    query, keys, pk, q_hat, q_norm, E, a = cache
    da = dcontext @ keys.transpose(0, 2, 1)  # (N, Tq, S)  da = dc e^T
    if dweights is not None:
        da = da + dweights
    dkeys = a.transpose(0, 2, 1) @ dcontext  # (N, S, Hk)  de = a^T dc
    ds = da - np.einsum("nts,nts->nt", a, da)[..., None]  # softmax: a (da - sum a da)
    ds *= a
    dparams: dict[str, np.ndarray] = {}
    if score == "none":
        return np.zeros_like(query), dkeys, None, dparams
    if score in ("dot", "scaled_dot", "general"):
        dquery = ds @ pk  # (N, Tq, Hq)  dq = ds pk
        dpk = ds.transpose(0, 2, 1) @ query  # (N, S, P)   dpk = ds^T q
    elif score == "cosine":
        dq_hat = ds @ pk  # (N, Tq, Hq)
        proj = np.einsum("nth,nth->nt", q_hat, dq_hat)[..., None]
        dquery = (dq_hat - q_hat * proj) / q_norm  # through q / |q|
        dpk = ds.transpose(0, 2, 1) @ q_hat  # (N, S, Hk)
    else:  # additive: s = v . E,  E = tanh(W_q q + pk)
        Hq = query.shape[-1]
        dparams["v"] = np.einsum("nts,ntsa->a", ds, E)  # dv = sum ds E
        dpre = ds[..., None] * p["v"]  # (N, Tq, S, A)  dE = ds v
        dpre *= 1.0 - E * E  # through tanh
        dqp = dpre.sum(axis=2)  # (N, Tq, A)
        dpk = dpre.sum(axis=1)  # (N, S, A)
        dparams["weight_query"] = dqp.reshape(-1, dqp.shape[-1]).T @ query.reshape(-1, Hq)
        dquery = mm_last(dqp, p["weight_query"])  # (N, Tq, Hq)  dq = W_q^T dqp
    return dquery, dkeys, dpk, dparams


# ----------------------------------------------------------------------------- module


class Attention(Module):
    """``context, weights = attn(query (N, Tq, Hq), keys (N, S, Hk), mask (N, S) or None)``.

    ``dquery, dkeys = attn.backward(dcontext)`` accumulates parameter gradients into ``grads``.
    ``mask`` is boolean, True where a source position may be attended (each row needs one).
    The keys are also the values. ``attention_size`` is A for ``additive`` (default Hq).
    """

    def __init__(self, score, query_size, key_size, attention_size=None, dtype=np.float32, seed=None):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
        self.score = score
        self.query_size, self.key_size = int(query_size), int(key_size)
        self.attention_size = int(attention_size or query_size)
        self.dtype = np.dtype(dtype)
        if score in ("dot", "scaled_dot", "cosine") and self.query_size != self.key_size:
            raise ValueError(
                f"score {score!r} needs query_size == key_size, got "
                f"{self.query_size} and {self.key_size} (use 'general' or 'additive')"
            )
        rng = np.random.default_rng(seed)
        Hq, Hk, A = self.query_size, self.key_size, self.attention_size

        def uniform(shape, fan_in):
            k = 1.0 / np.sqrt(fan_in)
            return rng.uniform(-k, k, shape).astype(self.dtype)

        if score == "general":
            self.params["weight"] = uniform((Hq, Hk), Hk)
        elif score == "additive":
            self.params["weight_query"] = uniform((A, Hq), Hq)
            self.params["weight_key"] = uniform((A, Hk), Hk)
            self.params["bias"] = uniform((A,), Hk)
            self.params["v"] = uniform((A,), A)
        self._init_grads()
        self._cache = None

    # -- checks -------------------------------------------------------------------------
    def check_keys(self, keys, mask):
        keys = np.asarray(keys, self.dtype)
        if keys.ndim != 3 or keys.shape[2] != self.key_size:
            raise ValueError(f"Attention: keys must have shape (N, S, {self.key_size}), got {keys.shape}")
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != keys.shape[:2]:
                raise ValueError(f"Attention: mask must have shape {keys.shape[:2]} (N, S), got {mask.shape}")
            if not mask.any(axis=1).all():
                raise ValueError("Attention: every mask row needs at least one True position")
        return keys, mask

    def _check_query(self, query, N):
        query = np.asarray(query, self.dtype)
        if query.ndim != 3 or query.shape[0] != N or query.shape[2] != self.query_size:
            raise ValueError(
                f"Attention: query must have shape ({N}, Tq, {self.query_size}), got {query.shape}"
            )
        return query

    # -- the pieces, for decoders that step in time -------------------------------------
    def project(self, keys):
        """Key side, once per source batch: returns ``pk, KeyCache``."""
        return project_forward(self.score, self.params, keys)

    def step(self, query, keys, pk, mask=None):
        """Query side for (N, Tq, Hq) queries: returns ``context, weights, StepCache``."""
        return step_forward(self.score, self.params, query, keys, pk, mask)

    def step_backward(self, dcontext, cache, dweights=None):
        """Returns ``dquery, dkeys (value path), dpk``; accumulates query-side grads."""
        dq, dk, dpk, dp = step_backward(self.score, self.params, dcontext, cache, dweights)
        for k, v in dp.items():
            self.grads[k] += v
        return dq, dk, dpk

    def project_backward(self, dpk, kcache):
        """Returns ``dkeys`` (key-side path); accumulates key-side grads."""
        dk, dp = project_backward(self.score, self.params, dpk, kcache)
        for k, v in dp.items():
            self.grads[k] += v
        return dk

    # -- the module ---------------------------------------------------------------------
    def forward(self, query, keys, mask=None):
        keys, mask = self.check_keys(keys, mask)
        query = self._check_query(query, keys.shape[0])
        pk, kcache = self.project(keys)
        context, weights, scache = self.step(query, keys, pk, mask)
        self._cache = (kcache, scache)
        return context, weights

    def backward(self, dcontext, dweights=None):
        if self._cache is None:
            raise RuntimeError("Attention.backward called before forward")
        kcache, scache = self._cache
        dcontext = np.asarray(dcontext, self.dtype)
        expected = scache.query.shape[:2] + (self.key_size,)
        if dcontext.shape != expected:
            raise ValueError(f"Attention.backward: dcontext must have shape {expected}, got {dcontext.shape}")
        dq, dk_value, dpk = self.step_backward(dcontext, scache, dweights)
        dk = self.project_backward(dpk, kcache)
        return dq, dk_value + dk
